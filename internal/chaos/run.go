package chaos

import (
	"crypto/rand"

	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shoaldb/shoal/internal/acl"
	"os"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shoaldb/shoal/internal/certs"
	"github.com/shoaldb/shoal/internal/kvmodel"
)

// Config describes one run. Zero values mean the defaults in brackets.
type Config struct {
	Nodes    int           // cluster size [3]
	Shards   int           // data shards [8]
	Clients  int           // concurrent clients [6]
	Keys     int           // keys shared by the clients [16]
	Duration time.Duration // how long faults are applied [60s]
	FaultFor time.Duration // how long each fault lasts [5s]
	Quiet    time.Duration // between faults [5s]
	Faults   []FaultKind   // [AllFaults]
	Seed     uint64        // [from the clock]
	// Network is "loopback", "netns" (each node in a network namespace,
	// required by partitions) or "auto" [auto]: netns when possible.
	Network string
	// CheckTimeout bounds the linearizability check [60s].
	CheckTimeout time.Duration
	// FollowerReads: plain clients send READONLY (see WorkloadConfig); the
	// history is then expected not to be linearizable.
	FollowerReads bool
	// TLS runs the cluster secured: with certificates made for the run
	// (TLS for clients, mutual TLS between nodes) and a password for the
	// default user, which every client of the run logs in with.
	TLS    bool
	OutDir string // report, visualization, node logs and data [a new temp dir]
	Bin    string // shoal binary [built from the module]
	Logf   func(format string, args ...any)
}

