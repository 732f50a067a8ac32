package chaos

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestChaosShort is the short form of shoal-chaos: a 3-node cluster of real
// processes, clients doing GET/SET/INCR/CAS, and a couple of each process
// fault (a node killed for good and replaced among them) plus a leader
// partition when network namespaces are available.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: starts a real 3-node cluster and injects faults for about a minute: skipped in -short mode")
	}
	QuietRedisLogger()
	faults := []FaultKind{FaultKill, FaultKillLeader, FaultPause, FaultWipe}
	if err := NetnsUsable(t.Logf); err != nil {
		t.Log(err)
	} else {
		faults = append(faults, FaultPartitionLeader)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Nodes: 3, Shards: 6, Clients: 6, Keys: 12,
		Duration: 60 * time.Second, FaultFor: 2 * time.Second, Quiet: 2 * time.Second,
		Faults: faults, OutDir: t.TempDir(), Logf: t.Logf,
		TLS: true, // certificates on: the nodes' mutual TLS under every fault
	})
	if err != nil {
		if errors.Is(err, ErrNoPartitions) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if rep.Failed() {
		t.Fatalf("chaos run failed (seed %d); see the report above", rep.Seed)
	}
	if len(rep.Faults) < len(faults) {
		t.Fatalf("%d faults applied, want at least one of each of %v", len(rep.Faults), faults)
	}
}
