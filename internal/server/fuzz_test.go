package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/shoaldb/shoal/internal/resp"
)

// Any argument vector, however hostile, gets a reply that is one valid
// RESP value, and never a panic. The vector is the fuzzer's bytes split
// at NUL bytes; the first is the command's name.
func FuzzDispatch(f *testing.F) {
	for _, seed := range []string{
		"SET\x00k\x00v", "GET\x00k", "SETRANGE\x00k\x00536870911\x00x", "MGET\x00a\x00b\x00c",
		"CONFIG\x00SET\x00proto-max-bulk-len\x000", "CONFIG\x00SET\x00client-output-buffer-limit\x00normal 1 2",
		"CLIENT\x00LIST\x00ID\x00-1", "HELLO\x003\x00AUTH\x00default\x00x", "CLUSTER\x00GETKEYSINSLOT\x0016384\x00-1",
		"SCAN\x00999999999999999999999\x00COUNT\x000", "APPEND\x00k\x00x", "INCRBYFLOAT\x00k\x00nan",
		"OBJECT\x00ENCODING", "COMMAND\x00DOCS\x00get", "KEYS\x00[", "SHOAL.BATCH\x002\x00SET",
		"EXPIRE\x00k\x009223372036854775807", "GETEX\x00k\x00PX\x00-1", "RESET", "QUIT",
	} {
		f.Add([]byte(seed))
	}
	s := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, newFakeCluster())
	defer s.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		args := bytes.Split(in, []byte{0})
		if len(args) > 64 {
			return
		}
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := newConn(s, a)
		for _, proto := range []int{2, 3} {
			c.st.proto = proto
			v := c.exec(context.Background(), args)
			out := resp.AppendValue(nil, v, proto)
			if _, n, err := resp.ParseValue(out); err != nil || n != len(out) {
				t.Fatalf("%q: reply %q is not one RESP value (%d of %d bytes, %v)", args, out, n, len(out), err)
			}
		}
	})
}
