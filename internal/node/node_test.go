package node

import (
	"context"
	"io"
	"log/slog"
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
