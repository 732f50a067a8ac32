package store

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// snapshotBytes encodes a snapshot of shard 7 (slots 100-199) holding ks.
func snapshotBytes(t testing.TB, desc *shoalpb.ShardDescriptor, ks ...[]byte) []byte {
	d := &shoalpb.SnapshotData{Descriptor_: desc}
	for _, k := range ks {
		d.Keys = append(d.Keys, k)
		d.Values = append(d.Values, []byte("v"))
	}
	b, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckSnapshot(t *testing.T) {
	desc := &shoalpb.ShardDescriptor{Id: 7, FirstSlot: 100, LastSlot: 199}
	// Two keys of the shard's slots, in order.
	lo, hi := keys.SlotSpan(100, 199)
	in1, in2 := append(bytes.Clone(lo), 0, 0, 1), append(bytes.Clone(lo), 0, 0, 2)
	outside := append(bytes.Clone(hi), 1)
	if _, n, err := checkSnapshot(7, snapshotBytes(t, desc, in1, in2)); err != nil || n != 2 {
		t.Fatalf("a good snapshot: %d keys, %v", n, err)
	}
	bad := map[string][]byte{
		"not protobuf":      {0xff, 0xff, 0xff},
		"no descriptor":     snapshotBytes(t, nil, in1),
		"another shard":     snapshotBytes(t, &shoalpb.ShardDescriptor{Id: 8, FirstSlot: 100, LastSlot: 199}, in1),
		"slots past 16383":  snapshotBytes(t, &shoalpb.ShardDescriptor{Id: 7, FirstSlot: 100, LastSlot: 16384}),
		"slots backwards":   snapshotBytes(t, &shoalpb.ShardDescriptor{Id: 7, FirstSlot: 199, LastSlot: 100}),
		"negative slot":     snapshotBytes(t, &shoalpb.ShardDescriptor{Id: 7, FirstSlot: -1, LastSlot: 100}),
		"key past the span": snapshotBytes(t, desc, in1, outside),
		"raft state key":    snapshotBytes(t, desc, keys.AppliedState(7)),
		"keys out of order": snapshotBytes(t, desc, in2, in1),
		"a key twice":       snapshotBytes(t, desc, in1, in1),
	}
	d := &shoalpb.SnapshotData{Descriptor_: desc, Keys: [][]byte{in1, in2}, Values: [][]byte{[]byte("v")}}
	bad["a key without value"], _ = proto.Marshal(d)
	for name, b := range bad {
		if _, _, err := checkSnapshot(7, b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A snapshot that would write outside its shard is dropped when it
// arrives, and the node goes on.
func TestBadSnapshotIsDropped(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes := startCluster(t, n, func(uint64) vfs.FS { return vfs.NewMem() }, 1000, nil)
	propose(t, nodes, "k", "v")
	leader := leaderOf(t, nodes)
	victim := leader%3 + 1
	ri, _ := nodes[victim].st.Replica(1)
	evil := snapshotBytes(t, metaDesc, keys.AppliedState(2))
	nodes[victim].st.HandleRaft(leader, []*shoalpb.RaftEnvelope{{ShardId: 1, Message: &raftpb.Message{
		Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(leader), To: proto.Uint64(victim),
		Term: proto.Uint64(ri.Term), Snapshot: &raftpb.Snapshot{Data: evil, Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(1 << 20), Term: proto.Uint64(ri.Term), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		}},
	}}})
	waitCond(t, "bad snapshot counted", func() error {
		if got := nodes[victim].st.Stats().BadSnapshots; got != 1 {
			return fmt.Errorf("%d bad snapshots counted", got)
		}
		return nil
	})
	propose(t, nodes, "k2", "v2")
	waitValue(t, nodes[victim], "k2", "v2")
}

// FuzzCheckSnapshot: no input panics, and an accepted snapshot writes only
// inside its shard's span.
func FuzzCheckSnapshot(f *testing.F) {
	desc := &shoalpb.ShardDescriptor{Id: 7, FirstSlot: 100, LastSlot: 199}
	lo, _ := keys.SlotSpan(100, 199)
	f.Add(uint64(7), snapshotBytes(f, desc, append(bytes.Clone(lo), 1), append(bytes.Clone(lo), 2)))
	f.Add(uint64(1), snapshotBytes(f, metaDesc, keys.Meta("x")))
	f.Add(uint64(7), snapshotBytes(f, desc, keys.AppliedState(7)))
	f.Add(uint64(3), []byte{0x0a, 0x02, 0x08, 0x03})
	f.Add(uint64(3), []byte{0x0a, 0x02, 0x08, 0x03, 0x10, 0x01}) // a key of the wrong wire type
	f.Fuzz(func(t *testing.T, shard uint64, b []byte) {
		desc, n, err := checkSnapshot(shard, b)
		if err != nil {
			return
		}
		// The protobuf decoder reads the same: the descriptor, and as
		// many keys, each inside the shard's span, with as many values.
		var d shoalpb.SnapshotData
		if err := proto.Unmarshal(b, &d); err != nil {
			t.Fatalf("accepted data protobuf refuses: %v", err)
		}
		if !proto.Equal(d.GetDescriptor_(), desc) || len(d.GetKeys()) != n || len(d.GetValues()) != n {
			t.Fatalf("read %v and %d pairs; protobuf reads %v, %d keys, %d values", desc, n, d.GetDescriptor_(), len(d.GetKeys()), len(d.GetValues()))
		}
		lo, hi := descSpan(desc)
		for _, k := range d.GetKeys() {
			if bytes.Compare(k, lo) < 0 || bytes.Compare(k, hi) >= 0 {
				t.Fatalf("accepted key %x outside [%x, %x)", k, lo, hi)
			}
		}
	})
}

// The data buildSnapshot writes, a pair at a time, is SnapshotData as
// protobuf reads it.
func TestSnapshotDataEncoding(t *testing.T) {
	desc := &shoalpb.ShardDescriptor{Id: 7, FirstSlot: 100, LastSlot: 199, NextReplicaInc: 3}
	lo, _ := keys.SlotSpan(100, 199)
	var ks, vs [][]byte
	for i := range 50 {
		ks = append(ks, append(bytes.Clone(lo), byte(i)))
		vs = append(vs, bytes.Repeat([]byte{byte(i)}, i)) // the first value is empty
	}
	b, err := appendSnapshotData(nil, desc, func(fn func(k, v []byte) bool) error {
		for i := range ks {
			fn(ks[i], vs[i])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var d shoalpb.SnapshotData
	if err := proto.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(d.GetDescriptor_(), desc) || len(d.GetKeys()) != 50 {
		t.Fatalf("protobuf reads %v and %d keys", d.GetDescriptor_(), len(d.GetKeys()))
	}
	for i := range ks {
		if !bytes.Equal(d.GetKeys()[i], ks[i]) || !bytes.Equal(d.GetValues()[i], vs[i]) {
			t.Fatalf("pair %d: %x=%x, want %x=%x", i, d.GetKeys()[i], d.GetValues()[i], ks[i], vs[i])
		}
	}
	i := 0
	if _, err := walkSnapshotData(b, func(k, v []byte) error {
		if !bytes.Equal(k, ks[i]) || !bytes.Equal(v, vs[i]) {
			t.Fatalf("walk pair %d: %x=%x", i, k, v)
		}
		i++
		return nil
	}, func(*shoalpb.ShardDescriptor) error { return nil }); err != nil || i != 50 {
		t.Fatalf("walked %d pairs: %v", i, err)
	}
}
