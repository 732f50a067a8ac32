package chaos

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shoaldb/shoal/internal/certs"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/transport"
)

// A cluster started with certificates and a password serves TLS clients
// that give the password through every node, refuses plain text, no or a
// wrong password, logs a client certificate in as the user it names (with
// that user's permissions), and lets onto its bus only nodes of its CA: a
// peer without a certificate, with a client's certificate of the same CA,
// or with a node certificate of another CA cannot even ask for the
// cluster's view. A node asked to listen beyond loopback without
// certificates refuses to start.
func TestTLSRefusesStrangers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real 3-node cluster")
	}
	QuietRedisLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	certsDir := filepath.Join(dir, "certs")
	if err := certs.CreateCA(certsDir); err != nil {
		t.Fatal(err)
	}
	if err := certs.CreateNode(certsDir); err != nil {
		t.Fatal(err)
	}
	if err := certs.CreateClient(certsDir, "alice"); err != nil {
		t.Fatal(err)
	}
	const password = "s3cret-for-the-test"
	cl, err := StartCluster(ctx, ClusterConfig{Bin: bin, Dir: dir, Nodes: 3, Shards: 4, Logf: t.Logf, CertsDir: certsDir, Password: password})
	if cl != nil {
		defer cl.Stop()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: cl.Nodes[0].Addr, TLSConfig: cl.TLS(), Password: password})
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "alice", "on", "~a:*", "+@read", "+@write", "-@dangerous", "+acl|whoami").Err(); err != nil {
		t.Fatal(err)
	}
	aliceTLS := cl.TLS().Clone()
	cert, err := tls.LoadX509KeyPair(filepath.Join(certsDir, "client.alice.crt"), filepath.Join(certsDir, "client.alice.key"))
	if err != nil {
		t.Fatal(err)
	}
	aliceTLS.Certificates = []tls.Certificate{cert}
	for i, n := range cl.Nodes {
		// No password, a wrong one: refused as Redis refuses them.
		for _, tc := range []struct{ password, want string }{{"", "NOAUTH"}, {"wrong", "WRONGPASS"}} {
			c := redis.NewClient(&redis.Options{Addr: n.Addr, TLSConfig: cl.TLS(), Password: tc.password, MaxRetries: -1})
			if err := c.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("node %d, password %q: PING = %v, want %s", n.Index, tc.password, err, tc.want)
			}
			c.Close()
		}
		// A client certificate logs in as the user it names, with that
		// user's permissions, on every node.
		a := redis.NewClient(&redis.Options{Addr: n.Addr, TLSConfig: aliceTLS, MaxRetries: -1})
		if who, err := a.Do(ctx, "ACL", "WHOAMI").Result(); err != nil || who != "alice" {
			t.Errorf("node %d: ACL WHOAMI with alice's certificate = %v, %v", n.Index, who, err)
		}
		if err := a.Set(ctx, fmt.Sprint("a:", i), "v", 0).Err(); err != nil {
			t.Errorf("node %d: SET as alice: %v", n.Index, err)
		}
		if err := a.FlushAll(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Errorf("node %d: FLUSHALL as alice = %v, want NOPERM", n.Index, err)
		}
		a.Close()
		c := redis.NewClient(&redis.Options{Addr: n.Addr, TLSConfig: cl.TLS(), Password: password, MaxRetries: 3})
		key := fmt.Sprint("k", i)
		if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("SET over TLS through node %d: %v", n.Index, err)
		}
		if v, err := c.Get(ctx, "k0").Result(); err != nil || v != "v" {
			t.Fatalf("GET over TLS through node %d = %q, %v", n.Index, v, err)
		}
		c.Close()
		plain := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
		if err := plain.Ping(ctx).Err(); err == nil {
			t.Errorf("node %d answered a plain-text PING", n.Index)
		}
		plain.Close()
	}

	// The HTTP endpoints: HTTPS with the node's certificate, no plain text.
	httpAddr := offsetAddr(t, cl.Nodes[0].Addr, 20000)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cl.TLS()}}
	if res, err := hc.Get("https://" + httpAddr + "/healthz"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("GET https://%s/healthz: %v %v", httpAddr, res, err)
	} else {
		res.Body.Close()
	}
	if res, err := hc.Get("http://" + httpAddr + "/healthz"); err == nil && res.StatusCode == http.StatusOK {
		res.Body.Close()
		t.Errorf("GET http://%s/healthz in plain text answered 200", httpAddr)
	}

	bus := offsetAddr(t, cl.Nodes[0].Addr, 10000)
	ask := func(name string, server, client *tls.Config) error {
		t.Helper()
		tr, err := transport.New(transport.Config{Addr: "127.0.0.1:0", Handler: nopHandler{}, ServerTLS: server, ClientTLS: client,
			DialTimeout: time.Second})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer tr.Close()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = tr.CallAddr(cctx, bus, "view", nil)
		return err
	}
	node, err := certs.Load(certsDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ask("a node of the cluster's CA", node.BusServer(), node.BusClient()); err != nil {
		t.Fatalf("a peer with a node certificate of the cluster's CA was refused: %v", err)
	}
	if err := ask("no TLS", nil, nil); err == nil {
		t.Error("the bus answered a peer without TLS")
	}
	asAlice := filepath.Join(dir, "alice")
	os.MkdirAll(asAlice, 0o700)
	copyFile(t, filepath.Join(certsDir, certs.CACert), filepath.Join(asAlice, certs.CACert))
	copyFile(t, filepath.Join(certsDir, certs.ClientCert("alice")), filepath.Join(asAlice, certs.NodeCert))
	copyFile(t, filepath.Join(certsDir, certs.ClientKey("alice")), filepath.Join(asAlice, certs.NodeKey))
	alice, err := certs.Load(asAlice)
	if err != nil {
		t.Fatal(err)
	}
	if err := ask("a client certificate", alice.BusServer(), alice.BusClient()); err == nil {
		t.Error("the bus answered a peer holding a client certificate")
	}
	otherDir := filepath.Join(dir, "other")
	if err := certs.CreateCA(otherDir); err != nil {
		t.Fatal(err)
	}
	if err := certs.CreateNode(otherDir); err != nil {
		t.Fatal(err)
	}
	other, err := certs.Load(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ask("another CA", other.BusServer(), other.BusClient()); err == nil {
		t.Error("the bus answered a node of another CA")
	}

	// Beyond loopback without certificates: refused, unless --insecure.
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, "start", "--data-dir", filepath.Join(dir, "open"),
		"--addr", "0.0.0.0:"+strconv.Itoa(p)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to listen on") || !strings.Contains(string(out), "--certs-dir") {
		t.Errorf("start on 0.0.0.0 without certificates: %v, %q", err, out)
	}
}

// offsetAddr is addr with its port plus delta: the bus (+10000) and HTTP
// (+20000) addresses a node derives from its client address.
func offsetAddr(t *testing.T, addr string, delta int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+delta))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// nopHandler serves nothing: the test's transports only call.
type nopHandler struct{}

func (nopHandler) HandleRaft(uint64, []*shoalpb.RaftEnvelope) {}
func (nopHandler) HandleCall(context.Context, uint64, string, []byte) ([]byte, error) {
	return nil, fmt.Errorf("nothing served here")
}
func (nopHandler) ReportUnreachable(uint64, uint64)    {}
func (nopHandler) ReportSnapshot(uint64, uint64, bool) {}
