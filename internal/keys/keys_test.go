package keys

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestSlot(t *testing.T) {
	// Expected values from Redis Cluster's CLUSTER KEYSLOT.
	tests := []struct {
		key  string
		want int
	}{
		{"", 0},
		{"foo", 12182},
		{"bar", 5061},
		{"123456789", 12739},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"user1000", 3443},
		{"foo{}{bar}", 8363},
		{"foo{{bar}}zap", 4015},
		{"foo{bar}{zap}", 5061},
		{"{}", 15257},
	}
	for _, tt := range tests {
		if got := Slot([]byte(tt.key)); got != tt.want {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestCRC16TableMatchesBitwiseDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		b := make([]byte, n%40)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := crc16(b), crc16Bitwise(b); got != want {
			t.Fatalf("crc16(%x) = %#04x, bitwise %#04x", b, got, want)
		}
	}
}

func BenchmarkSlot(b *testing.B) {
	key := []byte("key:000000012345")
	for b.Loop() {
		Slot(key)
	}
}

func TestDataKeysStayInSlotSpan(t *testing.T) {
	for _, k := range []string{"a", "foo", "{x}y", "zzz", "\xff\xff"} {
		key := []byte(k)
		s := Slot(key)
		lo, hi := SlotSpan(s, s)
		d := Data(key)
		if bytes.Compare(d, lo) < 0 || bytes.Compare(d, hi) >= 0 {
			t.Errorf("Data(%q) outside SlotSpan(%d)", k, s)
		}
		e := Expiry(key, 1234)
		if bytes.Compare(e, lo) < 0 || bytes.Compare(e, hi) >= 0 {
			t.Errorf("Expiry(%q) outside SlotSpan(%d)", k, s)
		}
		if got := DataUserKey(d); !bytes.Equal(got, key) {
			t.Errorf("DataUserKey(Data(%q)) = %q", k, got)
		}
		gk, at := DecodeExpiry(e)
		if !bytes.Equal(gk, key) || at != 1234 {
			t.Errorf("DecodeExpiry(Expiry(%q, 1234)) = %q, %d", k, gk, at)
		}
		elo, ehi := ExpirySlotSpan(s, 1234)
		if bytes.Compare(e, elo) < 0 || bytes.Compare(e, ehi) >= 0 {
			t.Errorf("Expiry(%q, 1234) outside ExpirySlotSpan(now=1234)", k)
		}
		elo, ehi = ExpirySlotSpan(s, 1233)
		if bytes.Compare(e, elo) >= 0 && bytes.Compare(e, ehi) < 0 {
			t.Errorf("Expiry(%q, 1234) inside ExpirySlotSpan(now=1233)", k)
		}
		// The count is in the slot's span, outside its data and its index.
		c := ExpiryCount(s)
		ilo, ihi := ExpiryIndexSpan(s)
		dlo, dhi := DataSlotPrefix(s)
		switch {
		case bytes.Compare(c, lo) < 0 || bytes.Compare(c, hi) >= 0:
			t.Errorf("ExpiryCount(%d) outside SlotSpan(%d)", s, s)
		case bytes.Compare(c, ilo) >= 0 && bytes.Compare(c, ihi) < 0,
			bytes.Compare(c, dlo) >= 0 && bytes.Compare(c, dhi) < 0:
			t.Errorf("ExpiryCount(%d) inside the slot's index or data", s)
		case !IsExpiryCount(c) || IsData(c) || IsExpiryCount(d) || IsExpiryCount(e):
			t.Errorf("IsExpiryCount or IsData confuses %q, %q and %q", c, d, e)
		}
	}
}

func TestSpansAreDisjoint(t *testing.T) {
	lo0, hi0 := SlotSpan(0, 99)
	lo1, hi1 := SlotSpan(100, SlotCount-1)
	if !bytes.Equal(hi0, lo1) {
		t.Errorf("adjacent slot spans do not meet: %x vs %x", hi0, lo1)
	}
	if bytes.Compare(lo0, hi1) >= 0 {
		t.Errorf("empty span")
	}
	llo, lhi := LogSpan(7)
	e := LogEntry(7, 42)
	if bytes.Compare(e, llo) < 0 || bytes.Compare(e, lhi) >= 0 || LogIndex(e) != 42 {
		t.Errorf("LogEntry(7, 42) outside LogSpan(7) or wrong index")
	}
	if got := AppendLogEntry([]byte("x"), 7, 42); !bytes.Equal(got, append([]byte("x"), e...)) {
		t.Errorf("AppendLogEntry(x, 7, 42) = %x, want x then %x", got, e)
	}
	rlo, rhi := ReplicaSpan(7)
	for _, k := range [][]byte{HardState(7), AppliedState(7), e, Descriptor(7)} {
		if bytes.Compare(k, rlo) < 0 || bytes.Compare(k, rhi) >= 0 || ReplicaShard(k) != 7 {
			t.Errorf("key %x outside ReplicaSpan(7)", k)
		}
	}
}
