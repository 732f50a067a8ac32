// Package replicaid builds the raft ids of shard replicas. A replica's id
// is its node's id in the low 32 bits and an incarnation in the high 32:
// the shard counts the replicas it ever added (as CockroachDB's
// NextReplicaID), so a node added to a shard again gets a replica with a
// new id, and messages meant for an earlier replica of that node can be
// told apart and refused. The replicas a shard was created with have
// incarnation 0: their ids are their nodes' ids, as in data written
// before replica ids existed. Anything that routes a raft message finds
// the node in its id, with no lookup.
package replicaid

// Make returns the id of incarnation inc of node's replica.
func Make(node uint64, inc uint32) uint64 { return uint64(inc)<<32 | node&0xffffffff }

// Node returns the node an id's replica lives on.
func Node(id uint64) uint64 { return id & 0xffffffff }

// Incarnation returns an id's incarnation.
func Incarnation(id uint64) uint32 { return uint32(id >> 32) }

// Nodes maps ids to their nodes, in a new slice.
func Nodes(ids []uint64) []uint64 {
	if ids == nil {
		return nil
	}
	out := make([]uint64, len(ids))
	for i, id := range ids {
		out[i] = Node(id)
	}
	return out
}

// Of returns the id among ids whose replica lives on node.
func Of(ids []uint64, node uint64) (uint64, bool) {
	for _, id := range ids {
		if Node(id) == node {
			return id, true
		}
	}
	return 0, false
}
