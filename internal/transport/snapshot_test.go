package transport_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/transport"
)

func snapMsg(shard, to uint64, size int) *shoalpb.RaftEnvelope {
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(data)
	return &shoalpb.RaftEnvelope{
		ShardId: shard,
		Message: &raftpb.Message{
			Type: raftpb.MessageType_MsgSnap.Enum(),
			To:   proto.Uint64(to),
			From: proto.Uint64(1),
			Term: proto.Uint64(3),
			Snapshot: &raftpb.Snapshot{
				Data: data,
				Metadata: &raftpb.SnapshotMetadata{
					Index:     proto.Uint64(100),
					Term:      proto.Uint64(2),
					ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
				},
			},
		},
	}
}

func TestSnapshot(t *testing.T) {
	ha, hb := newRecorder(), newRecorder()
	a, b := start(t, 1, ha), start(t, 2, hb)
	a.SetPeer(2, b.Addr())

	env := snapMsg(7, 2, 5<<20+123)
	orig := proto.CloneOf(env)
	a.Send([]*shoalpb.RaftEnvelope{env, msg(8, 2, 1)})

	waitFor(t, "the snapshot report", func() bool { return len(ha.snapReports()) == 1 })
	if r := ha.snapReports()[0]; r != (snapReport{7, 2, false}) {
		t.Fatalf("ReportSnapshot = %+v, want shard 7 to 2 not failed", r)
	}
	waitFor(t, "both messages", func() bool { return hb.count() == 2 })
	var got *shoalpb.RaftEnvelope
	for _, r := range hb.received() {
		if r.env.GetMessage().GetType() == raftpb.MessageType_MsgSnap {
			got = r.env
		}
	}
	if got == nil || !proto.Equal(got, orig) {
		t.Fatalf("received snapshot differs from the one sent (data %d bytes, want %d)",
			len(got.GetMessage().GetSnapshot().GetData()), len(orig.GetMessage().GetSnapshot().GetData()))
	}
	if !proto.Equal(env, orig) {
		t.Fatal("Send modified the caller's snapshot message")
	}
}

func TestSnapshotTooLarge(t *testing.T) {
	ha := newRecorder()
	a := start(t, 1, ha)
	b := startCfg(t, transport.Config{Addr: "127.0.0.1:0", NodeID: 2, Handler: newRecorder(), MaxSnapshotSize: 2 << 20})
	a.SetPeer(2, b.Addr())
	a.Send([]*shoalpb.RaftEnvelope{snapMsg(7, 2, 3<<20)})
	waitFor(t, "the snapshot report", func() bool { return len(ha.snapReports()) == 1 })
	if r := ha.snapReports()[0]; r != (snapReport{7, 2, true}) {
		t.Fatalf("ReportSnapshot = %+v, want shard 7 to 2 failed", r)
	}
}

func TestSnapshotEmptyAndConcurrent(t *testing.T) {
	ha, hb := newRecorder(), newRecorder()
	a, b := start(t, 1, ha), start(t, 2, hb)
	a.SetPeer(2, b.Addr())
	// More snapshots at once than may be in flight: the excess fail at
	// once, the rest arrive.
	var envs []*shoalpb.RaftEnvelope
	for shard := range uint64(5) {
		envs = append(envs, snapMsg(shard, 2, int(shard)*(1<<20)))
	}
	a.Send(envs)
	waitFor(t, "all snapshot reports", func() bool { return len(ha.snapReports()) == len(envs) })
	ok := 0
	for _, r := range ha.snapReports() {
		if !r.failed {
			ok++
		}
	}
	if ok < 2 || hb.count() != ok {
		t.Fatalf("%d snapshots reported delivered and %d received, want the same and >= 2", ok, hb.count())
	}
	for _, r := range hb.received() {
		want := envs[r.env.GetShardId()].GetMessage().GetSnapshot().GetData()
		if !bytes.Equal(r.env.GetMessage().GetSnapshot().GetData(), want) {
			t.Fatalf("snapshot of shard %d corrupted", r.env.GetShardId())
		}
	}
}
