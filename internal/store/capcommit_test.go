package store

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// slowSyncFS delays every sync of its files by a while when slow is set.
type slowSyncFS struct {
	vfs.FS
	slow *atomic.Bool
}

type slowSyncFile struct {
	vfs.File
	slow *atomic.Bool
}

func (f slowSyncFile) wait() {
	if f.slow.Load() {
		time.Sleep(30 * time.Millisecond)
	}
}

func (f slowSyncFile) Sync() error     { f.wait(); return f.File.Sync() }
func (f slowSyncFile) SyncData() error { f.wait(); return f.File.SyncData() }
func (f slowSyncFile) SyncTo(n int64) (bool, error) {
	f.wait()
	return f.File.SyncTo(n)
}

func (fs slowSyncFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return slowSyncFile{f, fs.slow}, nil
}

func (fs slowSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs slowSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs slowSyncFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(old, name, c))
}

// A leader whose own fsyncs are slow sees its entries committed by its
// two followers' acknowledgements before it can apply them. The
// followers must not apply them first: a follower serving reads (after a
// read index) would show a write that a later read under the leader's
// lease does not see yet (capCommit).
func TestFollowersNeverApplyAheadOfTheirLeader(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes := map[uint64]*testNode{}
	slow := map[uint64]*atomic.Bool{}
	for id := uint64(1); id <= 3; id++ {
		slow[id] = new(atomic.Bool)
		tn := startNode(t, n, id, slowSyncFS{vfs.NewMem(), slow[id]}, 1024)
		if err := tn.st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1, 2, 3}, nil); err != nil {
			t.Fatal(err)
		}
		tn.st.Start()
		nodes[id] = tn
	}
	defer func() {
		for id, tn := range nodes {
			tn.stop(n, id)
		}
	}()
	propose(t, nodes, "w", "0")
	var leader uint64
	for id, tn := range nodes {
		if ri, _ := tn.st.Replica(1); ri.IsLeader {
			leader = id
		}
	}
	if leader == 0 {
		t.Fatal("no leader")
	}
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