func (c *Config) ensureDefaults() error {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Nodes, 3)
	def(&c.Shards, 8)
	def(&c.Clients, 6)
	def(&c.Keys, 16)
	if c.Duration <= 0 {
		c.Duration = time.Minute
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = time.Minute
	}
	if len(c.Faults) == 0 {
		c.Faults = AllFaults
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Network == "" {
		c.Network = "auto"
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	switch c.Network {
	case "auto", "netns", "loopback":
	default:
		return fmt.Errorf("chaos: network %q: want auto, netns or loopback", c.Network)
	}
	return nil
}

// Run builds shoal, starts a cluster, runs the workload under the nemesis,
// heals the cluster, reads every key back and checks the history. Whatever
// happens, it stops every process and removes every namespace and rule it
// created. It returns an error when the run could not be carried out; a
// run that finds a problem returns a report whose Failed is true.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	logf := cfg.Logf
	logf("seed %d", cfg.Seed)
	if cfg.OutDir == "" {
		if cfg.OutDir, err = os.MkdirTemp("", "shoal-chaos-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	rep = &Report{Seed: cfg.Seed, Nodes: cfg.Nodes, Clients: cfg.Clients, Keys: cfg.Keys, Network: "loopback"}
	if cfg.Bin == "" {
		v := Version(ctx)
		logf("building shoal from %s", v)
		rep.Notes = append(rep.Notes, "shoal built from "+v)
		if cfg.Bin, err = Build(ctx, cfg.OutDir); err != nil {
			return nil, err
		}
	}

	var nsx *Netns
	if cfg.Network != "loopback" {
		err := NetnsUsable(logf)
		if err == nil {
			nsx, err = NewNetns(cfg.Nodes, logf)
		}
		if err != nil && cfg.Network == "netns" {
			return nil, err
		}
		if err != nil {
			logf("%v", err)
			rep.Notes = append(rep.Notes, err.Error())
		}
	}
	if nsx != nil {
		rep.Network = "network namespaces"
		defer func() {
			if cerr := nsx.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}()
	} else {
		var kept []FaultKind
		for _, f := range cfg.Faults {
			if !f.IsPartition() {
				kept = append(kept, f)
			}
		}
		if len(kept) < len(cfg.Faults) {
			msg := ErrNoPartitions.Error()
			if cfg.Network == "loopback" {
				msg = "partition nemesis needs -network netns or auto: skipped"
			}
			rep.Notes = append(rep.Notes, msg)
			logf("%s", msg)
		}
		cfg.Faults = kept
	}

	logf("starting %d nodes in %s", cfg.Nodes, cfg.OutDir)
	cc := ClusterConfig{Bin: cfg.Bin, Dir: cfg.OutDir, Nodes: cfg.Nodes, Shards: cfg.Shards, Net: nsx, Logf: logf,
		Args: []string{"--dead-after", DeadAfter.String()}}
	if nsx != nil && !cfg.TLS {
		// Nodes in namespaces listen beyond loopback: without
		// certificates they must be told that plain text is meant, and
		// that clients from the harness's address need no password.
		cc.Args = append(cc.Args, "--insecure", "--protected-mode=false")
	}
	if cfg.TLS {
		cc.CertsDir = filepath.Join(cfg.OutDir, "certs")
		var hosts []string
		if nsx != nil {
			for i := 1; i <= cfg.Nodes; i++ {
				hosts = append(hosts, nsx.IP(i))
			}
		}
		if err := certs.CreateCA(cc.CertsDir); err != nil {
			return nil, err
		}
		if err := certs.CreateNode(cc.CertsDir, hosts...); err != nil {
			return nil, err
		}
		cc.Password = acl.GenPass(128, rand.Reader)
	}
	c, err := StartCluster(ctx, cc)
	defer c.Stop()
	if err != nil {
		return nil, err
	}
	if err := c.WaitReady(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	logf("cluster ready")

	start := time.Now()
	w := NewWorkload(c, WorkloadConfig{Clients: cfg.Clients, Keys: cfg.Keys, Seed: cfg.Seed, FollowerReads: cfg.FollowerReads}, start)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { w.Run(stop); close(done) }()
	defer func() {
		select {
		case <-done:
		default:
			close(stop)
			<-done
		}
	}()

	warm := min(3*time.Second, cfg.Duration/10)
	sleep(ctx, warm)
	if len(cfg.Faults) > 0 {
		nm := NewNemesis(c, w, NemesisConfig{Faults: cfg.Faults, Duration: cfg.Duration - warm,
			FaultFor: cfg.FaultFor, Quiet: cfg.Quiet, Seed: cfg.Seed}, logf)
		rep.Faults = nm.Run(ctx)
	} else {
		sleep(ctx, cfg.Duration-warm)
	}
	if nsx != nil {
		nsx.Heal()
	}
	for _, n := range c.Nodes {
		if !n.Running() {
			c.Start(n)
		}
		c.Resume(n)
	}
	// Bounded waits that still run after ctx is cancelled: cleanup and a
	// best-effort report.
	after := context.WithoutCancel(ctx)
	if err := c.WaitReady(after, time.Minute); err != nil {
		rep.Notes = append(rep.Notes, "after healing: "+err.Error())
	}
	sleep(ctx, 2*time.Second) // some operations on the healed cluster
	close(stop)
	<-done
	end := w.now()
	rep.Duration = time.Duration(end)
	logf("workload stopped; reading every key back")
	finals, ferr := w.FinalReads(after, time.Minute)
	if ferr != nil {
		rep.Notes = append(rep.Notes, "final reads: "+ferr.Error())
	}
	rep.Crashes = c.Crashes()
	c.Stop()

	h := w.History()
	rep.Errors = w.Errors()
	rep.summarize(h, end)
	// Saved before the check, which may take long or be interrupted.
	if err := writeHistory(filepath.Join(cfg.OutDir, "history.jsonl"), h); err != nil {
		logf("writing history: %v", err)
	}
	logf("checking %d operations", len(h))
	rep.Verdict, err = Check(h, finals, cfg.CheckTimeout, filepath.Join(cfg.OutDir, "history.html"))
	if err != nil {
		return rep, err
	}
	if ferr != nil && rep.Verdict.Linearizable == "Ok" {
		// Without every final read the durability check is incomplete.
		rep.Verdict.Lost = append(rep.Verdict.Lost, "final reads incomplete: "+ferr.Error())
	}
	writeReport(cfg.OutDir, rep)
	return rep, nil
}

// writeHistory saves h, one JSON operation per line, for offline analysis.
func writeHistory(path string, h []porcupine.Operation) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for _, op := range h {
		in, out := op.Input.(kvmodel.Input), op.Output.(kvmodel.Output)
		rec := struct {
			Client  int    `json:"client"`
			Op      string `json:"op"`
			Key     string `json:"key"`
			Value   int64  `json:"value,omitempty"`
			Old     int64  `json:"old,omitempty"`
			Unknown bool   `json:"unknown,omitempty"`
			Found   bool   `json:"found,omitempty"`
			Out     int64  `json:"out,omitempty"`
			Call    int64  `json:"call"`
			Return  int64  `json:"return"`
			Note    any    `json:"note,omitempty"`
		}{op.ClientId, in.Kind.String(), in.Key, in.Value, in.Old, out.Unknown, out.Found, out.Value, op.Call, op.Return, op.Metadata}
		if err := enc.Encode(rec); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeReport(dir string, rep *Report) {
	os.WriteFile(filepath.Join(dir, "report.txt"), []byte(rep.String()), 0o644)
	if b, err := json.MarshalIndent(rep, "", "  "); err == nil {
		os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644)
	}
}
