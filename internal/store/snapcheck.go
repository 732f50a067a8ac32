package store

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// checkSnapshot decodes the data of a snapshot sent to this node's replica
// of shard and checks that applying it can only write that shard's data:
// its descriptor names the shard and whole slots, and every key lies in the
// descriptor's span, in order, with a value. A snapshot that fails is
// dropped when it arrives (the leader sends another), instead of stopping
// the node when raft hands it over to be persisted.
func checkSnapshot(shard uint64, data []byte) (*shoalpb.SnapshotData, error) {
	var d shoalpb.SnapshotData
	if err := proto.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("snapshot of shard %d: %w", shard, err)
	}
	desc := d.GetDescriptor_()
	if desc == nil || desc.GetId() != shard {
		return nil, fmt.Errorf("snapshot for shard %d carries shard %d", shard, desc.GetId())
	}
	first, last := desc.GetFirstSlot(), desc.GetLastSlot()
	if !desc.GetMeta() && (first < 0 || first > last || last >= keys.SlotCount) {
		return nil, fmt.Errorf("snapshot of shard %d: slots %d-%d", shard, first, last)
	}
	if len(d.GetKeys()) != len(d.GetValues()) {
		return nil, fmt.Errorf("snapshot of shard %d: %d keys, %d values", shard, len(d.GetKeys()), len(d.GetValues()))
	}
	lo, hi := descSpan(desc)
	var prev []byte
	for i, k := range d.GetKeys() {
		if bytes.Compare(k, lo) < 0 || bytes.Compare(k, hi) >= 0 || i > 0 && bytes.Compare(prev, k) >= 0 {
			return nil, fmt.Errorf("snapshot of shard %d: key %d outside the shard's span or out of order", shard, i)
		}
		prev = k
	}
	return &d, nil
}
