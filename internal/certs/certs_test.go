package certs

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func mustDir(t *testing.T, clients ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := CreateNode(dir, "10.0.0.1", "db.example"); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if err := CreateClient(dir, c); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// handshake runs a TLS handshake between cfgs over loopback TCP and
// returns the server's and the client's errors.
func handshake(server, client *tls.Config) (serr, cerr error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err, err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		s := tls.Server(nc, server)
		s.SetDeadline(time.Now().Add(5 * time.Second))
		done <- s.Handshake()
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err, err
	}
	defer nc.Close()
	c := tls.Client(nc, client)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	cerr = c.Handshake()
	if cerr != nil {
		nc.Close()
	}
	return <-done, cerr
}

func TestBusAcceptsOnlyNodesOfItsCA(t *testing.T) {
	dir := mustDir(t, "alice")
	l, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if serr, cerr := handshake(l.BusServer(), l.BusClient()); serr != nil || cerr != nil {
		t.Fatalf("node to node: server %v, client %v", serr, cerr)
	}
	// A client certificate of the same CA is not a node's.
	alice, err := tls.LoadX509KeyPair(filepath.Join(dir, ClientCert("alice")), filepath.Join(dir, ClientKey("alice")))
	if err != nil {
		t.Fatal(err)
	}
	asAlice := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{alice}}
	if serr, _ := handshake(l.BusServer(), asAlice); !errors.Is(serr, ErrNotNode) {
		t.Errorf("a client certificate on the bus: server said %v, want %v", serr, ErrNotNode)
	}
	// No certificate at all.
	if serr, _ := handshake(l.BusServer(), &tls.Config{InsecureSkipVerify: true}); serr == nil {
		t.Error("a peer without a certificate was accepted on the bus")
	}
	// A node of another cluster's CA, both ways.
	other, err := Load(mustDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if serr, _ := handshake(l.BusServer(), other.BusClient()); serr == nil {
		t.Error("a node of another CA was accepted as a peer")
	}
	if _, cerr := handshake(other.BusServer(), l.BusClient()); cerr == nil {
		t.Error("a node dialed a server of another CA")
	}
}

func TestClientPortTakesClientsWithOrWithoutCertificates(t *testing.T) {
	dir := mustDir(t, "alice")
	l, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	roots := l.pool
	if serr, cerr := handshake(l.ClientServer(), &tls.Config{RootCAs: roots, ServerName: "db.example"}); serr != nil || cerr != nil {
		t.Fatalf("client without a certificate: server %v, client %v", serr, cerr)
	}
	alice, _ := tls.LoadX509KeyPair(filepath.Join(dir, ClientCert("alice")), filepath.Join(dir, ClientKey("alice")))
	if serr, cerr := handshake(l.ClientServer(), &tls.Config{RootCAs: roots, ServerName: "10.0.0.1", Certificates: []tls.Certificate{alice}}); serr != nil || cerr != nil {
		t.Fatalf("client with alice's certificate: server %v, client %v", serr, cerr)
	}
	if _, cerr := handshake(l.ClientServer(), &tls.Config{RootCAs: roots, ServerName: "elsewhere.example"}); cerr == nil {
		t.Error("the node's certificate passed for a host it does not name")
	}
	if err := CreateClient(dir, NodeName); err == nil {
		t.Error(`a client certificate named "node" was made`)
	}
}

// A certificate replaced on disk is served from the next handshakes on.
func TestRotation(t *testing.T) {
	dir := mustDir(t)
	l, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := parseLeaf(l.cert)
	time.Sleep(10 * time.Millisecond) // a later modification time
	if err := CreateNode(dir, "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.checked = time.Time{} // as if a second had passed
	l.mu.Unlock()
	cert, _ := l.current()
	after, _ := parseLeaf(cert)
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("the replaced certificate was not reloaded")
	}
	if err := CreateCA(dir); err == nil {
		t.Error("CreateCA replaced an existing CA")
	}
	os.Remove(filepath.Join(dir, NodeKey))
	if _, err := Load(dir); err == nil {
		t.Error("Load without a node key succeeded")
	}
}
