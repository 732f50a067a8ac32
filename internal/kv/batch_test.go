package kv

import (
	"testing"

	"github.com/shoaldb/shoal/internal/kv/kvtest"
	"github.com/shoaldb/shoal/internal/resp"
)

func TestBatchAppliesInOrder(t *testing.T) {
	w := kvtest.NewMem()
	env := Env{NowMs: 1000, FirstSlot: 0, LastSlot: 16383}
	cmds := [][][]byte{
		{[]byte("SET"), []byte("k"), []byte("1")},
		{[]byte("INCR"), []byte("k")},
		{[]byte("GET"), []byte("k")}, // not a write: refused inside a batch
		{[]byte("APPEND"), []byte("k"), []byte("0")},
		{[]byte("INCR"), []byte("nope"), []byte("extra")}, // wrong arity: its own error
	}
	v, err := Apply(w, env, EncodeBatch(cmds))
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != resp.KindArray || len(v.Elems) != len(cmds) {
		t.Fatalf("SHOAL.BATCH = %+v, want an array of %d replies", v, len(cmds))
	}
	want := []string{"+OK", ":2", "-ERR 'GET' cannot be batched", ":2", "-ERR wrong number of arguments for 'incr' command"}
	for i, e := range v.Elems {
		if got := string(resp.AppendValue(nil, e, 2)); got != want[i]+"\r\n" {
			t.Errorf("reply %d = %q, want %q", i, got, want[i])
		}
	}
	if got, _ := Read(w, env, [][]byte{[]byte("GET"), []byte("k")}); string(got.Str) != "20" {
		t.Errorf("GET k after batch = %q, want 20", got.Str)
	}
	for _, bad := range [][][]byte{
		{[]byte("SHOAL.BATCH"), []byte("5"), []byte("SET")},
		{[]byte("SHOAL.BATCH"), []byte("x"), []byte("SET")},
		{[]byte("SHOAL.BATCH"), []byte("0"), []byte("SET")},
	} {
		if v, _ := Apply(w, env, bad); !v.IsError() {
			t.Errorf("Apply(%q) = %+v, want an error", bad, v)
		}
	}
}
