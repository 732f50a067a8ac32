package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/placement"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

var fuzzNode struct {
	once sync.Once
	n    *Node
	err  error
}

// startFuzzNode starts, once per test binary, a one-node cluster of two
// shards that every fuzz input is sent to.
func startFuzzNode(t *testing.T) *Node {
	fuzzNode.once.Do(func() {
		fuzzNode.n, fuzzNode.err = Start(context.Background(), Config{
			DataDir: "d", FS: vfs.NewMem(), Addr: "127.0.0.1:0", BusAddr: "127.0.0.1:0", HTTPAddr: "off",
			Shards: 2, ReplicationFactor: 1,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	})
	if fuzzNode.err != nil {
		t.Fatal(fuzzNode.err)
	}
	return fuzzNode.n
}

// FuzzHandleCall sends what a peer could send on the bus: a method and a
// body of any bytes. The node must answer every call with a reply or an
// error (a forwarded command's reply is one valid RESP value), and keep
// serving.
func FuzzHandleCall(f *testing.F) {
	fwd := func(shard uint64, write bool, args ...string) []byte {
		req := &shoalpb.ForwardRequest{ShardId: shard, Write: write}
		for _, a := range args {
			req.Args = append(req.Args, []byte(a))
		}
		b, _ := proto.Marshal(req)
		return b
	}
	op := func(o placement.Op) []byte { b, _ := json.Marshal(o); return b }
	f.Add(methodForward, fwd(2, true, "SET", "k", "v"))
	f.Add(methodForward, fwd(2, false, "GET", "k"))
	f.Add(methodForward, fwd(99, true, "SET", "k", "v"))
	f.Add(methodForward, fwd(1, true, "SET", "k", "v"))
	f.Add(methodForward, fwd(2, true))
	f.Add(methodForward, fwd(2, true, "SETRANGE", "k", "536870911", "x"))
	f.Add(methodForward, []byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(methodJoin, []byte(`{"addr":"","bus_addr":"\u0000"}`))
	f.Add(methodJoin, []byte(`{`))
	f.Add(methodPlacement, op(placement.Op{Kind: placement.Promote, Shard: 2, Node: 1 << 40}))
	f.Add(methodPlacement, op(placement.Op{Kind: 99, Shard: 0, Node: 0}))
	f.Add(methodPlacement, []byte(`[]`))
	f.Add(methodView, []byte("x"))
	f.Add("nosuch", []byte{})
	f.Fuzz(func(t *testing.T, method string, body []byte) {
		n := startFuzzNode(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := n.HandleCall(ctx, 2, method, body)
		if err == nil && method == methodForward {
			if _, used, perr := resp.ParseValue(out); perr != nil || used != len(out) {
				t.Fatalf("forwarded reply %q: not one RESP value (%v)", out, perr)
			}
		}
		// The node still serves.
		if _, err := n.HandleCall(ctx, 2, methodView, nil); err != nil {
			t.Fatalf("view after %s %q: %v", method, body, err)
		}
	})
}
