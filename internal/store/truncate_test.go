package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"google.golang.org/protobuf/proto"
)

// Two truncation entries applied in one batch, the second with a lower
// index (leaders pick their own): the second must not set the truncated
// state back below what the first deleted, or the log on disk has a gap
// and the replica cannot be loaded again (the simulation found this with
// a replica removed and re-added).
func TestLowerTruncationInTheSameBatchIsIgnored(t *testing.T) {
	c := newSteppedCluster(t)
	leader := c.leader(t)
	var pending []*Pending
	for i := range 30 {
		pending = append(pending, leader.StartPropose(1, [][]byte{[]byte("set"), []byte(fmt.Sprint("k", i)), []byte("v")}))
		c.step(false)
	}
	c.settle()
	mustBeDone(t, pending)
	r := leader.replicas[1]
	first, _ := r.storage.FirstIndex()
	high, low := r.applied-2, first+1
	if low >= high {
		t.Fatalf("log too short: first %d, applied %d", first, r.applied)
	}
	entry := func(to uint64) queuedProposal {
		cmd := &shoalpb.Command{Args: [][]byte{truncateLogCmd, binary.BigEndian.AppendUint64(nil, to)}}
		data, err := proto.MarshalOptions{}.MarshalAppend(idBytes(0), cmd)
		if err != nil {
			t.Fatal(err)
		}
		return queuedProposal{data: data}
	}
	if err := leader.proposeBatch(r, []queuedProposal{entry(high), entry(low)}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	c.settle() // followers apply what the first settle told them is committed
	for _, s := range c.stores {
		ts := &shoalpb.TruncatedState{}
		if err := getProto(s.eng, keys.TruncatedState(1), ts); err != nil {
			t.Fatal(err)
		}
		if ts.GetIndex() != high {
			t.Errorf("store %d: log truncated to %d, want %d", s.NodeID(), ts.GetIndex(), high)
		}
		s.Stop()
		st, err := New(Config{NodeID: s.NodeID(), Engine: s.eng, Transport: s.cfg.Transport, StateMachine: setMachine{}})
		if err != nil {
			t.Fatalf("store %d: reload: %v", s.NodeID(), err)
		}
		if got, _ := st.replicas[1].storage.FirstIndex(); got != high+1 {
			t.Errorf("store %d: reloaded log starts at %d, want %d", s.NodeID(), got, high+1)
		}
		st.Stop()
	}
}

// A shard of large values keeps few of them in memory: the leader
// truncates by bytes (LogTailBytes) long before it holds 2×LogTail
// entries. Counting entries alone, the 20 MiB written here stayed in every
// replica's in-memory log.
func TestLogIsTruncatedByBytes(t *testing.T) {
	c := newSteppedCluster(t)
	leader := c.leader(t)
	value := bytes.Repeat([]byte("v"), 1<<20)
	var pending []*Pending
	for i := range 20 {
		pending = append(pending, leader.StartPropose(1, [][]byte{[]byte("set"), []byte(fmt.Sprint("k", i)), value}))
		c.step(false)
		c.settle()
	}
	c.settle()
	mustBeDone(t, pending)
	limit := 2*leader.cfg.LogTailBytes + 1<<20 // a truncation is proposed once past 2×, applied an entry later
	for _, s := range c.stores {
		r := s.replicas[1]
		first, _ := r.storage.FirstIndex()
		held := r.storage.bytesFrom(0)
		if held > limit {
			t.Errorf("store %d: in-memory log holds %d bytes (entries %d to %d), want at most %d",
				s.NodeID(), held, first, r.applied, limit)
		}
		if r.logBytes < held {
			t.Errorf("store %d: logBytes %d below the %d bytes the log holds", s.NodeID(), r.logBytes, held)
		}
	}
}
