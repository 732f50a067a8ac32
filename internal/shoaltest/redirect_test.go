package shoaltest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shoaldb/shoal/internal/keys"
)

// A cluster client with a stale slot map sends its commands to a node that
// no longer leads their shard, on pooled connections that never asked for
// the map. By default that node forwards the writes, as it does for plain
// clients; with ClusterClientsOnly it answers MOVED, and the client goes to
// the leader itself.
func TestStaleClusterClientRedirectedOnlyWhenClusterClientsOnly(t *testing.T) {
	for _, only := range []bool{false, true} {
		t.Run(fmt.Sprintf("ClusterClientsOnly=%v", only), func(t *testing.T) {
			c := Start(t, 3, Options{Shards: 3, ClusterClientsOnly: only})
			c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
			// Once each node leads one shard, placement moves no more
			// leaders.
			c.WaitFor(30*time.Second, "one shard led by each node", func() error {
				leads := map[uint64]int{}
				for _, sh := range c.Node(1).Topology().Shards {
					leads[sh.Leader]++
				}
				if leads[1] != 1 || leads[2] != 1 || leads[3] != 1 {
					return fmt.Errorf("shards led per node: %v", leads)
				}
				return nil
			})
			var first, last int
			for _, sh := range c.Node(1).Topology().Shards {
				if sh.Leader != 1 {
					first, last = sh.FirstSlot, sh.LastSlot
				}
			}
			// The client believes node 1 serves every slot.
			cl := redis.NewClusterClient(&redis.ClusterOptions{
				ClusterSlots: func(context.Context) ([]redis.ClusterSlot, error) {
					return []redis.ClusterSlot{{Start: 0, End: keys.SlotCount - 1, Nodes: []redis.ClusterNode{{Addr: c.members[0].addr}}}}, nil
				},
				PoolSize: 4, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
			})
			t.Cleanup(func() { cl.Close() })
			forwarded := func() float64 { return metricValues(t, c.Node(1))["shoal_forwarded_commands_total"] }
			before := forwarded()
			const clients, sets = 4, 10
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for w := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range sets {
						k := keyInSlots(fmt.Sprintf("stale:%d:%d:", w, i), first, last)
						v := fmt.Sprint(i)
						if err := cl.Set(ctxT(t, 10*time.Second), k, v, 0).Err(); err != nil {
							errs <- fmt.Errorf("SET %s: %w", k, err)
							return
						}
						if got, err := cl.Get(ctxT(t, 10*time.Second), k).Result(); err != nil || got != v {
							errs <- fmt.Errorf("GET %s = %q, %v; want %q", k, got, err, v)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			d := forwarded() - before
			switch {
			case only && d != 0:
				t.Fatalf("node 1 forwarded %.0f commands; with ClusterClientsOnly it redirects them", d)
			case !only && d < clients*sets:
				t.Fatalf("node 1 forwarded %.0f of %d SETs for a shard it does not lead; by default it forwards them all", d, clients*sets)
			}
		})
	}
}

// keyInSlots returns the first key prefix+N whose slot is in [first, last].
func keyInSlots(prefix string, first, last int) string {
	for i := 0; ; i++ {
		k := prefix + fmt.Sprint(i)
		if s := keys.Slot([]byte(k)); s >= first && s <= last {
			return k
		}
	}
}
