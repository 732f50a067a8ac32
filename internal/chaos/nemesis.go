package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// FaultKind names a fault the nemesis can apply.
type FaultKind string

const (
	FaultKill            FaultKind = "kill"             // SIGKILL a random node, restart it after the fault time
	FaultKillLeader      FaultKind = "kill-leader"      // SIGKILL the leader of the busiest shard, restart it
	FaultPause           FaultKind = "pause"            // SIGSTOP a random node, SIGCONT it
	FaultPartitionOne    FaultKind = "partition-one"    // cut one random node off from the others
	FaultPartitionLeader FaultKind = "partition-leader" // cut the leader of the busiest shard off
	FaultPartitionSplit  FaultKind = "partition-split"  // split the nodes into a minority and a majority
	// FaultWipe kills a random node for good: SIGKILL, its data directory
	// deleted, and a new node (a new identity, the same address) joins in
	// its place. The cluster declares the old one dead after DeadAfter
	// and rebuilds its replicas on the live nodes.
	FaultWipe FaultKind = "wipe"
)

// DeadAfter is the nodes' --dead-after in chaos runs: longer than any
// kill or pause lasts, short enough that a wiped node's replicas are
// rebuilt within the recovery timeout.
const DeadAfter = 10 * time.Second

// AllFaults lists every fault kind.
var AllFaults = []FaultKind{FaultKill, FaultKillLeader, FaultPause, FaultPartitionOne, FaultPartitionLeader, FaultPartitionSplit, FaultWipe}

// IsPartition reports whether k needs network namespaces.
func (k FaultKind) IsPartition() bool { return strings.HasPrefix(string(k), "partition") }

// ParseFaults parses a comma-separated list of fault kinds; "all" means
// every kind.
func ParseFaults(s string) ([]FaultKind, error) {
	if s == "" || s == "all" {
		return AllFaults, nil
	}
	var fs []FaultKind
	for _, f := range strings.Split(s, ",") {
		k := FaultKind(strings.TrimSpace(f))
		known := false
		for _, a := range AllFaults {
			known = known || a == k
		}
		if !known {
			return nil, fmt.Errorf("chaos: unknown fault %q (want one of %v)", k, AllFaults)
		}
		fs = append(fs, k)
	}
	return fs, nil
}

// Fault is one applied fault. Times are nanoseconds since the run began.
type Fault struct {
	Kind      FaultKind
	Nodes     []int // the nodes killed, paused or cut off
	Start     int64 // when it was applied
	Healed    int64 // when it was undone (restart, SIGCONT, links restored)
	Recovered int64 // when the cluster was ready again (0 if never)
	Err       string

	// Filled by the report: the longest time from Start to the next
	// fault with no successful write anywhere, and on the worst key.
	Unavailable, KeyUnavailable time.Duration
	WorstKey                    string
}

// NemesisConfig bounds the faults.
type NemesisConfig struct {
	Faults    []FaultKind
	Duration  time.Duration // no fault starts later than this after Run begins
	FaultFor  time.Duration // how long each fault lasts (default 5s)
	Quiet     time.Duration // pause between faults (default 5s)
	MaxFaults int           // default 1000
	// RecoverTimeout bounds the wait for the cluster to be ready after a
	// fault is undone (default 60s); past it the nemesis stops.
	RecoverTimeout time.Duration
	Seed           uint64
}

func (c *NemesisConfig) ensureDefaults() {
	if c.FaultFor <= 0 {
		c.FaultFor = 5 * time.Second
	}
	if c.Quiet <= 0 {
		c.Quiet = 5 * time.Second
	}
	if c.MaxFaults <= 0 {
		c.MaxFaults = 1000
	}
	if c.RecoverTimeout <= 0 {
		c.RecoverTimeout = 60 * time.Second
	}
}

// Nemesis applies faults to a cluster one at a time.
type Nemesis struct {
	cfg  NemesisConfig
	c    *Cluster
	w    *Workload
	rng  *rand.Rand
	logf func(string, ...any)
}

// NewNemesis returns a nemesis for c; w tells it which shard is busiest.
func NewNemesis(c *Cluster, w *Workload, cfg NemesisConfig, logf func(string, ...any)) *Nemesis {
	cfg.ensureDefaults()
	return &Nemesis{cfg: cfg, c: c, w: w, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6e656d65)), logf: logf}
}

