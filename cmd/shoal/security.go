package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/shoaldb/shoal/internal/certs"
	"github.com/shoaldb/shoal/internal/node"
	"github.com/spf13/cobra"
)

func certCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Make the cluster's CA and its nodes' and clients' certificates",
		Long: `Make the certificates a secure cluster runs with, in --certs-dir:
  shoal cert create-ca --certs-dir DIR               ca.crt, ca.key (keep ca.key safe)
  shoal cert create-node --certs-dir DIR HOST...     node.crt, node.key for a node's names and IPs
  shoal cert create-client --certs-dir DIR USER      client.USER.crt, client.USER.key
Each node's directory holds ca.crt, node.crt and node.key; ca.key is only
needed where certificates are made.`,
	}
	cmd.PersistentFlags().StringVar(&dir, "certs-dir", "certs", "directory of the certificates")
	cmd.AddCommand(
		&cobra.Command{
			Use: "create-ca", Short: "Make the cluster's CA", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return certs.CreateCA(dir) },
		},
		&cobra.Command{
			Use: "create-node HOST...", Short: "Make a node's certificate for its host names and IP addresses", Args: cobra.MinimumNArgs(1),
			RunE: func(_ *cobra.Command, hosts []string) error { return certs.CreateNode(dir, hosts...) },
		},
		&cobra.Command{
			Use: "create-client USER", Short: "Make a client certificate for USER", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error { return certs.CreateClient(dir, args[0]) },
		},
	)
	return cmd
}

// securityFlags choose between TLS and plain text.
type securityFlags struct {
	certsDir        string
	insecure        bool
	requirePass     string
	requirePassFile string
	protectedMode   bool
	metricsAuth     bool
}

func (s *securityFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.certsDir, "certs-dir", "", "directory with ca.crt, node.crt and node.key (shoal cert): TLS for clients and HTTP, mutual TLS between nodes")
	cmd.Flags().BoolVar(&s.insecure, "insecure", false, "run without TLS on addresses other than loopback (anyone who reaches the ports can read and change everything)")
	cmd.Flags().StringVar(&s.requirePass, "requirepass", "", "the default user's password, set when this node creates a new cluster (users are cluster data: change them with ACL SETUSER)")
	cmd.Flags().StringVar(&s.requirePassFile, "requirepass-file", "", "file whose first line is --requirepass (keeps the password out of the process list)")
	cmd.Flags().BoolVar(&s.metricsAuth, "metrics-auth", false, "/metrics asks for a user who may run INFO (HTTP basic authentication or a client certificate); /healthz and /readyz stay open")
	cmd.Flags().BoolVar(&s.protectedMode, "protected-mode", true, "while the default user has no password, accept clients only from loopback or with a client certificate naming a user")
}

// apply sets the password and protected mode in cfg.
func (s *securityFlags) apply(cfg *node.Config) error {
	if s.requirePass != "" && s.requirePassFile != "" {
		return errors.New("give --requirepass or --requirepass-file, not both")
	}
	cfg.RequirePass = s.requirePass
	if s.requirePassFile != "" {
		b, err := os.ReadFile(s.requirePassFile)
		if err != nil {
			return fmt.Errorf("--requirepass-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if cfg.RequirePass = strings.TrimRight(line, "\r"); cfg.RequirePass == "" {
			return fmt.Errorf("--requirepass-file %s: the first line is empty", s.requirePassFile)
		}
	}
	cfg.Clients.NoProtectedMode = !s.protectedMode
	cfg.MetricsAuth = s.metricsAuth
	return nil
}

// load returns the certificates to run with, or nil for plain text, which
// only loopback addresses may use unless --insecure is given.
func (s *securityFlags) load(log *slog.Logger, addrs map[string]string) (*certs.Loader, error) {
	if s.certsDir != "" {
		return certs.Load(s.certsDir)
	}
	var open []string
	for flag, addr := range addrs {
		if addr != "" && addr != "off" && !loopback(addr) {
			open = append(open, "--"+flag+" "+addr)
		}
	}
	if len(open) == 0 {
		return nil, nil
	}
	if !s.insecure {
		return nil, fmt.Errorf("refusing to listen on %v without TLS: make certificates with `shoal cert` and give --certs-dir, "+
			"listen on loopback only, or give --insecure to run without security", open)
	}
	log.Warn("running without TLS or authentication on non-loopback addresses (--insecure): anyone who reaches them can read and change everything", "addrs", open)
	return nil, nil
}

// loopback reports whether addr (host:port, host may be empty for every
// interface) listens only on a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// derivedAddr is addr's host with its port plus delta, as the node derives
// the bus and HTTP addresses when they are not given.
func derivedAddr(addr string, delta int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+delta))
}
