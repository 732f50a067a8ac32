package abuse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
)

// Load is one hostile or careless workload. Run drives it against the
// cluster until ctx ends and returns what its clients were answered.
type Load struct {
	Name string
	// What the load does, for the report.
	What string
	Run  func(ctx context.Context, addrs []string) (*Outcome, error)
}

// Outcome counts what a load's clients saw: replies by their first words
// (errors by their prefix), and connections the server closed.
type Outcome struct {
	mu      sync.Mutex
	Replies map[string]int
	Closed  int
}

func (o *Outcome) reply(r string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Replies == nil {
		o.Replies = map[string]int{}
	}
	o.Replies[summarize(r)]++
}

func (o *Outcome) closed() {
	o.mu.Lock()
	o.Closed++
	o.mu.Unlock()
}

// String lists the replies, most frequent first, and the closed
// connections.
func (o *Outcome) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	type kv struct {
		k string
		n int
	}
	var rs []kv
	for k, n := range o.Replies {
		rs = append(rs, kv{k, n})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].n > rs[j].n || rs[i].n == rs[j].n && rs[i].k < rs[j].k })
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d× %s", r.n, r.k))
	}
	if o.Closed > 0 {
		parts = append(parts, fmt.Sprintf("%d closed by the server", o.Closed))
	}
	if len(parts) == 0 {
		return "no reply"
	}
	return strings.Join(parts, "; ")
}

// summarize shortens a wire reply to its kind: "+OK", ":<int>", "$<n
// bytes>", "*<n>", or an error's first words.
func summarize(r string) string {
	r = strings.TrimRight(r, "\r\n")
	switch {
	case r == "":
		return "empty"
	case r[0] == '-':
		if len(r) > 70 {
			r = r[:70] + "…"
		}
		return r
	case r[0] == '$':
		return "bulk of " + strings.SplitN(r[1:], "\r\n", 2)[0] + " bytes"
	case r[0] == '*':
		return "array of " + strings.SplitN(r[1:], "\r\n", 2)[0]
	case r[0] == ':':
		return "integer"
	}
	return strings.SplitN(r, "\r\n", 2)[0]
}

// Loads returns every load, in the order the report lists them.
func Loads() []Load {
	return []Load{
		{Name: "setrange", What: "8 clients loop SETRANGE k 536870911 x (a 41-byte command that asks for a 512 MiB string)", Run: setRange},
		{Name: "big-values", What: "a plain client loops SET of a value of proto-max-bulk-len bytes through a node that forwards it", Run: bigValues},
		{Name: "oversize-bulk", What: "4 clients loop sending a SET whose bulk header announces 48 MiB, more than proto-max-bulk-len", Run: oversizeBulk},
		{Name: "mget-512", What: "8 clients loop MGET of one 1 MiB key 512 times (a 7 KB command asking for a 512 MiB reply)", Run: mget512},
		{Name: "stalled-readers", What: "200 clients each pipeline 64 GETs of a 1 MiB key and never read", Run: stalledReaders},
		{Name: "half-bulks", What: "200 clients each send the header of a bulk of proto-max-bulk-len bytes and half of it, then stall", Run: halfBulks},
		{Name: "idle-conns", What: "9 000 connections to one node that send nothing", Run: idleConns},
	}
}

// dial connects to addr, giving up after 5 s.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// command encodes args as a RESP multibulk command.
func command(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// readReply reads one reply and returns its first line (for a bulk or an
// array, the rest is read and discarded).
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	switch line[0] {
	case '$':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		if n >= 0 {
			if _, err := io.CopyN(io.Discard, r, int64(n)+2); err != nil {
				return "", err
			}
		}
	case '*':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		for range n {
			if _, err := readReply(r); err != nil {
				return "", err
			}
		}
	}
	return line, nil
}

// loop runs clients goroutines, each calling one until ctx ends; an error
// of one is counted as a connection the server closed, and the client
// dials again.
func loop(ctx context.Context, addrs []string, clients int, o *Outcome, one func(ctx context.Context, c net.Conn, r *bufio.Reader) error) {
	var wg sync.WaitGroup
	for i := range clients {
		addr := addrs[i%len(addrs)]
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := dial(ctx, addr)
				if err != nil {
					// Refused or timed out: do not spin on the CPUs the
					// nodes need.
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				r := bufio.NewReader(c)
				for ctx.Err() == nil {
					if err := one(ctx, c, r); err != nil {
						if ctx.Err() == nil {
							o.closed()
						}
						break
					}
				}
				stop()
				c.Close()
			}
		})
	}
	wg.Wait()
}

// ask sends cmd and records its reply.
func ask(c net.Conn, r *bufio.Reader, cmd string, o *Outcome) error {
	if _, err := io.WriteString(c, cmd); err != nil {
		return err
	}
	line, err := readReply(r)
	if err != nil {
		return err
	}
	o.reply(line)
	return nil
}

