// Package diskspace keeps a node from filling its disk. Pebble treats a
// failed write of its log as fatal, so a node whose disk fills up dies,
// and, restarted on the full disk, cannot open its database. A Guard
// watches the free space of the data directory and says when writes must
// be refused, early enough that what is already under way still fits.
//
// It keeps a ballast file of the reserve's size in the directory, as
// CockroachDB does: when the disk is nearly full anyway (another process
// filled it, or the node's own flushes and compactions), the Guard deletes
// the ballast, which gives the database room to finish what it is doing
// and to start again, and writes the ballast again once space is back.
package diskspace

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
)

// BallastName is the ballast file's name in the data directory.
const BallastName = "ballast"

// Bounds of the default reserve: 1% of the filesystem, within them.
const (
	MinReserve = 64 << 20
	MaxReserve = 1 << 30
)

// DefaultReserve is the reserve for a filesystem of total bytes.
func DefaultReserve(total int64) int64 {
	return min(max(total/100, MinReserve), MaxReserve)
}

// Decision is what the Guard does given the free space.
type Decision struct {
	Full     bool // refuse writes
	Release  bool // delete the ballast
	Recreate bool // write the ballast again
}

// Decide is the Guard's policy. free is the filesystem's free space,
// reserve the ballast's size, ballast whether the ballast is on disk.
//
//   - Writes are refused once free space is below the reserve (with the
//     ballast) or twice it (without: the ballast's room is being used),
//     so that a full disk shows up as refused writes, not a dead node.
//   - Below half the reserve, the disk is nearly full despite that: the
//     ballast goes, giving Pebble its room for flushes and compactions.
//   - The ballast comes back, and writes with it, once there is room for
//     it and three reserves more.
func Decide(free, reserve int64, ballast bool) Decision {
	if ballast {
		return Decision{Full: free < reserve, Release: free < reserve/2}
	}
	if free >= 4*reserve {
		return Decision{Recreate: true}
	}
	return Decision{Full: free < 2*reserve}
}

// Guard applies Decide to a data directory.
type Guard struct {
	dir     string
	reserve int64
	log     *slog.Logger
	// statfs returns the free and total bytes of dir's filesystem.
	statfs func(dir string) (free, total int64, err error)

	full atomic.Bool
	// ballast says whether the ballast file is on disk; only Check
	// changes it.
	ballast bool
	// logged is the state last logged, so that a change is logged once.
	logged bool
}

// Open returns a Guard for dir (which it creates if needed) keeping
// reserve bytes (0: DefaultReserve of the filesystem), and checks the
// space once: on a nearly full disk it deletes the ballast before the
// caller opens its database.
func Open(dir string, reserve int64, log *slog.Logger) (*Guard, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &Guard{dir: dir, reserve: reserve, log: log, statfs: statfs}
	if g.log == nil {
		g.log = slog.Default()
	}
	_, total, err := g.statfs(dir)
	if errors.Is(err, errUnsupported) {
		g.statfs = nil // never full
		return g, nil
	}
	if err != nil {
		return nil, fmt.Errorf("diskspace: %w", err)
	}
	if g.reserve <= 0 {
		g.reserve = DefaultReserve(total)
	}
	if st, err := os.Stat(g.path()); err == nil && st.Size() >= g.reserve {
		g.ballast = true
	}
	g.Check()
	return g, nil
}

func (g *Guard) path() string { return filepath.Join(g.dir, BallastName) }

// Full reports whether writes must be refused. A nil Guard never is.
func (g *Guard) Full() bool { return g != nil && g.full.Load() }

// Reserve returns the reserve in bytes.
func (g *Guard) Reserve() int64 { return g.reserve }

// Check measures the free space and acts on it.
func (g *Guard) Check() {
	if g.statfs == nil {
		return
	}
	free, _, err := g.statfs(g.dir)
	if err != nil {
		g.log.Warn("diskspace: cannot read free space", "dir", g.dir, "err", err)
		return
	}
	d := Decide(free, g.reserve, g.ballast)
	switch {
	case d.Release:
		if err := os.Remove(g.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
			g.log.Error("diskspace: cannot delete the ballast", "path", g.path(), "err", err)
		} else {
			g.ballast = false
			g.log.Warn("disk nearly full: deleted the ballast file to make room", "free", free, "ballast", g.reserve)
		}
	case d.Recreate:
		if err := writeBallast(g.path(), g.reserve); err != nil {
			g.log.Warn("diskspace: cannot write the ballast", "path", g.path(), "err", err)
		} else {
			g.ballast = true
		}
	}
	g.full.Store(d.Full)
	if d.Full != g.logged {
		g.logged = d.Full
		if d.Full {
			g.log.Error("disk full: refusing writes until space is freed", "dir", g.dir, "free", free, "reserve", g.reserve)
		} else {
			g.log.Info("disk space back: accepting writes", "dir", g.dir, "free", free)
		}
	}
}

// writeBallast allocates a file of size bytes at path, replacing any.
func writeBallast(path string, size int64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	err = allocate(f, size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
