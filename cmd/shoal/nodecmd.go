package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shoaldb/shoal/internal/certs"
	"github.com/spf13/cobra"
)

// clientFlags say how the admin commands reach a node: as any Redis
// client, over TLS with the cluster's CA when --certs-dir is given.
type clientFlags struct {
	host, user, password, certsDir string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.host, "host", "127.0.0.1:6379", "client address of any node")
	cmd.PersistentFlags().StringVar(&f.user, "user", "default", "user to log in as")
	cmd.PersistentFlags().StringVar(&f.password, "password", os.Getenv("SHOAL_PASSWORD"), "the user's password (default: $SHOAL_PASSWORD)")
	cmd.PersistentFlags().StringVar(&f.certsDir, "certs-dir", "", "directory with ca.crt (and client.USER.crt/.key, used if present): connect with TLS")
}

func (f *clientFlags) client() (*redis.Client, error) {
	opts := &redis.Options{Addr: f.host, Username: f.user, Password: f.password, MaxRetries: 2,
		DialTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
	if f.certsDir != "" {
		ca, err := os.ReadFile(filepath.Join(f.certsDir, certs.CACert))
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("%s: no certificate", certs.CACert)
		}
		opts.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if pair, err := tls.LoadX509KeyPair(filepath.Join(f.certsDir, certs.ClientCert(f.user)),
			filepath.Join(f.certsDir, certs.ClientKey(f.user))); err == nil {
			opts.TLSConfig.Certificates = []tls.Certificate{pair}
		}
	}
	return redis.NewClient(opts), nil
}

func nodeCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "node", Short: "Show and drain the cluster's nodes"}
	f.register(cmd)
	status := &cobra.Command{
		Use: "status", Short: "Show every node: state, replicas, leaders, replicas being added", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			nodes, err := nodeStatus(cmd.Context(), c)
			if err != nil {
				return err
			}
			printNodes(cmd.OutOrStdout(), nodes)
			return nil
		},
	}
	var every time.Duration
	var noWait bool
	decommission := &cobra.Command{
		Use:   "decommission ID|ADDR",
		Short: "Drain a node: its replicas move to the other nodes; prints progress until it can be stopped",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Do(cmd.Context(), "SHOAL", "DECOMMISSION", args[0]).Err(); err != nil {
				return err
			}
			if noWait {
				fmt.Fprintf(cmd.OutOrStdout(), "node %s is being drained (shoal node status shows its progress)\n", args[0])
				return nil
			}
			return watchDrain(cmd.Context(), cmd.OutOrStdout(), c, args[0], every)
		},
	}
	decommission.Flags().DurationVar(&every, "every", 5*time.Second, "how often to print progress")
	decommission.Flags().BoolVar(&noWait, "no-wait", false, "start the drain and return")
	cmd.AddCommand(status, decommission)
	return cmd
}

// nodeRow is one node of SHOAL NODES.
type nodeRow struct {
	id                                 int64
	addr, state                        string
	replicas, leaders, learners, bytes int64
}

func nodeStatus(ctx context.Context, c *redis.Client) ([]nodeRow, error) {
	v, err := c.Do(ctx, "SHOAL", "NODES").Slice()
	if err != nil {
		return nil, err
	}
	var out []nodeRow
	for _, item := range v {
		m, err := fields(item)
		if err != nil {
			return nil, err
		}
		r := nodeRow{addr: fmt.Sprint(m["addr"]), state: fmt.Sprint(m["state"])}
		r.id, _ = m["id"].(int64)
		r.replicas, _ = m["replicas"].(int64)
		r.leaders, _ = m["leaders"].(int64)
		r.learners, _ = m["learners"].(int64)
		r.bytes, _ = m["bytes"].(int64)
		out = append(out, r)
	}
	return out, nil
}

// fields reads a map reply, as RESP3 or RESP2 (a flat list) gives it.
func fields(v any) (map[string]any, error) {
	switch m := v.(type) {
	case map[any]any:
		out := map[string]any{}
		for k, x := range m {
			out[fmt.Sprint(k)] = x
		}
		return out, nil
	case []any:
		out := map[string]any{}
		for i := 0; i+1 < len(m); i += 2 {
			out[fmt.Sprint(m[i])] = m[i+1]
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %T", v)
}

func printNodes(w io.Writer, nodes []nodeRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tSTATE\tREPLICAS\tLEADERS\tADDING\tBYTES")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\n", n.id, n.addr, n.state, n.replicas, n.leaders, n.learners, human(n.bytes))
	}
	tw.Flush()
}

// watchDrain prints the drained node's replicas left every interval until
// none is left.
func watchDrain(ctx context.Context, w io.Writer, c *redis.Client, target string, every time.Duration) error {
	start := time.Now()
	var first int64 = -1
	for {
		nodes, err := nodeStatus(ctx, c)
		if err != nil {
			return err
		}
		var n *nodeRow
		for i := range nodes {
			if fmt.Sprint(nodes[i].id) == target || nodes[i].addr == target {
				n = &nodes[i]
			}
		}
		if n == nil {
			return errors.New("the node is no longer listed")
		}
		// The node may gain a replica that was on its way when the
		// drain began: count from the most it held.
		first = max(first, n.replicas)
		if n.replicas == 0 {
			fmt.Fprintf(w, "node %d holds no replica: it can be stopped (%s)\n", n.id, time.Since(start).Round(time.Second))
			return nil
		}
		line := fmt.Sprintf("node %d: %s %d of %d replicas (%s) left", n.id, bar(first-n.replicas, first, 20), n.replicas, first, human(n.bytes))
		if moved, el := first-n.replicas, time.Since(start); moved > 0 {
			rate := float64(moved) / el.Seconds()
			eta := time.Duration(float64(n.replicas) / rate * float64(time.Second))
			line += fmt.Sprintf(", %.2f replicas/s, about %s to go", rate, eta.Round(time.Second))
		}
		fmt.Fprintln(w, strings.TrimSpace(line))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// bar draws done out of total as a bar of width cells.
func bar(done, total int64, width int) string {
	filled := 0
	if total > 0 {
		filled = int(min(max(done, 0), total) * int64(width) / total)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

// human writes a byte count in binary units.
func human(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
