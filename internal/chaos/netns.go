package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// ErrNoPartitions is returned by NetnsUsable when this machine cannot run
// the partition nemesis.
var ErrNoPartitions = errors.New("partition nemesis needs root and iptables: skipped")

// Netns puts each node in its own network namespace, joined by a bridge in
// the root namespace that also carries client traffic. Links between nodes
// are cut with iptables DROP rules inside the namespaces. Every name it
// creates starts with a prefix made of "shc" and the harness's PID, and
// Close removes them all.
type Netns struct {
	prefix string
	subnet int // nodes are 10.<subnet>.0.<i>, the bridge 10.<subnet>.0.254
	n      int
	logf   func(string, ...any)

	mu  sync.Mutex
	cut map[[2]int]bool
}

// NetnsUsable reports whether namespaces and iptables can be used. When
// iptables is missing and apt-get is available it installs it (root only).
func NetnsUsable(logf func(string, ...any)) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w (not root)", ErrNoPartitions)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w (no ip command: install iproute2)", ErrNoPartitions)
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		if _, aerr := exec.LookPath("apt-get"); aerr == nil {
			logf("installing iptables with apt-get")
			cmd := exec.Command("apt-get", "install", "-y", "-qq", "iptables")
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%w (apt-get install iptables: %v: %s)", ErrNoPartitions, err, out)
			}
		}
		if _, err := exec.LookPath("iptables"); err != nil {
			return fmt.Errorf("%w (no iptables command)", ErrNoPartitions)
		}
	}
	return nil
}

// NewNetns creates n namespaces and the bridge. On error it removes what
// it created.
func NewNetns(n int, logf func(string, ...any)) (*Netns, error) {
	removeStale(logf)
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	x := &Netns{prefix: fmt.Sprintf("shc%d", os.Getpid()), subnet: subnet, n: n, logf: logf, cut: map[[2]int]bool{}}
	br := x.bridge()
	steps := [][]string{
		{"ip", "link", "add", br, "type", "bridge"},
		{"ip", "addr", "add", x.bridgeIP() + "/24", "dev", br},
		{"ip", "link", "set", br, "up"},
		// Docker sets the FORWARD policy to DROP and br_netfilter makes
		// bridged traffic traverse it: let our bridge through.
		{"iptables", "-w", "-I", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT"},
	}
	for i := 1; i <= n; i++ {
		ns, host, peer := x.NS(i), fmt.Sprintf("%sv%d", x.prefix, i), fmt.Sprintf("%sp%d", x.prefix, i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", host, "type", "veth", "peer", "name", peer},
			[]string{"ip", "link", "set", peer, "netns", ns},
			[]string{"ip", "link", "set", host, "master", br},
			[]string{"ip", "link", "set", host, "up"},
			[]string{"ip", "-n", ns, "addr", "add", x.IP(i) + "/24", "dev", peer},
			[]string{"ip", "-n", ns, "link", "set", peer, "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			x.Close()
			return nil, err
		}
	}
	return x, nil
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NS is node i's namespace; IP its address.
func (x *Netns) NS(i int) string { return fmt.Sprintf("%sn%d", x.prefix, i) }
func (x *Netns) IP(i int) string { return fmt.Sprintf("10.%d.0.%d", x.subnet, i) }
func (x *Netns) bridge() string  { return x.prefix + "br" }
func (x *Netns) bridgeIP() string {
	return fmt.Sprintf("10.%d.0.254", x.subnet)
}

// Cut drops all traffic between nodes a and b, both ways.
func (x *Netns) Cut(a, b int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cut[[2]int{a, b}] {
		return nil
	}
	for _, p := range [][2]int{{a, b}, {b, a}} {
		ns, peer := x.NS(p[0]), x.IP(p[1])
		if err := run("ip", "netns", "exec", ns, "iptables", "-w", "-A", "INPUT", "-s", peer, "-j", "DROP"); err != nil {
			return err
		}
		if err := run("ip", "netns", "exec", ns, "iptables", "-w", "-A", "OUTPUT", "-d", peer, "-j", "DROP"); err != nil {
			return err
		}
	}
	x.cut[[2]int{a, b}], x.cut[[2]int{b, a}] = true, true
	return nil
}

// Partition cuts every link between a node in side and one outside it.
func (x *Netns) Partition(side []int) error {
	in := map[int]bool{}
	for _, i := range side {
		in[i] = true
	}
	for _, a := range side {
		for b := 1; b <= x.n; b++ {
			if !in[b] {
				if err := x.Cut(a, b); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Heal removes every DROP rule.
func (x *Netns) Heal() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	var errs []error
	for i := 1; i <= x.n; i++ {
		errs = append(errs, run("ip", "netns", "exec", x.NS(i), "iptables", "-w", "-F", "INPUT"),
			run("ip", "netns", "exec", x.NS(i), "iptables", "-w", "-F", "OUTPUT"))
	}
	clear(x.cut)
	return errors.Join(errs...)
}

// Close removes the namespaces (with their veths and rules), the bridge and
// the FORWARD rule. Nodes must be stopped first.
func (x *Netns) Close() error {
	var errs []error
	for i := 1; i <= x.n; i++ {
		if exists("netns", x.NS(i)) {
			errs = append(errs, run("ip", "netns", "del", x.NS(i)))
		}
	}
	br := x.bridge()
	if exists("link", br) {
		errs = append(errs, run("ip", "link", "del", br))
	}
	for run("iptables", "-w", "-C", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT") == nil {
		if err := run("iptables", "-w", "-D", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT"); err != nil {
			errs = append(errs, err)
			break
		}
	}
	return errors.Join(errs...)
}

func exists(kind, name string) bool {
	var out []byte
	if kind == "netns" {
		out, _ = exec.Command("ip", "netns", "list").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return true
			}
		}
		return false
	}
	return exec.Command("ip", "link", "show", name).Run() == nil
}

// freeSubnet picks 10.X.0.0/24 with no existing route or address in 10.X.
func freeSubnet() (int, error) {
	out, err := exec.Command("ip", "-4", "addr").Output()
	if err != nil {
		return 0, fmt.Errorf("chaos: ip addr: %w", err)
	}
	routes, _ := exec.Command("ip", "-4", "route").Output()
	used := string(out) + string(routes)
	start := 100 + os.Getpid()%100
	for i := range 150 {
		x := 100 + (start-100+i)%150
		if !strings.Contains(used, fmt.Sprintf(" 10.%d.", x)) {
			return x, nil
		}
	}
	return 0, errors.New("chaos: no free 10.X.0.0/24 subnet")
}

// removeStale deletes namespaces and bridges left by harnesses that died
// without cleaning up (their PID no longer exists).
func removeStale(logf func(string, ...any)) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	stale := map[string]bool{}
	scan := func(name string) {
		if !strings.HasPrefix(name, "shc") {
			return
		}
		digits := strings.TrimLeft(name[3:], "0123456789")
		pid, err := strconv.Atoi(name[3 : len(name)-len(digits)])
		if err != nil || pid == os.Getpid() {
			return
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			return
		}
		stale[name] = true
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			scan(f[0])
		}
	}
	for _, l := range strings.Split(string(links), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			scan(strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	for name := range stale {
		if exists("netns", name) {
			logf("removing stale namespace %s", name)
			run("ip", "netns", "del", name)
		} else if strings.HasSuffix(name, "br") {
			logf("removing stale bridge %s", name)
			run("iptables", "-w", "-D", "FORWARD", "-i", name, "-o", name, "-j", "ACCEPT")
			run("ip", "link", "del", name)
		}
	}
}
