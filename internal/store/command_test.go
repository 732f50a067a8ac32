package store

import (
	"bytes"
	"testing"

	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// decodeCommand must read whatever proto.Unmarshal reads, the same way,
// and fail where it fails.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []*shoalpb.Command{
		{},
		{Id: 1, NowMs: 1700000000000, Rand: 1 << 63, Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}},
		{Id: 7, NowMs: -5, Args: [][]byte{{}, nil, []byte("x")}},
		{Id: 2, MaxValueLen: 32 << 20, Args: [][]byte{[]byte("APPEND"), []byte("k"), []byte("v")}},
	} {
		b, err := proto.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A field this version does not know, and known numbers of the wrong
	// wire type, are skipped as proto skips them.
	unknown := protowire.AppendTag(nil, 9, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, []byte("later"))
	unknown = protowire.AppendTag(unknown, 1, protowire.Fixed64Type)
	unknown = protowire.AppendFixed64(unknown, 3)
	f.Add(unknown)
	f.Add([]byte{0x22, 0x05, 'a'}) // an argument cut short
	f.Fuzz(func(t *testing.T, b []byte) {
		var want, got shoalpb.Command
		werr := proto.Unmarshal(b, &want)
		gerr := decodeCommand(b, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("proto.Unmarshal: %v, decodeCommand: %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		// Every field proto knows, compared by proto itself, so that a
		// field added to Command and not to decodeCommand fails here.
		want.ProtoReflect().SetUnknown(nil)
		if !proto.Equal(&got, &want) {
			t.Fatalf("decoded %v, want %v", &got, &want)
		}
	})
}

// The arguments share the entry's memory, and appending to one cannot
// overwrite what follows it.
func TestDecodeCommandAliasesTheEntry(t *testing.T) {
	b, err := proto.Marshal(&shoalpb.Command{Id: 3, Args: [][]byte{[]byte("SET"), []byte("key"), []byte("value")}})
	if err != nil {
		t.Fatal(err)
	}
	var cmd shoalpb.Command
	if err := decodeCommand(b, &cmd); err != nil {
		t.Fatal(err)
	}
	key := cmd.Args[1]
	if i := bytes.Index(b, []byte("key")); i < 0 || &b[i] != &key[0] {
		t.Fatal("the key argument is a copy, not a slice of the entry")
	}
	_ = append(key, "XXXXX"...)
	if string(cmd.Args[2]) != "value" {
		t.Fatalf("appending to an argument overwrote the next one: %q", cmd.Args[2])
	}
}

type discardWriter struct{ n int }

func (w *discardWriter) Set(key, value []byte) error { w.n += len(value); return nil }

// The loop's scratch buffer is reused for small writes and not kept after
// a large one.
func TestPutProtoKeepsOnlyASmallScratchBuffer(t *testing.T) {
	s := &Store{}
	var w discardWriter
	s.putProto(&w, []byte("k"), &raftpb.Entry{Data: make([]byte, 100)})
	small := cap(s.scratch)
	if small == 0 {
		t.Fatal("no scratch buffer kept after a small write")
	}
	s.putProto(&w, []byte("k"), &raftpb.Entry{Data: make([]byte, 2<<20)})
	if s.scratch != nil {
		t.Errorf("a %d-byte scratch buffer was kept after a 2 MiB entry", cap(s.scratch))
	}
	if w.n < 2<<20 {
		t.Errorf("the writer got %d bytes", w.n)
	}
}
