package load

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// dial opens client i's connection. Every client gets its own connection
// (one per node for a cluster client), as redis-benchmark's clients do.
func dial(ctx context.Context, cfg *Config, i int) (conn, error) {
	if cfg.Target == "etcd" {
		c, err := clientv3.New(clientv3.Config{
			Endpoints: cfg.Addrs, DialTimeout: cfg.Timeout, Context: ctx, Logger: zap.NewNop(),
		})
		if err != nil {
			return nil, err
		}
		return etcdConn{c}, nil
	}
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	var c redis.UniversalClient
	if cfg.Cluster {
		c = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: cfg.Addrs, Protocol: 2, PoolSize: 1, PipelinePoolSize: -1,
			MaxRetries: -1, DisableIdentity: true, MaintNotificationsConfig: noMaint,
			ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
		})
	} else {
		c = redis.NewClient(&redis.Options{
			Addr: cfg.Addrs[i%len(cfg.Addrs)], Protocol: 2, PoolSize: 1, PipelinePoolSize: -1,
			MaxRetries: -1, DisableIdentity: true, MaintNotificationsConfig: noMaint,
			ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
		})
	}
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, err
	}
	return redisConn{c}, nil
}

type redisConn struct{ c redis.UniversalClient }

func (r redisConn) close() { r.c.Close() }

func (r redisConn) do(ctx context.Context, ops []op, value []byte) (errs, misses int, first error) {
	if len(ops) == 1 && ops[0].more == nil {
		var err error
		if ops[0].read {
			err = r.c.Get(ctx, ops[0].key).Err()
		} else {
			err = r.c.Set(ctx, ops[0].key, value, 0).Err()
		}
		return count(err, 0, 0, nil)
	}
	p := r.c.Pipeline()
	for _, o := range ops {
		switch {
		case o.more != nil:
			args := []any{o.key, value}
			for _, k := range o.more {
				args = append(args, k, value)
			}
			p.MSet(ctx, args...)
		case o.read:
			p.Get(ctx, o.key)
		default:
			p.Set(ctx, o.key, value, 0)
		}
	}
	cmds, err := p.Exec(ctx)
	if len(cmds) == 0 && err != nil {
		return len(ops), 0, err
	}
	for _, c := range cmds {
		errs, misses, first = count(c.Err(), errs, misses, first)
	}
	return errs, misses, first
}

// count adds err's outcome to the tallies; redis.Nil is a miss, not an error.
func count(err error, errs, misses int, first error) (int, int, error) {
	switch {
	case err == nil:
	case errors.Is(err, redis.Nil):
		misses++
	default:
		errs++
		if first == nil {
			first = err
		}
	}
	return errs, misses, first
}

type etcdConn struct{ c *clientv3.Client }

func (e etcdConn) close() { e.c.Close() }

// do sends the ops concurrently on the client's one gRPC connection, the
// closest etcd has to a pipeline. Gets are linearizable (the default).
func (e etcdConn) do(ctx context.Context, ops []op, value []byte) (errs, misses int, first error) {
	one := func(o op) (miss bool, err error) {
		if o.read {
			r, err := e.c.Get(ctx, o.key)
			return err == nil && r.Count == 0, err
		}
		_, err = e.c.Put(ctx, o.key, string(value))
		return false, err
	}
	if len(ops) == 1 {
		miss, err := one(ops[0])
		if miss {
			return 0, 1, nil
		}
		return count(err, 0, 0, nil)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, o := range ops {
		wg.Go(func() {
			miss, err := one(o)
			mu.Lock()
			defer mu.Unlock()
			if miss {
				misses++
			}
			errs, misses, first = count(err, errs, misses, first)
		})
	}
	wg.Wait()
	return errs, misses, first
}
