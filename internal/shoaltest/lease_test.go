package shoaltest

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// anyLease reports whether some node's leader replica holds a read lease.
func (c *Cluster) anyLease() bool {
	for _, m := range c.members {
		st := m.n.Store()
		for _, ri := range st.Replicas() {
			if ri.IsLeader && st.LeaseRead(ri) {
				return true
			}
		}
	}
	return false
}

// Reads are served under leases by default; with NoReadLeases
// (--read-leases=false) no leader ever holds one, and reads still see
// every write.
func TestReadLeasesCanBeTurnedOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoReadLeases=%v", off), func(t *testing.T) {
			c := Start(t, 3, Options{Shards: 2, NoReadLeases: off})
			c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
			cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{c.members[0].addr}})
			defer cc.Close()
			const n = 20
			for i := range n {
				if err := cc.Set(ctxT(t, 10*time.Second), fmt.Sprint("lease:", i), i, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			leased := false
			// With leases on, stop as soon as one is seen; off, read all
			// rounds and never see one.
			for round := 0; round < 50 && (off || !leased); round++ {
				for i := range n {
					if got, err := cc.Get(ctxT(t, 10*time.Second), fmt.Sprint("lease:", i)).Int(); err != nil || got != i {
						t.Fatalf("GET lease:%d = %d, %v", i, got, err)
					}
				}
				leased = leased || c.anyLease()
			}
			if leased == off {
				t.Fatalf("NoReadLeases=%v, but a leader holding a lease was seen: %v", off, leased)
			}
		})
	}
}
