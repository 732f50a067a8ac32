package kv

import (
	"strconv"
	"testing"

	"github.com/shoaldb/shoal/internal/kv/kvtest"
)

const benchKeys = 1024

func benchArgs(cmd string, withValue bool) [][][]byte {
	value := make([]byte, 64)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	all := make([][][]byte, benchKeys)
	for i := range all {
		all[i] = [][]byte{[]byte(cmd), []byte("key:" + strconv.Itoa(i))}
		if withValue {
			all[i] = append(all[i], value)
		}
	}
	return all
}

func BenchmarkApplySet(b *testing.B) {
	mem := kvtest.NewMem()
	env := Env{NowMs: t0, LastSlot: 16383}
	sets := benchArgs("SET", true)
	b.ReportAllocs()
	b.SetBytes(64)
	for i := 0; b.Loop(); i++ {
		if _, err := Apply(mem, env, sets[i%benchKeys]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadGet(b *testing.B) {
	mem := kvtest.NewMem()
	env := Env{NowMs: t0, LastSlot: 16383}
	for _, args := range benchArgs("SET", true) {
		if _, err := Apply(mem, env, args); err != nil {
			b.Fatal(err)
		}
	}
	gets := benchArgs("GET", false)
	b.ReportAllocs()
	b.SetBytes(64)
	for i := 0; b.Loop(); i++ {
		v, err := Read(mem, env, gets[i%benchKeys])
		if err != nil || len(v.Str) != 64 {
			b.Fatalf("GET = %v, %v", v, err)
		}
	}
}
