package kv

import (
	"bytes"
	"testing"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv/kvtest"
)

func TestMaxValueLen(t *testing.T) {
	const tooBig = `-ERR string exceeds maximum allowed size (proto-max-bulk-len)`
	runScript(t, []step{
		{`@maxvalue 10`, ``},
		{`SETRANGE k 536870911 x`, tooBig},
		{`EXISTS k`, `:0`},
		{`SETRANGE k 9 x`, `:10`},
		{`SETRANGE k 10 x`, tooBig},
		{`SETRANGE k 100 ""`, `:10`}, // nothing to write: no check, as Redis
		{`APPEND k x`, tooBig},
		{`STRLEN k`, `:10`},
		{`SET s 123456789`, `+OK`},
		{`APPEND s 0`, `:10`},
		{`APPEND s 1`, tooBig},
		{`APPEND new 0123456789`, `:10`}, // a new key holds what was sent
		{`@maxvalue 0`, ``},              // entries of earlier versions: 512 MiB
		{`APPEND s 1`, `:11`},
		{`SETRANGE k 536870912 x`, tooBig},
	})
}

func TestMaxReplyLen(t *testing.T) {
	const tooLarge = `-ERR reply too large: it would hold more than 250 bytes, the most one command may answer (client-output-buffer-limit); ask for less at a time`
	runScript(t, []step{
		{`MSET {t}a 0123456789 {t}b 0123456789 {t}c 0123456789`, `+OK`},
		{`@maxreply 250`, ``},
		// Each element counts its bytes plus ReplyElemOverhead (64).
		{`MGET {t}a {t}b {t}c`, `["0123456789" "0123456789" "0123456789"]`},
		{`MGET {t}a {t}b {t}c {t}a`, tooLarge},
		{`MGET {t}a {t}x {t}y`, `["0123456789" (nil) (nil)]`},
		{`KEYS *`, `["{t}a" "{t}b" "{t}c"]`},
		{`MSET {t}d 1 {t}e 1`, `+OK`},
		{`KEYS *`, tooLarge},
		{`SCAN 0 COUNT 100`, tooLarge},
		{`SCAN 0 COUNT 100 MATCH *a`, `["16384" ["{t}a"]]`},
		{`SHOAL.GETKEYSINSLOT 15891 3`, `["{t}a" "{t}b" "{t}c"]`},
		{`SHOAL.GETKEYSINSLOT 15891 5`, tooLarge},
		{`@maxreply 0`, ``},
		{`SHOAL.GETKEYSINSLOT 15891 5`, `["{t}a" "{t}b" "{t}c" "{t}d" "{t}e"]`},
	})
}

func TestRefuseEarly(t *testing.T) {
	tests := []struct {
		cmd   string
		limit int64
		want  string // "" when not refused
	}{
		{`SETRANGE k 536870911 x`, 1 << 20, `-ERR string exceeds maximum allowed size (proto-max-bulk-len)`},
		{`setrange k 1048575 x`, 1 << 20, ``},
		{`setrange k 1048576 x`, 1 << 20, `-ERR string exceeds maximum allowed size (proto-max-bulk-len)`},
		{`SETRANGE k 536870911 ""`, 1 << 20, ``}, // writes nothing
		{`SETRANGE k -1 x`, 1 << 20, ``},         // the command's own error
		{`SETRANGE k x x`, 1 << 20, ``},
		{`SETRANGE k 536870911 x`, 0, ``}, // 512 MiB exactly
		{`SET k 536870911`, 1, ``},
	}
	for _, tt := range tests {
		v, refused := RefuseEarly(splitArgs(tt.cmd), tt.limit)
		got := ""
		if refused {
			got = format(v)
		}
		if got != tt.want {
			t.Errorf("RefuseEarly(%s, %d) = %q, want %q", tt.cmd, tt.limit, got, tt.want)
		}
	}
}

// sizedMem is a kvtest.Mem that tells value sizes, as the engine does, and
// counts the values it copies out.
type sizedMem struct {
	*kvtest.Mem
	gets int
}

func (m *sizedMem) Get(key []byte) ([]byte, bool, error) {
	m.gets++
	return m.Mem.Get(key)
}

func (m *sizedMem) ValueSizes(keys [][]byte, fn func(i, size int)) error {
	for i, k := range keys {
		v, ok, err := m.Mem.Get(k)
		if err != nil {
			return err
		}
		size := -1
		if ok {
			size = len(v)
		}
		fn(i, size)
	}
	return nil
}

// A read of many keys whose values would pass the reply limit is refused
// by their sizes, before any value is copied.
func TestMGetRefusedBySizes(t *testing.T) {
	m := &sizedMem{Mem: kvtest.NewMem()}
	env := Env{NowMs: t0, LastSlot: keys.SlotCount - 1}
	if _, err := Apply(m, env, [][]byte{[]byte("SET"), []byte("big"), bytes.Repeat([]byte("v"), 1<<20)}); err != nil {
		t.Fatal(err)
	}
	args := [][]byte{[]byte("MGET")}
	for range 512 {
		args = append(args, []byte("big"))
	}
	env.MaxReplyLen = 64 << 20
	m.gets = 0
	v, err := Read(m, env, args)
	if err != nil || !bytes.HasPrefix(v.Str, []byte(ReplyTooLargePrefix)) {
		t.Fatalf("MGET of 512 × 1 MiB = %.60q, %v; want %q...", v.Str, err, ReplyTooLargePrefix)
	}
	if m.gets != 0 {
		t.Errorf("refused MGET copied %d values, want 0", m.gets)
	}
	v, err = Read(m, env, args[:40]) // 39 MiB: within the limit
	if err != nil || len(v.Elems) != 39 {
		t.Fatalf("MGET of 39 × 1 MiB = %d elements, %v", len(v.Elems), err)
	}
}