func setRange(ctx context.Context, addrs []string) (*Outcome, error) {
	o := &Outcome{}
	cmd := command("SETRANGE", "abuse:setrange", "536870911", "x")
	loop(ctx, addrs, 8, o, func(ctx context.Context, c net.Conn, r *bufio.Reader) error {
		return ask(c, r, cmd, o)
	})
	return o, nil
}

func bigValues(ctx context.Context, addrs []string) (*Outcome, error) {
	o := &Outcome{}
	size, err := maxBulkLen(ctx, addrs[0])
	if err != nil {
		return nil, err
	}
	value := strings.Repeat("v", size)
	cmd := command("SET", "abuse:big", value)
	loop(ctx, addrs[:1], 1, o, func(ctx context.Context, c net.Conn, r *bufio.Reader) error {
		return ask(c, r, cmd, o)
	})
	return o, nil
}

func oversizeBulk(ctx context.Context, addrs []string) (*Outcome, error) {
	o := &Outcome{}
	// The header announces 48 MiB; the server answers it at once, so the
	// client sends only the first MiB, sparing the machine's CPU.
	cmd := "*3\r\n$3\r\nSET\r\n$14\r\nabuse:oversize\r\n$" + fmt.Sprint(48<<20) + "\r\n" + strings.Repeat("x", 1<<20)
	loop(ctx, addrs, 4, o, func(ctx context.Context, c net.Conn, r *bufio.Reader) error {
		// The server answers the header at once and closes: the rest of
		// the write may fail, which is expected.
		go io.WriteString(c, cmd)
		line, err := readReply(r)
		if err != nil {
			return err
		}
		o.reply(line)
		_, err = readReply(r) // the server closes the connection
		return err
	})
	return o, nil
}

// maxBulkLen asks addr for its proto-max-bulk-len.
func maxBulkLen(ctx context.Context, addr string) (int, error) {
	c, err := dial(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := io.WriteString(c, command("CONFIG", "GET", "proto-max-bulk-len")); err != nil {
		return 0, err
	}
	var lines []string
	for range 5 { // *2, $18, the name, $n, the value
		l, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	var n int
	if _, err := fmt.Sscan(lines[4], &n); err != nil {
		return 0, fmt.Errorf("abuse: CONFIG GET proto-max-bulk-len: %q", lines)
	}
	return n, nil
}

// bigKey is a 1 MiB value that several loads read.
const bigKey = "{abuse}big"

func setBigKey(ctx context.Context, addr string) error {
	c, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	o := &Outcome{}
	if err := ask(c, bufio.NewReader(c), command("SET", bigKey, strings.Repeat("b", 1<<20)), o); err != nil {
		return err
	}
	if o.Replies["+OK"] != 1 {
		return fmt.Errorf("abuse: SET %s: %s", bigKey, o.String())
	}
	return nil
}

func mget512(ctx context.Context, addrs []string) (*Outcome, error) {
	o := &Outcome{}
	if err := setBigKey(ctx, addrs[0]); err != nil {
		return o, err
	}
	args := []string{"MGET"}
	for range 512 {
		args = append(args, bigKey)
	}
	cmd := command(args...)
	loop(ctx, addrs, 8, o, func(ctx context.Context, c net.Conn, r *bufio.Reader) error {
		return ask(c, r, cmd, o)
	})
	return o, nil
}

// hold opens n connections spread over addrs, sends each send(i) (if not
// empty) and keeps them open without reading until ctx ends. What the
// server did with them shows in its INFO counters (Run reports them).
func hold(ctx context.Context, addrs []string, n int, send func(i int) string) (*Outcome, error) {
	o := &Outcome{}
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32) // dials at once, as many clients arriving together
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := dial(ctx, addrs[i%len(addrs)])
			if err != nil {
				// A dial cut short by the end of the load is no answer.
				if d, ok := ctx.Deadline(); ctx.Err() == nil && (!ok || time.Until(d) > time.Second) {
					o.reply("-dial: " + err.Error())
				}
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if s := send(i); s != "" {
				// The write blocks once the server stops reading; closing
				// the connection at the end ends it.
				go io.WriteString(c, s)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	o.reply(fmt.Sprintf("+%d connections held", len(conns)))
	mu.Unlock()
	<-ctx.Done()
	return o, nil
}

func stalledReaders(ctx context.Context, addrs []string) (*Outcome, error) {
	if err := setBigKey(ctx, addrs[0]); err != nil {
		return nil, err
	}
	pipe := strings.Repeat(command("GET", bigKey), 64)
	return hold(ctx, addrs, 200, func(int) string { return pipe })
}

func halfBulks(ctx context.Context, addrs []string) (*Outcome, error) {
	size, err := maxBulkLen(ctx, addrs[0])
	if err != nil {
		return nil, err
	}
	half := "*3\r\n$3\r\nSET\r\n$10\r\nabuse:half\r\n$" + fmt.Sprint(size) + "\r\n" + strings.Repeat("h", size/2)
	return hold(ctx, addrs, 200, func(int) string { return half })
}

func idleConns(ctx context.Context, addrs []string) (*Outcome, error) {
	return hold(ctx, addrs[:1], 9000, func(int) string { return "" })
}
