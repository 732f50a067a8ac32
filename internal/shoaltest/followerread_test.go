package shoaltest

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shoaldb/shoal/internal/store"
)

// A plain client's read at a node that holds a follower replica of the
// key's shard is served there, after a read index the leader answers
// under its lease (with leases off it is forwarded), and sees every write
// acknowledged before it, wherever it was written.
func TestPlainReadsAreServedByFollowers(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoReadLeases=%v", off), func(t *testing.T) {
			c := Start(t, 3, Options{Shards: 2, NoReadLeases: off})
			c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
			var clients []*redis.Client
			for _, m := range c.members {
				cl := redis.NewClient(&redis.Options{Addr: m.addr, MaxRetries: -1})
				defer cl.Close()
				clients = append(clients, cl)
			}
			// Each value is written through one node and read at once
			// through every node.
			for i := range 60 {
				key := fmt.Sprint("fr:", i%7)
				if err := clients[i%3].Set(ctxT(t, 10*time.Second), key, i, 0).Err(); err != nil {
					t.Fatal(err)
				}
				for j, cl := range clients {
					if got, err := cl.Get(ctxT(t, 10*time.Second), key).Int(); err != nil || got != i {
						t.Fatalf("GET %s through node %d after SET %d = %d, %v", key, j+1, i, got, err)
					}
				}
			}
			var sum store.Stats
			for _, m := range c.members {
				s := m.n.Store().Stats()
				sum.FollowerReadIndexes += s.FollowerReadIndexes
				sum.LeaseAnswers += s.LeaseAnswers
			}
			// With leases off a follower has no leader clock reading
			// to judge expiry by, so its node forwards reads instead.
			if off != (sum.FollowerReadIndexes == 0) || off != (sum.LeaseAnswers == 0) {
				t.Errorf("NoReadLeases=%v: %d follower read index requests, %d lease answers", off, sum.FollowerReadIndexes, sum.LeaseAnswers)
			}
		})
	}
}