// Run applies faults until the duration is used up, ctx ends or the
// cluster fails to recover. Each round applies every configured kind once,
// in a seeded random order.
func (nm *Nemesis) Run(ctx context.Context) []Fault {
	var faults []Fault
	deadline := time.Now().Add(nm.cfg.Duration)
	var order []FaultKind
	for len(faults) < nm.cfg.MaxFaults && time.Now().Add(nm.cfg.FaultFor).Before(deadline) && ctx.Err() == nil {
		if len(order) == 0 {
			order = append(order, nm.cfg.Faults...)
			nm.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		kind := order[0]
		order = order[1:]
		f := nm.apply(ctx, kind)
		faults = append(faults, f)
		if f.Err != "" || f.Recovered == 0 {
			nm.logf("nemesis: %s on %v: %s; stopping faults", f.Kind, f.Nodes, f.Err)
			break
		}
		nm.logf("nemesis: %s on node %v: healed after %v, cluster ready %v after healing",
			f.Kind, f.Nodes, time.Duration(f.Healed-f.Start).Round(time.Millisecond),
			time.Duration(f.Recovered-f.Healed).Round(time.Millisecond))
		if !sleep(ctx, nm.cfg.Quiet) {
			break
		}
	}
	return faults
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// apply applies one fault, keeps it for FaultFor, undoes it and waits for
// the cluster to recover.
func (nm *Nemesis) apply(ctx context.Context, kind FaultKind) Fault {
	f := Fault{Kind: kind}
	if kind.IsPartition() && nm.c.net == nil {
		f.Err = ErrNoPartitions.Error() + " (cluster not in network namespaces)"
		return f
	}
	var target *Node
	switch kind {
	case FaultKillLeader, FaultPartitionLeader:
		target = nm.busiestLeader(ctx)
	default:
		target = nm.c.Nodes[nm.rng.IntN(len(nm.c.Nodes))]
	}
	f.Nodes = []int{target.Index}
	if kind == FaultPartitionSplit {
		minority := max(1, (len(nm.c.Nodes)-1)/2)
		f.Nodes = nil
		for _, i := range nm.rng.Perm(len(nm.c.Nodes))[:minority] {
			f.Nodes = append(f.Nodes, i+1)
		}
	}
	var undo func() error
	var wiped int64 // the cluster's id of a wiped node
	if kind == FaultWipe {
		id, err := nm.c.NodeID(ctx, target)
		if err != nil {
			f.Err = err.Error()
			return f
		}
		wiped = id
	}
	f.Start = nm.w.now()
	var err error
	switch kind {
	case FaultKill, FaultKillLeader:
		err = nm.c.Kill(target)
		undo = func() error { return nm.c.Start(target) }
	case FaultPause:
		err = nm.c.Pause(target)
		undo = func() error { return nm.c.Resume(target) }
	case FaultWipe:
		err = nm.c.Kill(target)
		undo = func() error { return nm.c.Wipe(target) }
	default:
		err = nm.c.net.Partition(f.Nodes)
		undo = nm.c.net.Heal
	}
	if err != nil {
		f.Err = err.Error()
		undo()
		return f
	}
	sleep(ctx, nm.cfg.FaultFor) // the fault lasts FaultFor, even if ctx ends we undo it
	if err := undo(); err != nil {
		f.Err = err.Error()
		return f
	}
	f.Healed = nm.w.now()
	if err := nm.c.WaitReady(context.WithoutCancel(ctx), nm.cfg.RecoverTimeout); err != nil {
		f.Err = fmt.Sprintf("cluster not ready %v after the fault was undone: %v", nm.cfg.RecoverTimeout, err)
		return f
	}
	if wiped != 0 {
		// Recovered once the wiped identity's replicas are rebuilt.
		if err := nm.c.WaitDrained(context.WithoutCancel(ctx), wiped, nm.cfg.RecoverTimeout); err != nil {
			f.Err = fmt.Sprintf("replicas of the wiped node not rebuilt: %v", err)
			return f
		}
	}
	f.Recovered = nm.w.now()
	return f
}

// busiestLeader returns the node leading the slot range the workload sent
// the most operations to, or a random node when that is unknown.
func (nm *Nemesis) busiestLeader(ctx context.Context) *Node {
	rs, err := nm.c.Slots(ctx)
	var best *Node
	var most int64 = -1
	for _, r := range rs {
		var n int64
		for s := r.Start; s <= r.End; s++ {
			n += nm.w.SlotOps(s)
		}
		if leader := nm.c.NodeByAddr(r.Nodes[0]); n > most && leader != nil && leader.Running() {
			best, most = leader, n
		}
	}
	if err != nil || best == nil {
		return nm.c.Nodes[nm.rng.IntN(len(nm.c.Nodes))]
	}
	return best
}
