package server

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/resp"
)

// CLUSTER subcommands. shoal presents itself to Redis Cluster clients as a
// cluster in which every node is a master serving the slots of the shards
// it leads, and the other replicas of a shard are that master's replicas.
// A shard whose leader is unknown is attributed to its first replica, so
// the slot map always covers every slot.

// nodeID formats a node id as a Redis Cluster node name: 40 hex digits.
func nodeID(id uint64) string { return fmt.Sprintf("%040x", id) }

// shardOwner is the node presented as the shard's master.
func shardOwner(sh Shard) uint64 {
	if sh.Leader != 0 || len(sh.Replicas) == 0 {
		return sh.Leader
	}
	return sh.Replicas[0]
}

// shardNodes returns the shard's nodes, its owner first.
func shardNodes(sh Shard) []uint64 {
	owner := shardOwner(sh)
	ids := make([]uint64, 0, len(sh.Replicas)+1)
	if owner != 0 {
		ids = append(ids, owner)
	}
	for _, r := range sh.Replicas {
		if r != owner {
			ids = append(ids, r)
		}
	}
	return ids
}

// markClusterAware records that the client reads the slot map and so will
// follow MOVED.
func markClusterAware(c *conn) {
	if !c.st.clusterAware {
		c.update(func(st *connState) { st.clusterAware = true })
	}
}

func cmdClusterSlots(ctx context.Context, c *conn, args [][]byte) resp.Value {
	markClusterAware(c)
	return clusterSlots(c.srv.cluster.Topology(), c.lhost)
}

// clusterSlots is CLUSTER SLOTS: per shard [first, last, master, replicas...]
// with each node as [ip, port, id].
func clusterSlots(topo Topology, localHost string) resp.Value {
	out := make([]resp.Value, 0, len(topo.Shards))
	for _, sh := range topo.Shards {
		entry := []resp.Value{resp.Int(int64(sh.FirstSlot)), resp.Int(int64(sh.LastSlot))}
		for i, id := range shardNodes(sh) {
			n, ok := nodeOf(topo, id)
			if !ok || i > 0 && !n.Alive {
				continue // as Redis, a failed replica is left out
			}
			host, port, ok := endpoint(n.Addr, localHost)
			if !ok {
				continue
			}
			entry = append(entry, resp.Array(resp.BulkString(host), resp.Int(int64(port)), resp.BulkString(nodeID(id))))
		}
		if len(entry) > 2 {
			out = append(out, resp.Array(entry...))
		}
	}
	return resp.Array(out...)
}

func cmdClusterShards(ctx context.Context, c *conn, args [][]byte) resp.Value {
	markClusterAware(c)
	return clusterShards(c.srv.cluster.Topology(), c.lhost)
}

// clusterShards is CLUSTER SHARDS in Redis 7's format: per shard a map of
// its slot ranges and its nodes.
func clusterShards(topo Topology, localHost string) resp.Value {
	out := make([]resp.Value, 0, len(topo.Shards))
	for _, sh := range topo.Shards {
		var nodes []resp.Value
		for i, id := range shardNodes(sh) {
			n, ok := nodeOf(topo, id)
			if !ok {
				continue
			}
			host, port, ok := endpoint(n.Addr, localHost)
			if !ok {
				continue
			}
			role, health := "master", "online"
			if i > 0 {
				role = "replica"
			}
			if !n.Alive {
				health = "failed"
			}
			nodes = append(nodes, resp.Map(
				resp.BulkString("id"), resp.BulkString(nodeID(id)),
				resp.BulkString("port"), resp.Int(int64(port)),
				resp.BulkString("ip"), resp.BulkString(host),
				resp.BulkString("endpoint"), resp.BulkString(host),
				resp.BulkString("role"), resp.BulkString(role),
				resp.BulkString("replication-offset"), resp.Int(0),
				resp.BulkString("health"), resp.BulkString(health),
			))
		}
		out = append(out, resp.Map(
			resp.BulkString("slots"), resp.Array(resp.Int(int64(sh.FirstSlot)), resp.Int(int64(sh.LastSlot))),
			resp.BulkString("nodes"), resp.Array(nodes...),
		))
	}
	return resp.Array(out...)
}

func cmdClusterNodes(ctx context.Context, c *conn, args [][]byte) resp.Value {
	markClusterAware(c)
	return verbatim(clusterNodes(c.srv.cluster.Topology(), c.lhost))
}

