package transport_test

import (
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/shoaldb/shoal/internal/shoalpb"
)

func TestSendInOrder(t *testing.T) {
	ha, hb := newRecorder(), newRecorder()
	a, b := start(t, 1, ha), start(t, 2, hb)
	a.SetPeer(2, b.Addr())

	const n = 2000
	var envs []*shoalpb.RaftEnvelope
	for i := range uint64(n) {
		envs = append(envs, msg(i%7, 2, i))
		if len(envs) == int(i%13)+1 { // Send calls of varying size
			a.Send(envs)
			envs = nil
		}
	}
	a.Send(envs)

	waitFor(t, "all messages", func() bool { return hb.count() >= n })
	got := hb.received()
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	for i, r := range got {
		if r.from != 1 {
			t.Fatalf("message %d from node %d, want 1", i, r.from)
		}
		m := r.env.GetMessage()
		if m.GetIndex() != uint64(i) || r.env.GetShardId() != uint64(i%7) || string(m.GetEntries()[0].GetData()) != strconv.Itoa(i) {
			t.Fatalf("message %d = shard %d index %d, want shard %d index %d", i, r.env.GetShardId(), m.GetIndex(), i%7, i)
		}
	}
	if u := ha.unreachableTo(2); u != 0 {
		t.Errorf("%d messages reported unreachable, want 0", u)
	}
}

// Three nodes send to each other concurrently, interleaving many shards:
// every stream keeps its order and nothing is lost or misrouted.
func TestManyShardsInterleaved(t *testing.T) {
	const nodes, shards, perShard = 3, 50, 40
	hs := make([]*recorder, nodes+1)
	ts := make([]interface {
		Send([]*shoalpb.RaftEnvelope)
		Addr() string
		SetPeer(uint64, string)
	}, nodes+1)
	for id := 1; id <= nodes; id++ {
		hs[id] = newRecorder()
		ts[id] = start(t, uint64(id), hs[id])
	}
	for id := 1; id <= nodes; id++ {
		for peer := 1; peer <= nodes; peer++ {
			if peer != id {
				ts[id].SetPeer(uint64(peer), ts[peer].Addr())
			}
		}
	}

	var wg sync.WaitGroup
	for id := 1; id <= nodes; id++ {
		wg.Go(func() {
			// Message k goes to shard k%shards of each other node, with
			// index k, in Send calls that mix both destinations.
			var envs []*shoalpb.RaftEnvelope
			for k := range uint64(shards * perShard) {
				for to := 1; to <= nodes; to++ {
					if to != id {
						envs = append(envs, msg(k%shards, uint64(to), k))
					}
				}
				if k%5 == 4 {
					ts[id].Send(envs)
					envs = nil
				}
			}
			ts[id].Send(envs)
		})
	}
	wg.Wait()

	want := shards * perShard * (nodes - 1)
	for id := 1; id <= nodes; id++ {
		waitFor(t, "all messages", func() bool { return hs[id].count() >= want })
		next := make(map[uint64]uint64) // sender -> next index expected
		for _, r := range hs[id].received() {
			m := r.env.GetMessage()
			if m.GetTo() != uint64(id) {
				t.Fatalf("node %d got a message for node %d", id, m.GetTo())
			}
			if m.GetIndex() != next[r.from] || r.env.GetShardId() != m.GetIndex()%shards {
				t.Fatalf("node %d: from %d got shard %d index %d, want index %d", id, r.from, r.env.GetShardId(), m.GetIndex(), next[r.from])
			}
			next[r.from]++
		}
		if hs[id].count() != want {
			t.Fatalf("node %d received %d messages, want %d", id, hs[id].count(), want)
		}
	}
}

func TestUnknownPeerReported(t *testing.T) {
	h := newRecorder()
	a := start(t, 1, h)
	a.Send([]*shoalpb.RaftEnvelope{msg(4, 9, 1), msg(5, 9, 2)})
	// Reports for an unknown peer are synchronous.
	if h.unreachableFor(4, 9) != 1 || h.unreachableFor(5, 9) != 1 {
		t.Fatalf("unreachable reports to node 9: shard 4 %d, shard 5 %d; want 1 each", h.unreachableFor(4, 9), h.unreachableFor(5, 9))
	}
}

// A peer that accepts connections but never answers keeps its sender
// blocked with a full queue; a peer that is not listening refuses
// connections. Neither delays delivery to a live peer.
func TestDeadPeerDoesNotBlock(t *testing.T) {
	ha, hb := newRecorder(), newRecorder()
	const queueLen = 16
	a := startCfg(t, transportConfig(1, ha, queueLen))
	b := start(t, 2, hb)
	a.SetPeer(2, b.Addr())
	a.SetPeer(3, blackhole(t))
	a.SetPeer(4, closedAddr(t))

	const n = 100
	var dead []*shoalpb.RaftEnvelope
	for i := range uint64(n) {
		dead = append(dead, msg(1, 3, i), msg(1, 4, i))
	}
	a.Send(dead)
	// Node 3's sender is stuck connecting, so the messages beyond its
	// queue were dropped and reported by Send itself.
	if u := ha.unreachableTo(3); u < n-queueLen {
		t.Fatalf("%d messages to the hung peer reported unreachable at once, want >= %d", u, n-queueLen)
	}

	a.Send([]*shoalpb.RaftEnvelope{msg(1, 2, 7)})
	waitFor(t, "delivery to the live peer", func() bool { return hb.count() == 1 })

	// The hung peer's queue is still full: one more message is dropped at
	// once. So node 2 got its message while node 3 was stuck.
	before := ha.unreachableTo(3)
	a.Send([]*shoalpb.RaftEnvelope{msg(1, 3, n)})
	if after := ha.unreachableTo(3); after != before+1 {
		t.Fatalf("unreachable reports for the hung peer went from %d to %d, want +1", before, after)
	}
	// Everything sent to the refusing peer is eventually reported.
	waitFor(t, "reports for the refusing peer", func() bool { return ha.unreachableTo(4) == n })
}

// blackhole returns the address of a listener that accepts connections and
// never reads or writes.
func blackhole(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}
