package server

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pipelined writes travel as one SHOAL.BATCH per run of writes to a shard;
// replies must still come back one per command, in order, with reads and
// errors in between seeing every earlier write.
func TestPipelinedWritesKeepTheirOrder(t *testing.T) {
	_, addr := startServer(t, newFakeCluster(), Config{})
	cl := redis.NewClient(&redis.Options{Addr: addr})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := cl.Pipeline()
	set := p.Set(ctx, "{a}k", "1", 0)
	incr1 := p.Incr(ctx, "{a}k")
	incr2 := p.Incr(ctx, "{a}k")
	get := p.Get(ctx, "{a}k")
	other := p.Set(ctx, "{b}j", "x", 0) // another shard
	app := p.Append(ctx, "{b}j", "y")
	bad := p.Incr(ctx, "{b}j") // an error inside a run
	after := p.Incr(ctx, "{a}k")
	getJ := p.Get(ctx, "{b}j")
	if _, err := p.Exec(ctx); err == nil {
		t.Fatal("pipeline with a failing INCR reported no error")
	}
	checks := []struct {
		name string
		got  any
		err  error
		want any
	}{
		{"SET {a}k", set.Val(), set.Err(), "OK"},
		{"INCR {a}k", incr1.Val(), incr1.Err(), int64(2)},
		{"INCR {a}k", incr2.Val(), incr2.Err(), int64(3)},
		{"GET {a}k", get.Val(), get.Err(), "3"},
		{"SET {b}j", other.Val(), other.Err(), "OK"},
		{"APPEND {b}j", app.Val(), app.Err(), int64(2)},
		{"INCR {a}k after", after.Val(), after.Err(), int64(4)},
		{"GET {b}j", getJ.Val(), getJ.Err(), "xy"},
	}
	for _, c := range checks {
		if c.err != nil || c.got != c.want {
			t.Errorf("%s = %v, %v; want %v", c.name, c.got, c.err, c.want)
		}
	}
	if bad.Err() == nil || bad.Err().Error() != "ERR value is not an integer or out of range" {
		t.Errorf("INCR on a string = %v, want the integer error", bad.Err())
	}
}
