package server

import (
	"context"
	"errors"
	"net"
	"slices"
	"sort"
	"strconv"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/resp"
)

// Errors of routing, worded as Redis Cluster words them.
var (
	errCrossSlot   = resp.Err("CROSSSLOT Keys in request don't hash to the same slot")
	errClusterDown = resp.Err("CLUSTERDOWN The cluster is down")
	errSlotDown    = resp.Err("CLUSTERDOWN Hash slot not served")
)

// runKV routes a keyed kv command to the shard owning its keys: a MOVED
// redirection for a cluster-aware client when another node leads the
// shard, else Cluster.Execute (which forwards to the leader if needed).
func runKV(ctx context.Context, c *conn, cmd *command, args [][]byte) resp.Value {
	sp := cmd.spec
	write := sp.Flags&kv.Write != 0
	if c.srv.overMemory(sp) {
		c.srv.stats.oom.Add(1)
		return errOOM
	}
	if c.srv.diskFull(sp) {
		return errDiskFull
	}
	if v, refused := kv.RefuseEarly(args, c.srv.MaxValueLen()); refused {
		return v
	}
	topo := c.srv.cluster.Topology()
	ks := sp.Keys(args)
	if len(ks) == 0 {
		// A form without keys, such as OBJECT HELP, reads no data: any
		// shard answers it alike, preferably one led here.
		sh, ok := anyShard(topo)
		if !ok {
			return errClusterDown
		}
		return c.srv.execute(ctx, Request{Shard: sh.ID, Args: args, Write: write, FollowerRead: c.st.readonly && !write,
			MaxReplyLen: c.srv.maxReply()})
	}
	slot := keys.Slot(ks[0])
	sh, ok := shardOf(topo.Shards, slot)
	if !ok {
		return errSlotDown
	}
	for _, k := range ks[1:] {
		if s := keys.Slot(k); s < sh.FirstSlot || s > sh.LastSlot {
			return errCrossSlot
		}
	}
	if c.redirected() {
		if addr, ok := redirect(topo, sh, write, c.st.readonly, c.lhost); ok {
			return moved(slot, addr)
		}
	}
	return c.srv.execute(ctx, Request{
		Shard:        sh.ID,
		Args:         args,
		Write:        write,
		FollowerRead: c.st.readonly && !write,
		MaxReplyLen:  c.srv.maxReply(),
	})
}

// redirected reports whether the client gets MOVED, rather than having its
// command forwarded, when another node leads the command's shard.
func (c *conn) redirected() bool {
	return c.st.clusterAware || c.srv.cfg.ClusterClientsOnly
}

// execute runs req through the Cluster, translating a failure to its reply.
func (s *Server) execute(ctx context.Context, req Request) resp.Value {
	v, err := s.cluster.Execute(ctx, req)
	if err != nil {
		return s.errorReply(err)
	}
	return v
}

// errorReply is the one place errors of the Cluster become Redis replies.
// An error of no known kind is a fault inside shoal: it is logged, and the
// client gets a reply without its text.
func (s *Server) errorReply(err error) resp.Value {
	switch {
	case errors.Is(err, ErrNoLeader):
		return resp.Err("TRYAGAIN The shard has no leader right now, try again later")
	case errors.Is(err, ErrTimeout):
		return resp.Err("TRYAGAIN The command timed out and its outcome is unknown")
	case errors.Is(err, ErrUnavailable):
		return errClusterDown
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return resp.Err("TRYAGAIN The command was cancelled and its outcome is unknown")
	case errors.Is(err, ErrTooLarge):
		return resp.Err("ERR command too large: its arguments pass the most one replicated write may hold")
	case errors.Is(err, ErrOOM):
		s.stats.oom.Add(1)
		return errOOM
	case errors.Is(err, ErrDiskFull):
		return errDiskFull
	}
	s.log.Warn("server: command failed", "err", err)
	return resp.Err("ERR internal error: the command failed on the node (see its log)")
}

// anyShard returns a shard led by this node if there is one, else the
// first.
func anyShard(topo Topology) (Shard, bool) {
	for _, sh := range topo.Shards {
		if sh.Leader == topo.Self {
			return sh, true
		}
	}
	if len(topo.Shards) == 0 {
		return Shard{}, false
	}
	return topo.Shards[0], true
}

// shardOf returns the shard owning slot in shards, which are ordered by
// FirstSlot.
func shardOf(shards []Shard, slot int) (Shard, bool) {
	i := sort.Search(len(shards), func(i int) bool { return shards[i].LastSlot >= slot })
	if i == len(shards) || shards[i].FirstSlot > slot {
		return Shard{}, false
	}
	return shards[i], true
}

// redirect decides whether a cluster-aware client must be sent to another
// node for a command on sh: yes when the shard's leader is known and is
// another node, unless the command is a read on a READONLY connection and
// this node holds a replica of the shard. It returns the leader's address.
func redirect(topo Topology, sh Shard, write, readonly bool, localHost string) (string, bool) {
	if sh.Leader == 0 || sh.Leader == topo.Self {
		return "", false
	}
	if readonly && !write && slices.Contains(sh.Replicas, topo.Self) {
		return "", false
	}
	n, ok := nodeOf(topo, sh.Leader)
	if !ok || n.Addr == "" {
		return "", false // nowhere to send the client: forward instead
	}
	host, port, ok := endpoint(n.Addr, localHost)
	if !ok {
		return "", false
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), true
}

func moved(slot int, addr string) resp.Value {
	return resp.Err("MOVED " + strconv.Itoa(slot) + " " + addr)
}

func nodeOf(topo Topology, id uint64) (Node, bool) {
	for _, n := range topo.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// endpoint splits a node's client address into the host and port a client
// should dial. A node listening on a wildcard address (":6379",
// "0.0.0.0:6379") is announced with localHost, the address the client
// reached this node on: right for nodes sharing a host, and the best guess
// there is otherwise.
func endpoint(addr, localHost string) (host string, port int, ok bool) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	port, err = strconv.Atoi(p)
	if err != nil {
		return "", 0, false
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = localHost
	}
	return host, port, true
}
