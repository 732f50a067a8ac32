package node

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A node whose node-to-node port is taken fails to start with an error
// naming the cause; it used to panic while cleaning up.
func TestStartWithBusPortTakenFailsCleanly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = Start(context.Background(), Config{
		DataDir:  "d",
		FS:       vfs.NewMem(),
		Addr:     "127.0.0.1:0",
		BusAddr:  taken.Addr().String(),
		HTTPAddr: "off",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start with a taken bus port: err = %v, want address already in use", err)
	}
}

// Memtable sizes are spread in 64 KiB steps over the quarter below the
// base, so the nodes of a cluster do not flush in step.
func TestSpreadMemTableSizes(t *testing.T) {
	const base, step = 32 << 20, 64 << 10
	seen := map[int64]bool{}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		size := spreadMemTableSize(base, r.Int64N)
		if size <= base-base/4 || size > base || size%step != 0 {
			t.Fatalf("memtable size %d: want a multiple of %d in (%d, %d]", size, step, base-base/4, base)
		}
		seen[size] = true
	}
	if len(seen) != base/4/step {
		t.Errorf("10000 draws gave %d distinct sizes, want all %d", len(seen), base/4/step)
	}
}
