package shoaltest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shoaldb/shoal/internal/keys"
)

func TestClusterClientRoutesToLeaders(t *testing.T) {
	c := Start(t, 3, Options{Shards: 6})
	c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{c.members[0].addr}})
	defer cc.Close()
	for i := range 300 {
		k := fmt.Sprintf("cc:%d", i)
		if err := cc.Set(ctxT(t, 10*time.Second), k, i, 0).Err(); err != nil {
			t.Fatalf("ClusterClient SET %s: %v", k, err)
		}
	}
	for i := range 300 {
		k := fmt.Sprintf("cc:%d", i)
		if got, err := cc.Get(ctxT(t, 10*time.Second), k).Int(); err != nil || got != i {
			t.Fatalf("ClusterClient GET %s = %d, %v; want %d", k, got, err, i)
		}
	}
	// Multi-key commands on one hash tag work through the cluster client.
	if err := cc.MSet(ctxT(t, 5*time.Second), "{u}a", "1", "{u}b", "2").Err(); err != nil {
		t.Fatalf("MSET on one hash tag: %v", err)
	}
	if vals, err := cc.MGet(ctxT(t, 5*time.Second), "{u}a", "{u}b").Result(); err != nil || vals[0] != "1" || vals[1] != "2" {
		t.Fatalf("MGET = %v, %v", vals, err)
	}
}

func TestMovedOnlyForClusterAwareConnections(t *testing.T) {
	c := Start(t, 3, Options{Shards: 6})
	c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
	// Find a key whose shard node 1 does not lead, once leadership spread.
	c.WaitFor(30*time.Second, "a shard led by another node", func() error {
		for _, sh := range c.Node(1).Topology().Shards {
			if sh.Leader != 1 && sh.Leader != 0 {
				return nil
			}
		}
		return fmt.Errorf("node 1 leads every shard")
	})
	topo := c.Node(1).Topology()
	var key string
	var leader uint64
	for i := 0; key == "" && i < 100000; i++ {
		k := fmt.Sprintf("m:%d", i)
		slot := keys.Slot([]byte(k))
		for _, sh := range topo.Shards {
			if slot >= sh.FirstSlot && slot <= sh.LastSlot && sh.Leader != 1 && sh.Leader != 0 {
				key, leader = k, sh.Leader
			}
		}
	}
	conn := c.Client(1).Conn()
	defer conn.Close()
	// A plain connection is served: node 1 forwards to the leader, and
	// counts it.
	forwarded := func() float64 { return metricValues(t, c.Node(1))["shoal_forwarded_commands_total"] }
	before := forwarded()
	if err := conn.Set(ctxT(t, 5*time.Second), key, "v", 0).Err(); err != nil {
		t.Fatalf("plain SET via non-leader: %v", err)
	}
	if d := forwarded() - before; d < 1 {
		t.Fatalf("a forwarded SET left shoal_forwarded_commands_total %.0f higher", d)
	}
	// After CLUSTER SLOTS the connection is cluster-aware and is redirected.
	if err := conn.ClusterSlots(ctxT(t, 5*time.Second)).Err(); err != nil {
		t.Fatal(err)
	}
	err := conn.Get(ctxT(t, 5*time.Second), key).Err()
	want := fmt.Sprintf("MOVED %d %s", keys.Slot([]byte(key)), c.members[leader-1].addr)
	if err == nil || err.Error() != want {
		t.Fatalf("cluster-aware GET via non-leader = %v, want %q", err, want)
	}
}

