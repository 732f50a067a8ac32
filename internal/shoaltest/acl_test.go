package shoaltest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestUsersAreClusterWide: a user made on one node logs in on every other
// at once, a password set on one node is required on every node, and
// users survive a node's crash and restart.
func TestUsersAreClusterWide(t *testing.T) {
	c := Start(t, 3, Options{})
	c.WaitFor(60*time.Second, "every shard on 3 voters", c.FullyReplicated(3))
	ctx := ctxT(t, time.Minute)
	admin := c.Client(1)
	if err := admin.Do(ctx, "ACL", "SETUSER", "bob", "on", ">pw", "~b:*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	for id := uint64(2); id <= 3; id++ {
		cl := c.Client(id)
		if err := cl.Do(ctx, "AUTH", "bob", "pw").Err(); err != nil {
			t.Fatalf("AUTH bob on node %d right after ACL SETUSER on node 1: %v", id, err)
		}
		if err := cl.Set(ctx, fmt.Sprintf("b:%d", id), "x", 0).Err(); err != nil {
			t.Fatalf("SET as bob on node %d: %v", id, err)
		}
		if err := cl.Set(ctx, "other", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Fatalf("SET of a key outside bob's patterns on node %d: %v", id, err)
		}
	}
	if err := c.Client(2).Do(ctx, "CONFIG", "SET", "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(10*time.Second, "node 3 requires the password", func() error {
		cl := redis.NewClient(&redis.Options{Addr: c.members[2].addr, MaxRetries: -1})
		defer cl.Close()
		if err := cl.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
			return fmt.Errorf("PING without a password: %v", err)
		}
		return nil
	})

	c.Crash(3)
	c.Restart(3)
	// From its restart on, node 3 never lets in a client without the
	// password, even before it has re-applied its meta log.
	for i := 0; i < 20; i++ {
		cl := redis.NewClient(&redis.Options{Addr: c.members[2].addr, MaxRetries: -1})
		err := cl.Ping(ctx).Err()
		cl.Close()
		if err == nil {
			t.Fatalf("PING without a password %d ms after node 3 restarted was answered", i*10)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.WaitFor(30*time.Second, "node 3 serves again", func() error {
		cl := redis.NewClient(&redis.Options{Addr: c.members[2].addr, Username: "bob", Password: "pw", MaxRetries: -1})
		defer cl.Close()
		v, err := cl.Get(ctx, "b:3").Result()
		if err != nil || v != "x" {
			return fmt.Errorf("GET b:3 as bob after a restart = %q, %v", v, err)
		}
		return nil
	})
	cl := redis.NewClient(&redis.Options{Addr: c.members[2].addr, Password: "wrong", MaxRetries: -1})
	defer cl.Close()
	if err := cl.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Fatalf("a wrong password after the restart: %v", err)
	}
}
