package store

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoaldb/shoal/internal/keys"
)

// A leader whose own fsyncs are slow sees its entries committed by its
// two followers' acknowledgements before it can apply them. The
// followers must not apply them first: a follower serving reads (after a
// read index) would show a write that a later read under the leader's
// lease does not see yet (capCommit).
func TestFollowersNeverApplyAheadOfTheirLeader(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes, slow := startSlowableCluster(t, n)
	propose(t, nodes, "w", "0")
	leader := leaderOf(t, nodes)
	slow[leader].Store(true)

	value := func(tn *testNode) int {
		v, _, _ := tn.eng.Get(keys.Meta("w"))
		i, _ := strconv.Atoi(string(v))
		return i
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var ahead atomic.Int64
	for id, tn := range nodes {
		if id == leader {
			continue
		}
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				// The follower first, then the leader, whose state only
				// grows: the leader must have what the follower had.
				if f, l := value(tn), value(nodes[leader]); f > l {
					ahead.Add(1)
				}
			}
		})
	}
	for i := 1; i <= 30; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := nodes[leader].st.Propose(ctx, 1, [][]byte{[]byte("set"), []byte("w"), []byte(strconv.Itoa(i))})
		cancel()
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	close(done)
	wg.Wait()
	if a := ahead.Load(); a > 0 {
		t.Fatalf("a follower had applied a write its leader had not, %d times", a)
	}
}
