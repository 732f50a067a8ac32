package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// benchCluster is n stores over localNet sharing shards data shards, each
// replicated on every store, with leadership spread round-robin.
type benchCluster struct {
	net    *localNet
	stores []*Store
	engs   []*engine.Engine
	syncs  atomic.Int64
	leader []atomic.Int32 // per shard (index shard-1): index into stores
}

func newBenchCluster(b *testing.B, n, shards int, disk bool) *benchCluster {
	b.Helper()
	quiet := slog.New(slog.DiscardHandler)
	c := &benchCluster{net: &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}},
		leader: make([]atomic.Int32, shards)}
	var descs []*shoalpb.ShardDescriptor
	per := keys.SlotCount / shards
	for i := range shards {
		last := (i+1)*per - 1
		if i == shards-1 {
			last = keys.SlotCount - 1
		}
		descs = append(descs, &shoalpb.ShardDescriptor{Id: uint64(i + 1), FirstSlot: int32(i * per), LastSlot: int32(last)})
	}
	var voters []uint64
	for id := range n {
		voters = append(voters, uint64(id+1))
	}
	for id := uint64(1); id <= uint64(n); id++ {
		var base vfs.FS = vfs.NewMem()
		dir := "db"
		if disk {
			base, dir = vfs.Default, b.TempDir()
		}
		eng, err := engine.Open(dir, engine.Options{FS: syncHookFS{base, func() { c.syncs.Add(1) }}, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		st, err := New(Config{NodeID: id, Engine: eng, Transport: localEndpoint{c.net, id},
			StateMachine: setMachine{}, Logger: quiet, TickInterval: 10 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Bootstrap(descs, voters, nil); err != nil {
			b.Fatal(err)
		}
		c.net.mu.Lock()
		c.net.stores[id] = st
		c.net.mu.Unlock()
		c.stores, c.engs = append(c.stores, st), append(c.engs, eng)
	}
	for _, st := range c.stores {
		st.Start()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range shards {
		if err := c.stores[i%n].Campaign(ctx, uint64(i+1)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range shards {
		for c.findLeader(i) < 0 {
			if ctx.Err() != nil {
				b.Fatalf("shard %d elected no leader within 10s", i+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return c
}

// findLeader records and returns the store leading shard index i, or -1.
func (c *benchCluster) findLeader(i int) int {
	for j, st := range c.stores {
		if ri, ok := st.Replica(uint64(i + 1)); ok && ri.IsLeader {
			c.leader[i].Store(int32(j))
			return j
		}
	}
	return -1
}

func (c *benchCluster) close() {
	for _, st := range c.stores {
		st.Stop()
	}
	for _, e := range c.engs {
		e.Close()
	}
}

// propose sends one SET for shard index i to its leader, following
// leadership changes for up to 5s.
func (c *benchCluster) propose(i int, args [][]byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, err := c.stores[c.leader[i].Load()].Propose(ctx, uint64(i+1), args)
		var nl *NotLeaderError
		if err == nil || !(errors.As(err, &nl) || errors.Is(err, ErrDropped) || errors.Is(err, ErrBusy)) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
		c.findLeader(i)
	}
}

// BenchmarkCycle measures proposals per second through the store's Ready
// cycle with many shards and many concurrent proposers (each a SET of a
// 64-byte value), and the syncs the engines issue per proposal. syncs/op
// counts every store's syncs, so persisting each proposal on its own
// would cost at least 1 (one store) or 3 (three stores); group commit
// should keep it far below. On the memory filesystem a sync is free, so
// those runs measure the cycle's CPU cost; fs=disk adds real fsyncs.
//
//	go test ./internal/store -run '^$' -bench Cycle
func BenchmarkCycle(b *testing.B) {
	for _, tc := range []struct {
		stores, shards int
		disk           bool
	}{
		{1, 16, false}, {3, 1, false}, {3, 16, false}, {3, 64, false}, {3, 1024, false}, {3, 1, true}, {3, 16, true}, {3, 64, true},
	} {
		fs := "mem"
		if tc.disk {
			fs = "disk"
		}
		b.Run(fmt.Sprintf("stores=%d/shards=%d/fs=%s", tc.stores, tc.shards, fs), func(b *testing.B) {
			benchmarkCycle(b, tc.stores, tc.shards, tc.disk)
		})
	}
}

func benchmarkCycle(b *testing.B, stores, shards int, disk bool) {
	c := newBenchCluster(b, stores, shards, disk)
	defer c.close()
	value := make([]byte, 64)
	var next atomic.Int64
	var failed sync.Once
	// 128 proposers per GOMAXPROCS: far more than shards, so every cycle
	// has proposals for many shards waiting.
	b.SetParallelism(128)
	c.syncs.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			args := [][]byte{[]byte("set"), fmt.Appendf(nil, "k%d", n), value}
			if err := c.propose(int(n)%shards, args); err != nil {
				failed.Do(func() { b.Errorf("propose: %v", err) })
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(c.syncs.Load())/float64(b.N), "syncs/op")
}