// clusterNodes is CLUSTER NODES: one line per node,
//
//	<id> <ip:port@busport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>...
//
// Every node is a master with the slot ranges of the shards it owns; the
// config epoch is the node id, which is unique as Redis requires.
func clusterNodes(topo Topology, localHost string) string {
	owned := make(map[uint64][][2]int)
	for _, sh := range topo.Shards {
		id := shardOwner(sh)
		rs := owned[id]
		if k := len(rs) - 1; k >= 0 && rs[k][1]+1 == sh.FirstSlot {
			rs[k][1] = sh.LastSlot
		} else {
			rs = append(rs, [2]int{sh.FirstSlot, sh.LastSlot})
		}
		owned[id] = rs
	}
	nodes := slices.Clone(topo.Nodes)
	slices.SortFunc(nodes, func(a, b Node) int { return cmpUint(a.ID, b.ID) })
	var b strings.Builder
	for _, n := range nodes {
		addr := ":0@0"
		if host, port, ok := endpoint(n.Addr, localHost); ok {
			addr = net.JoinHostPort(host, strconv.Itoa(port)) + "@" + strconv.Itoa(port+10000)
		}
		flags := "master"
		if n.ID == topo.Self {
			flags = "myself,master"
		}
		link := "connected"
		if !n.Alive {
			flags += ",fail"
			link = "disconnected"
		}
		fmt.Fprintf(&b, "%s %s %s - 0 0 %d %s", nodeID(n.ID), addr, flags, n.ID, link)
		for _, r := range owned[n.ID] {
			if r[0] == r[1] {
				fmt.Fprintf(&b, " %d", r[0])
			} else {
				fmt.Fprintf(&b, " %d-%d", r[0], r[1])
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func cmdClusterInfo(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return verbatim(clusterInfo(c.srv.cluster.Topology()))
}

// clusterInfo is CLUSTER INFO. A slot is ok when its shard has a leader;
// the cluster is ok when every slot is.
func clusterInfo(topo Topology) string {
	assigned, ok := 0, 0
	masters := make(map[uint64]bool)
	for _, sh := range topo.Shards {
		n := sh.LastSlot - sh.FirstSlot + 1
		assigned += n
		if sh.Leader != 0 {
			ok += n
		}
		if id := shardOwner(sh); id != 0 {
			masters[id] = true
		}
	}
	var epoch uint64
	for _, n := range topo.Nodes {
		epoch = max(epoch, n.ID)
	}
	state := "ok"
	if ok < keys.SlotCount {
		state = "fail"
	}
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	line("cluster_state", state)
	line("cluster_slots_assigned", assigned)
	line("cluster_slots_ok", ok)
	line("cluster_slots_pfail", 0)
	line("cluster_slots_fail", assigned-ok)
	line("cluster_known_nodes", len(topo.Nodes))
	line("cluster_size", len(masters))
	line("cluster_current_epoch", epoch)
	line("cluster_my_epoch", topo.Self)
	return b.String()
}

func cmdClusterMyID(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.BulkString(nodeID(c.srv.cluster.Topology().Self))
}

func cmdClusterKeySlot(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.Int(int64(keys.Slot(args[2])))
}

// cmdClusterCountKeys is CLUSTER COUNTKEYSINSLOT slot, answered by the
// shard owning the slot.
func cmdClusterCountKeys(ctx context.Context, c *conn, args [][]byte) resp.Value {
	slot, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return errNotInteger
	}
	if slot < 0 || slot >= keys.SlotCount {
		return resp.Err("ERR Invalid slot")
	}
	return c.srv.slotCommand(ctx, c, int(slot), []byte("SHOAL.COUNTKEYSINSLOT"), args[2])
}

// cmdClusterGetKeys is CLUSTER GETKEYSINSLOT slot count.
func cmdClusterGetKeys(ctx context.Context, c *conn, args [][]byte) resp.Value {
	slot, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return errNotInteger
	}
	count, err := strconv.ParseInt(string(args[3]), 10, 64)
	if err != nil {
		return errNotInteger
	}
	if slot < 0 || slot >= keys.SlotCount || count < 0 {
		return resp.Err("ERR Invalid slot or number of keys")
	}
	return c.srv.slotCommand(ctx, c, int(slot), []byte("SHOAL.GETKEYSINSLOT"), args[2], args[3])
}

// slotCommand runs an internal read about one slot on the shard owning it.
func (s *Server) slotCommand(ctx context.Context, c *conn, slot int, args ...[]byte) resp.Value {
	sh, ok := shardOf(s.cluster.Topology().Shards, slot)
	if !ok {
		return errSlotDown
	}
	return s.execute(ctx, Request{Shard: sh.ID, Args: args, FollowerRead: c.st.readonly})
}

func cmdClusterHelp(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return help("cluster",
		"COUNTKEYSINSLOT <slot>",
		"    Return the number of keys in <slot>.",
		"GETKEYSINSLOT <slot> <count>",
		"    Return key names stored by the shard in a slot.",
		"INFO",
		"    Return information about the cluster.",
		"KEYSLOT <key>",
		"    Return the hash slot for <key>.",
		"MYID",
		"    Return the node id.",
		"NODES",
		"    Return cluster configuration seen by node. Output format:",
		"    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
		"SHARDS",
		"    Return information about slot range mappings and the nodes serving them.",
		"SLOTS",
		"    Return information about slots range mappings. Each range is made of:",
		"    start, end, master and replicas IP addresses, ports and ids",
	)
}
