package server

import (
	"context"

	"github.com/shoaldb/shoal/internal/resp"
)

// SHOAL holds shoal's own cluster commands: what `shoal node status` and
// `shoal node decommission` send.
func shoalContainer() *command {
	return container("shoal", -2, "cluster", "A container for shoal's own cluster commands.", "7.0.0",
		subcommand("nodes", 2, cmdNodeStatus, "7.0.0", "Returns every node's state and share of the replicas."),
		subcommand("decommission", 3, cmdNodeDecommission, "7.0.0",
			"Drains a node, named by its id or address: its replicas move to other nodes."),
		subcommand("help", 2, cmdNodeHelp, "7.0.0", "Returns helpful text about the subcommands."),
	)
}

func cmdNodeStatus(ctx context.Context, c *conn, args [][]byte) resp.Value {
	nodes := c.srv.cluster.NodeStatus()
	out := make([]resp.Value, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, resp.Map(
			resp.BulkString("id"), resp.Int(int64(n.ID)),
			resp.BulkString("addr"), resp.BulkString(n.Addr),
			resp.BulkString("state"), resp.BulkString(n.State),
			resp.BulkString("replicas"), resp.Int(int64(n.Replicas)),
			resp.BulkString("leaders"), resp.Int(int64(n.Leaders)),
			resp.BulkString("learners"), resp.Int(int64(n.Learners)),
			resp.BulkString("bytes"), resp.Int(int64(n.Bytes)),
		))
	}
	return resp.Array(out...)
}

func cmdNodeDecommission(ctx context.Context, c *conn, args [][]byte) resp.Value {
	v, err := c.srv.cluster.Decommission(ctx, string(args[2]))
	if err != nil {
		return c.srv.errorReply(err)
	}
	return v
}

func cmdNodeHelp(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return help("shoal",
		"NODES",
		"    Return every node: id, addr, state (live, suspect, dead, decommissioning,",
		"    decommissioned), replicas, leaders, learners (replicas still being added),",
		"    bytes (the sizes of the shards it holds, as their leaders last reported them).",
		"DECOMMISSION <id|addr>",
		"    Drain a node: placement moves its replicas to other nodes, adding each new",
		"    replica before the old one is removed. Refused if some shard would be left",
		"    with fewer replicas than its replication factor, or without a quorum.",
	)
}
