// Package certs makes and loads the certificates of a shoal cluster, with
// Go's standard library only.
//
// A certificates directory holds the cluster's CA (ca.crt, and ca.key where
// certificates are made), a node's certificate (node.crt, node.key), and
// clients' certificates (client.USER.crt, client.USER.key), as CockroachDB's
// `cockroach cert` lays them out. A node certificate has the common name
// "node" and serves both sides of the node-to-node bus; a client
// certificate has its user's name as common name and is never accepted on
// the bus.
//
// A Loader serves the files to TLS: it reads them again when they change
// (checked at most once a second, at handshakes) or on Reload, so that
// certificates rotate without a restart.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// File names in a certificates directory.
const (
	CACert   = "ca.crt"
	CAKey    = "ca.key"
	NodeCert = "node.crt"
	NodeKey  = "node.key"
	// NodeName is the common name of every node certificate.
	NodeName = "node"
)

// ClientCert and ClientKey name the files of user's client certificate.
func ClientCert(user string) string { return "client." + user + ".crt" }
func ClientKey(user string) string  { return "client." + user + ".key" }

// Validity of the certificates made here.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 5 * 365 * 24 * time.Hour
)

// CreateCA makes a new CA in dir. It refuses to replace an existing one:
// every certificate it signed would stop being trusted.
func CreateCA(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, CACert)); err == nil {
		return fmt.Errorf("certs: %s already exists in %s", CACert, dir)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := template("shoal CA", caValidity)
	if err != nil {
		return err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writePair(dir, CACert, CAKey, der, key)
}

// CreateNode makes dir's node certificate, signed by dir's CA, for the
// given hosts (names or IP addresses; localhost and 127.0.0.1 are always
// added), replacing any.
func CreateNode(dir string, hosts ...string) error {
	return create(dir, NodeName, NodeCert, NodeKey, append(hosts, "localhost", "127.0.0.1", "::1"),
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

// CreateClient makes a client certificate for user, signed by dir's CA.
func CreateClient(dir, user string) error {
	if user == "" || user == NodeName || strings.ContainsAny(user, "/\\ \t\n") {
		return fmt.Errorf("certs: %q cannot be a user name", user)
	}
	return create(dir, user, ClientCert(user), ClientKey(user), nil,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
}

func create(dir, cn, certFile, keyFile string, hosts []string, usage []x509.ExtKeyUsage) error {
	ca, err := tls.LoadX509KeyPair(filepath.Join(dir, CACert), filepath.Join(dir, CAKey))
	if err != nil {
		return fmt.Errorf("certs: load the CA (shoal cert create-ca makes one): %w", err)
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := template(cn, certValidity)
	if err != nil {
		return err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = usage
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		return err
	}
	return writePair(dir, certFile, keyFile, der, key)
}

func template(cn string, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"shoal"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
	}, nil
}

// writePair writes a certificate (0644) and its key (0600).
func writePair(dir, certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile replaces path atomically, so that a Loader never reads half a
// file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Loader serves a node's certificates from a directory to TLS.
type Loader struct {
	dir string

	mu      sync.Mutex
	checked time.Time // when the files' times were last looked at
	stamp   string    // their modification times then
	cert    *tls.Certificate
	pool    *x509.CertPool
}

// Load reads dir's CA and node certificate.
func Load(dir string) (*Loader, error) {
	l := &Loader{dir: dir}
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Dir returns the certificates directory.
func (l *Loader) Dir() string { return l.dir }

// Reload reads the files again now.
func (l *Loader) Reload() error {
	stamp := l.stampNow()
	cert, err := tls.LoadX509KeyPair(filepath.Join(l.dir, NodeCert), filepath.Join(l.dir, NodeKey))
	if err != nil {
		return fmt.Errorf("certs: %w (shoal cert create-node makes them)", err)
	}
	ca, err := os.ReadFile(filepath.Join(l.dir, CACert))
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("certs: no certificate in %s", filepath.Join(l.dir, CACert))
	}
	l.mu.Lock()
	l.cert, l.pool, l.stamp, l.checked = &cert, pool, stamp, time.Now()
	l.mu.Unlock()
	return nil
}

// stampNow describes the files' modification times.
func (l *Loader) stampNow() string {
	var b strings.Builder
	for _, f := range []string{CACert, NodeCert, NodeKey} {
		if st, err := os.Stat(filepath.Join(l.dir, f)); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d ", f, st.ModTime().UnixNano(), st.Size())
		}
	}
	return b.String()
}

// current returns the certificate and CA pool, reloading them first if
// the files changed (looked at most once a second). A failed reload keeps
// the last good ones.
func (l *Loader) current() (*tls.Certificate, *x509.CertPool) {
	l.mu.Lock()
	stale := time.Since(l.checked) > time.Second
	if stale {
		l.checked = time.Now()
	}
	cert, pool, stamp := l.cert, l.pool, l.stamp
	l.mu.Unlock()
	if stale && l.stampNow() != stamp && l.Reload() == nil {
		l.mu.Lock()
		cert, pool = l.cert, l.pool
		l.mu.Unlock()
	}
	return cert, pool
}

// ErrNotNode is what the bus answers a certificate of the cluster's
// CA that is not a node's.
var ErrNotNode = errors.New("certs: not a node certificate")

// verify checks that chain's leaf is signed by the CA, for usage, and
// returns it.
func (l *Loader) verify(rawCerts [][]byte, usage x509.ExtKeyUsage) (*x509.Certificate, error) {
	if len(rawCerts) == 0 {
		return nil, errors.New("certs: no certificate presented")
	}
	_, pool := l.current()
	leaf, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, raw := range rawCerts[1:] {
		if c, err := x509.ParseCertificate(raw); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return leaf, nil
}

// verifyNode checks that a peer's chain is a node certificate of the
// cluster's CA.
func (l *Loader) verifyNode(rawCerts [][]byte, usage x509.ExtKeyUsage) error {
	leaf, err := l.verify(rawCerts, usage)
	if err != nil {
		return err
	}
	if leaf.Subject.CommonName != NodeName {
		return fmt.Errorf("%w: %q", ErrNotNode, leaf.Subject.CommonName)
	}
	return nil
}

// BusServer is the TLS configuration of the node-to-node listener: a peer
// must present a node certificate of the cluster's CA.
func (l *Loader) BusServer() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { c, _ := l.current(); return c, nil },
		ClientAuth:     tls.RequireAnyClientCert, // verified below, against the CA as it is now
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return l.verifyNode(raw, x509.ExtKeyUsageClientAuth)
		},
	}
}

// BusClient is the TLS configuration of calls to other nodes: the peer
// must present a node certificate of the cluster's CA. Nodes are reached
// by address, and every node certificate names the same identity, so the
// check is the CA and the name "node", not the host.
func (l *Loader) BusClient() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { c, _ := l.current(); return c, nil },
		InsecureSkipVerify:   true, // verified below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return l.verifyNode(raw, x509.ExtKeyUsageServerAuth)
		},
	}
}

// ClientServer is the TLS configuration of the client (Redis protocol)
// and HTTP listeners: the node's certificate; a client may present a
// certificate of the cluster's CA (see Peer).
func (l *Loader) ClientServer() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12, // redis-cli and older clients
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { c, _ := l.current(); return c, nil },
		ClientAuth:     tls.RequestClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil
			}
			_, err := l.verify(raw, x509.ExtKeyUsageClientAuth)
			return err
		},
	}
}

func parseLeaf(c *tls.Certificate) (*x509.Certificate, error) {
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	return x509.ParseCertificate(c.Certificate[0])
}