func TestExpiredKeysAreSweptOnEveryReplica(t *testing.T) {
	c := Start(t, 3, Options{Shards: 2})
	c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
	cl := c.Client(2)
	for i := range 50 {
		if err := cl.Set(ctxT(t, 5*time.Second), fmt.Sprintf("{t}ttl:%d", i), "v", 300*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Set(ctxT(t, 5*time.Second), "{t}keep", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Expired keys vanish at once for reads...
	time.Sleep(400 * time.Millisecond)
	if n, err := cl.Exists(ctxT(t, 5*time.Second), "{t}ttl:1", "{t}ttl:2", "{t}keep").Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS after expiry = %d, %v; want 1", n, err)
	}
	// ...and the sweeper deletes them from every replica's storage.
	c.WaitFor(10*time.Second, "expired keys deleted on all replicas", func() error {
		for id := uint64(1); id <= 3; id++ {
			n := 0
			lo, hi := keys.SlotSpan(0, keys.SlotCount-1)
			c.Node(id).Engine().Iterate(lo, hi, func(k, _ []byte) bool {
				if keys.IsData(k) && strings.Contains(string(keys.DataUserKey(k)), "ttl:") {
					n++
				}
				return true
			})
			if n > 0 {
				return fmt.Errorf("node %d still stores %d expired keys", id, n)
			}
		}
		return nil
	})
}

// The sweep scans a shard's expiry index (a seek per slot) only when
// something may be due: after writes that gave keys an expiry, or when the
// earliest expiry comes. An idle shard is left alone, and so is one whose
// writes set no expiry.
func TestSweepScansOnlyWhenSomethingMayBeDue(t *testing.T) {
	c := Start(t, 1, Options{Shards: 2})
	c.WaitFor(30*time.Second, "shards led", c.AllShardsLed)
	cl := c.Client(1)
	scans := func() float64 { return metricValues(t, c.Node(1))["shoal_expiry_scans_total"] }
	if err := cl.Set(ctxT(t, 5*time.Second), "far", "v", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	// The write gets its shard scanned at the next round...
	before := scans()
	c.WaitFor(10*time.Second, "a scan after the write", func() error {
		if scans() == before {
			return errors.New("no scan yet")
		}
		return nil
	})
	// ...then, with nothing due for an hour and no writes, rounds pass
	// (200 ms each here) without scans.
	time.Sleep(300 * time.Millisecond) // a round in progress ends
	idle := scans()
	time.Sleep(time.Second)
	if got := scans(); got != idle {
		t.Errorf("an idle shard was scanned %.0f times in 5 rounds", got-idle)
	}
	// Writes that give no key an expiry cannot make anything due sooner.
	for i := range 20 {
		k := fmt.Sprint("plain:", i)
		if err := cl.Set(ctxT(t, 5*time.Second), k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := cl.Persist(ctxT(t, 5*time.Second), "far").Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	if got := scans(); got != idle {
		t.Errorf("writes without expiries got the shards scanned %.0f times", got-idle)
	}
	// A key that comes due is still swept from storage without a write.
	if err := cl.Set(ctxT(t, 5*time.Second), "soon", "v", 500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(10*time.Second, "the due key deleted", func() error {
		if _, ok, _ := c.Node(1).Engine().Get(keys.Data([]byte("soon"))); ok {
			return errors.New("still stored")
		}
		return nil
	})
}

// A node that takes over a shard sweeps what came due there: the leader of
// a shard whose keys expire in a moment crashes, and the new leader deletes
// them from its storage and its follower's.
func TestSweepGoesOnUnderANewLeader(t *testing.T) {
	c := Start(t, 3, Options{Shards: 2})
	c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
	slot := keys.Slot([]byte("t"))
	var leader uint64
	c.WaitFor(30*time.Second, "the shard of {t} led", func() error {
		for id := uint64(1); id <= 3; id++ {
			for _, ri := range c.Node(id).Store().Replicas() {
				if ri.IsLeader && !ri.Desc.GetMeta() && int(ri.Desc.GetFirstSlot()) <= slot && slot <= int(ri.Desc.GetLastSlot()) {
					leader = id
					return nil
				}
			}
		}
		return errors.New("no leader")
	})
	cl := c.Client(leader)
	for i := range 20 {
		if err := cl.Set(ctxT(t, 5*time.Second), fmt.Sprintf("{t}ttl:%d", i), "v", 1500*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c.Crash(leader) // before anything is due
	c.WaitFor(30*time.Second, "expired keys deleted on the surviving replicas", func() error {
		for id := uint64(1); id <= 3; id++ {
			if id == leader {
				continue
			}
			n := 0
			lo, hi := keys.SlotSpan(slot, slot)
			c.Node(id).Engine().Iterate(lo, hi, func(k, _ []byte) bool {
				if keys.IsData(k) {
					n++
				}
				return true
			})
			if n > 0 {
				return fmt.Errorf("node %d still stores %d keys of slot %d", id, n, slot)
			}
		}
		return nil
	})
}

func TestMultiKeyReadsSeeAtomicWrites(t *testing.T) {
	c := Start(t, 3, Options{Shards: 2})
	c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
	w := c.Client(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 300 {
			v := fmt.Sprint(i)
			if err := w.MSet(ctxT(t, 5*time.Second), "{x}a", v, "{x}b", v).Err(); err != nil {
				t.Errorf("MSET: %v", err)
				return
			}
		}
	}()
	reads := 0
	for id := uint64(1); ; id = id%3 + 1 {
		select {
		case <-done:
			if reads == 0 {
				t.Fatal("no reads overlapped the writes")
			}
			return
		default:
		}
		vals, err := c.Client(id).MGet(ctxT(t, 5*time.Second), "{x}a", "{x}b").Result()
		if err != nil {
			t.Fatalf("MGET via node %d: %v", id, err)
		}
		if vals[0] != vals[1] {
			t.Fatalf("MGET via node %d saw a half-applied MSET: %v", id, vals)
		}
		reads++
	}
}

// TestTopologyFollowsLeadershipAtOnce: the topology a node serves to
// CLUSTER SLOTS and uses to route is cached, but never behind the replica
// state it was built from, even within the second it was cached.
func TestTopologyFollowsLeadershipAtOnce(t *testing.T) {
	c := Start(t, 3, Options{Shards: 3})
	c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
	c.WaitFor(30*time.Second, "all shards led", c.AllShardsLed)
	n := c.Node(1)
	leaderIn := func(shard uint64) uint64 {
		for _, sh := range n.Topology().Shards {
			if sh.ID == shard {
				return sh.Leader
			}
		}
		t.Fatalf("shard %d missing from node 1's topology", shard)
		return 0
	}
	for moves := 0; moves < 3; moves++ {
		shards := n.Topology().Shards
		shard := shards[moves%len(shards)].ID
		ri, ok := n.Store().Replica(shard)
		if !ok || ri.Leader == 0 {
			t.Fatalf("node 1's replica of shard %d: %+v, %v", shard, ri, ok)
		}
		from := ri.Leader
		to := from%3 + 1
		if got := leaderIn(shard); got != from {
			t.Fatalf("before the move node 1's topology says shard %d is led by %d, its replica says %d", shard, got, from)
		}
		if err := c.Node(from).Store().TransferLeader(ctxT(t, 5*time.Second), shard, to); err != nil {
			t.Fatalf("transfer shard %d from %d to %d: %v", shard, from, to, err)
		}
		c.WaitFor(10*time.Second, "node 1 sees the new leader", func() error {
			ri, ok := n.Store().Replica(shard)
			if !ok || ri.Leader != to {
				return fmt.Errorf("node 1's replica of shard %d says leader %d", shard, ri.Leader)
			}
			return nil
		})
		// Whatever placement does next, the topology must agree with a
		// replica state that held both before and after it was read.
		for {
			before, _ := n.Store().Replica(shard)
			got := leaderIn(shard)
			after, _ := n.Store().Replica(shard)
			if before.Leader != after.Leader || before.Term != after.Term {
				continue
			}
			if got != after.Leader {
				t.Fatalf("after moving shard %d from %d to %d node 1's replica says leader %d but its topology %d", shard, from, to, after.Leader, got)
			}
			break
		}
	}
}
