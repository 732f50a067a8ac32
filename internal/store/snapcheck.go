package store

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// A snapshot's data is a shoalpb.SnapshotData: the shard's descriptor
// (field 1), its keys (field 2) and values (field 3), both repeated. It
// is written a pair at a time, key then value, into one buffer, and read
// in place: a snapshot of a large shard is held once by each end, not
// once per copy of every key (the encoding is still SnapshotData's: any
// protobuf decoder reads it, and one that wrote every key before every
// value is read the same).

// Field numbers of shoalpb.SnapshotData.
const (
	snapDescriptor protowire.Number = 1
	snapKeys       protowire.Number = 2
	snapValues     protowire.Number = 3
)

// appendSnapshotData appends the encoding of desc and the pairs iterate
// yields to dst.
func appendSnapshotData(dst []byte, desc *shoalpb.ShardDescriptor, iterate func(fn func(k, v []byte) bool) error) ([]byte, error) {
	d, err := proto.Marshal(desc)
	if err != nil {
		return nil, err
	}
	dst = protowire.AppendTag(dst, snapDescriptor, protowire.BytesType)
	dst = protowire.AppendBytes(dst, d)
	err = iterate(func(k, v []byte) bool {
		dst = protowire.AppendTag(dst, snapKeys, protowire.BytesType)
		dst = protowire.AppendBytes(dst, k)
		dst = protowire.AppendTag(dst, snapValues, protowire.BytesType)
		dst = protowire.AppendBytes(dst, v)
		return true
	})
	return dst, err
}

// fieldCursor yields the values of one bytes field of an encoded
// message, in order, as slices of it.
type fieldCursor struct {
	b   []byte
	num protowire.Number
}

// next returns the next value of the field; ok is false at the end.
func (c *fieldCursor) next() (v []byte, ok bool, err error) {
	for len(c.b) > 0 {
		num, typ, n := protowire.ConsumeTag(c.b)
		if n < 0 {
			return nil, false, protowire.ParseError(n)
		}
		c.b = c.b[n:]
		if num == c.num && typ != protowire.BytesType {
			return nil, false, fmt.Errorf("field %d of wire type %d", num, typ)
		}
		if num == c.num {
			v, n = protowire.ConsumeBytes(c.b)
			if n < 0 {
				return nil, false, protowire.ParseError(n)
			}
			c.b = c.b[n:]
			return v, true, nil
		}
		if n = protowire.ConsumeFieldValue(num, typ, c.b); n < 0 {
			return nil, false, protowire.ParseError(n)
		}
		c.b = c.b[n:]
	}
	return nil, false, nil
}

// walkSnapshotData decodes data's descriptor, hands it to onDesc, then
// calls fn with each pair, as slices of data.
func walkSnapshotData(data []byte, fn func(k, v []byte) error, onDesc func(*shoalpb.ShardDescriptor) error) (*shoalpb.ShardDescriptor, error) {
	var desc *shoalpb.ShardDescriptor
	dc := fieldCursor{b: data, num: snapDescriptor}
	for {
		b, ok, err := dc.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if desc == nil {
			desc = &shoalpb.ShardDescriptor{}
		}
		opts := proto.UnmarshalOptions{Merge: true} // as a decoder merges repeated messages
		if err := opts.Unmarshal(b, desc); err != nil {
			return nil, err
		}
	}
	if err := onDesc(desc); err != nil {
		return nil, err
	}
	ks, vs := fieldCursor{b: data, num: snapKeys}, fieldCursor{b: data, num: snapValues}
	for n := 0; ; n++ {
		k, kok, err := ks.next()
		if err != nil {
			return nil, err
		}
		v, vok, err := vs.next()
		if err != nil {
			return nil, err
		}
		if kok != vok {
			return nil, fmt.Errorf("%d keys, a different number of values", n+btoi(kok))
		}
		if !kok {
			return desc, nil
		}
		if err := fn(k, v); err != nil {
			return nil, err
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

var errSnapshotKey = errors.New("a key outside the shard's span or out of order")

// checkSnapshot checks the data of a snapshot sent to this node's replica
// of shard: applying it can only write that shard's data. Its descriptor
// names the shard and whole slots, and every key lies in the descriptor's
// span, in order, with a value. A snapshot that fails is dropped when it
// arrives (the leader sends another), instead of stopping the node when
// raft hands it over to be persisted. It returns the descriptor and the
// number of keys.
func checkSnapshot(shard uint64, data []byte) (*shoalpb.ShardDescriptor, int, error) {
	var lo, hi, prev []byte
	n := 0
	desc, err := walkSnapshotData(data, func(k, _ []byte) error {
		if bytes.Compare(k, lo) < 0 || bytes.Compare(k, hi) >= 0 || n > 0 && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("key %d: %w", n, errSnapshotKey)
		}
		prev = k
		n++
		return nil
	}, func(desc *shoalpb.ShardDescriptor) error {
		if desc == nil || desc.GetId() != shard {
			return fmt.Errorf("it carries shard %d", desc.GetId())
		}
		first, last := desc.GetFirstSlot(), desc.GetLastSlot()
		if !desc.GetMeta() && (first < 0 || first > last || last >= keys.SlotCount) {
			return fmt.Errorf("slots %d-%d", first, last)
		}
		lo, hi = descSpan(desc)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot of shard %d: %w", shard, err)
	}
	return desc, n, nil
}
