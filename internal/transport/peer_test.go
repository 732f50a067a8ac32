package transport

import (
	"testing"
	"unsafe"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/shoalpb"
)

func TestFillTakesEverythingQueued(t *testing.T) {
	p := &peer{queue: make(chan *shoalpb.RaftEnvelope, 100)}
	envs := make([]*shoalpb.RaftEnvelope, 50)
	for i := range envs {
		envs[i] = &shoalpb.RaftEnvelope{ShardId: uint64(i), Message: &raftpb.Message{Index: proto.Uint64(uint64(i))}}
		p.queue <- envs[i]
	}
	batch := p.fill([]*shoalpb.RaftEnvelope{<-p.queue})
	if len(batch) != len(envs) {
		t.Fatalf("batch of %d messages, want %d", len(batch), len(envs))
	}
	for i, env := range batch {
		if env != envs[i] {
			t.Fatalf("batch[%d] is message %d", i, env.GetShardId())
		}
	}
}

func TestFillStopsAtBatchSize(t *testing.T) {
	p := &peer{queue: make(chan *shoalpb.RaftEnvelope, 100)}
	big := make([]byte, maxBatchBytes/4)
	for range 10 {
		p.queue <- &shoalpb.RaftEnvelope{Message: &raftpb.Message{Entries: []*raftpb.Entry{{Data: big}}}}
	}
	batch := p.fill([]*shoalpb.RaftEnvelope{<-p.queue})
	if len(batch) != 4 || len(p.queue) != 6 {
		t.Fatalf("batch of %d with %d left queued, want 4 and 6", len(batch), len(p.queue))
	}
}

func TestSnapshotHeader(t *testing.T) {
	data := []byte("0123456789")
	env := &shoalpb.RaftEnvelope{ShardId: 4, Message: &raftpb.Message{
		Type:    raftpb.MessageType_MsgSnap.Enum(),
		To:      proto.Uint64(2),
		Term:    proto.Uint64(5),
		Context: []byte("ctx"),
		Snapshot: &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(9), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}},
		}},
	}}
	orig := proto.CloneOf(env)
	h := snapshotHeader(env)

	want := proto.CloneOf(env)
	want.Message.Snapshot.Data = nil
	if !proto.Equal(h, want) {
		t.Fatalf("header = %v, want %v", h, want)
	}
	if !proto.Equal(env, orig) || unsafe.SliceData(env.GetMessage().GetSnapshot().GetData()) != &data[0] {
		t.Fatal("snapshotHeader modified its argument")
	}
	// The header shares no memory with the original.
	h.Message.Context[0] = 'X'
	h.Message.Snapshot.Metadata.ConfState.Voters[0] = 7
	if !proto.Equal(env, orig) {
		t.Fatal("header aliases the original message")
	}
}

func TestBackoff(t *testing.T) {
	var b backoff
	prevMax := minBackoff
	for i := range 20 {
		d := b.next()
		ceil := min(minBackoff<<i, maxBackoff)
		if d < ceil/2 || d > ceil {
			t.Fatalf("attempt %d: delay %v, want in [%v, %v]", i, d, ceil/2, ceil)
		}
		prevMax = ceil
	}
	if prevMax != maxBackoff {
		t.Fatalf("backoff peaked at %v, want %v", prevMax, maxBackoff)
	}
	b.reset()
	if d := b.next(); d > minBackoff {
		t.Fatalf("delay after reset = %v, want <= %v", d, minBackoff)
	}
}
