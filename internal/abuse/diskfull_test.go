package abuse

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shoaldb/shoal/internal/chaos"
	"github.com/shoaldb/shoal/internal/diskspace"
	"github.com/shoaldb/shoal/internal/keys"
)

// A node whose disk fills up refuses writes that add data, keeps serving
// reads, never dies, and neither does the cluster: the other replicas go
// on. Restarted on a full disk, it starts, serves reads and stops on
// SIGTERM. Node 1's data directory is a 256 MiB tmpfs (root only).
func TestFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of real processes")
	}
	dir := t.TempDir()
	small := filepath.Join(dir, "node1")
	if err := os.MkdirAll(small, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Skipf("needs root to mount a small filesystem: mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", small).Run() })
	chaos.QuietRedisLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin, err := chaos.Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	const reserve = 32 << 20
	cl, err := chaos.StartCluster(ctx, chaos.ClusterConfig{Bin: bin, Dir: dir, Nodes: 3, Shards: 4,
		Logf: t.Logf, Args: []string{"--disk-reserve", "32mb"}})
	if cl != nil {
		defer cl.Stop()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	n1, n2 := cl.Nodes[0], cl.Nodes[1]
	c1, c2 := client(n1.Addr), client(n2.Addr)
	defer c1.Close()
	defer c2.Close()
	if st, err := os.Stat(filepath.Join(small, diskspace.BallastName)); err != nil || st.Size() != reserve {
		t.Fatalf("ballast: %v, %v; want %d bytes", st, err, reserve)
	}
	if err := c1.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// Another process fills the disk to 20 MiB short of full.
	filler := filepath.Join(small, "filler")
	fill(t, filler, small, 20<<20)
	const misconf = "MISCONF Disk full"
	waitFor(t, ctx, "node 1 to refuse writes", func() error {
		if err := c1.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), misconf) {
			return fmt.Errorf("SET through node 1: %v", err)
		}
		return nil
	})
	if v, err := c1.Get(ctx, "before").Result(); err != nil || v != "1" {
		t.Fatalf("GET through node 1 with a full disk = %q, %v", v, err)
	}
	if info := c1.Info(ctx, "persistence").Val(); !strings.Contains(info, "aof_last_write_status:err") {
		t.Errorf("INFO persistence with a full disk: %q", info)
	}
	if err := c1.Del(ctx, "before").Err(); err != nil {
		t.Errorf("DEL through node 1 with a full disk: %v", err)
	}

	// 64 MiB written through node 2 to shards node 1 does not lead: node 1
	// has no room for them and must not try to write them.
	var ranges []chaos.Range
	waitFor(t, ctx, "a shard led by another node than node 1", func() error {
		var err error
		ranges, err = cl.Slots(ctx) // on a connection of its own: c2 must not get MOVED
		for _, r := range ranges {
			if r.Nodes[0] != n1.Addr {
				return nil
			}
		}
		return fmt.Errorf("node 1 leads every shard (%v)", err)
	})
	ledBy1 := func(slot int) bool {
		for _, r := range ranges {
			if slot >= r.Start && slot <= r.End {
				return r.Nodes[0] == n1.Addr
			}
		}
		return true
	}
	value := strings.Repeat("v", 1<<20)
	var written []string
	for i := 0; len(written) < 64 && i < 100000; i++ {
		k := fmt.Sprint("big", i)
		if ledBy1(keys.Slot([]byte(k))) {
			continue
		}
		if err := c2.Set(ctx, k, value, 0).Err(); err != nil {
			t.Fatalf("SET %s through node 2 while node 1's disk is full: %v", k, err)
		}
		written = append(written, k)
	}
	if c := cl.Crashes(); len(c) > 0 {
		t.Fatalf("nodes died: %v", c)
	}

	// Nearly full: the ballast goes, node 1 stays up.
	fill(t, filler, small, 8<<20)
	waitFor(t, ctx, "the ballast to be deleted", func() error {
		if _, err := os.Stat(filepath.Join(small, diskspace.BallastName)); err == nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
	if err := c1.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING node 1 after the ballast went: %v", err)
	}

	// Space freed: writes come back, and node 1 catches up.
	os.Remove(filler)
	waitFor(t, ctx, "node 1 to accept writes again", func() error { return c1.Set(ctx, "after", "1", 0).Err() })
	for _, k := range written[:4] {
		if n, err := c1.StrLen(ctx, k).Result(); err != nil || n != 1<<20 {
			t.Fatalf("STRLEN %s through node 1 after freeing space = %d, %v", k, n, err)
		}
	}

	// Restarted on a full disk: it starts, serves reads, stops on SIGTERM.
	if err := cl.Kill(n1); err != nil {
		t.Fatal(err)
	}
	fill(t, filler, small, 0)
	if err := cl.Start(n1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "node 1 to serve reads after a restart on a full disk", func() error {
		v, err := c1.Get(ctx, "after").Result()
		if err == nil && v != "1" {
			err = fmt.Errorf("GET after = %q", v)
		}
		return err
	})
	// Opening the database freed what the killed process left (obsolete
	// files): fill the disk again.
	fill(t, filler, small, 0)
	waitFor(t, ctx, "node 1, restarted, to refuse writes on a full disk", func() error {
		if err := c1.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), misconf) {
			return fmt.Errorf("SET through node 1: %v", err)
		}
		return nil
	})
	if err := cl.Terminate(n1, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if c := cl.Crashes(); len(c) > 0 {
		t.Fatalf("nodes died: %v", c)
	}
}

func client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 2 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
}

// fill makes path a file taking all but leave bytes of dir's filesystem.
func fill(t *testing.T, path, dir string, leave int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := f.Seek(0, 2)
	grow := free - leave
	if grow <= 0 {
		return
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, size, grow); err != nil {
		t.Fatalf("fallocate %d bytes: %v", grow, err)
	}
}

// waitFor polls cond every 100 ms for up to 30 s.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
