package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shoaldb/shoal/internal/meta"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/server"
)

// Users returns the cluster's users as this node knows them, or nil
// before it knows its cluster.
func (n *Node) Users() server.Users {
	if u := n.users.Load(); u != nil {
		return u
	}
	return nil
}

// offerUsers keeps u if it is newer than the users the node has. Until
// the node has read the users from the meta leader once (loadUsers), it
// keeps none: its own copy may be behind (a node restarting re-applies
// its meta log), and a password set or a permission taken away meanwhile
// must not be bypassed through it. Users equal to the current ones only
// raise the version: the server compiles users once per value it sees,
// and most meta changes (leaders, replicas) leave the users alone.
func (n *Node) offerUsers(u *meta.Users, fromLeader bool) {
	n.usersMu.Lock()
	defer n.usersMu.Unlock()
	if fromLeader {
		n.usersLoaded = true
	}
	if !n.usersLoaded || u.Version <= n.usersVersion && n.users.Load() != nil {
		return
	}
	n.usersVersion = u.Version
	if cur := n.users.Load(); cur != nil && reflect.DeepEqual(cur.Users, u.Users) {
		return
	}
	n.users.Store(u)
}

// RefreshUsers reads the users from the meta shard's leader, so that
// what this node knows includes every change acknowledged before.
func (n *Node) RefreshUsers(ctx context.Context) error {
	v, err := n.Execute(ctx, server.Request{Shard: meta.ShardID, Args: [][]byte{[]byte(meta.CmdReadUsers)}})
	if err != nil {
		return err
	}
	if v.IsError() {
		return fmt.Errorf("node: read users: %s", v.Str)
	}
	u := &meta.Users{}
	if err := json.Unmarshal(v.Str, u); err != nil {
		return fmt.Errorf("node: decode users: %w", err)
	}
	n.offerUsers(u, true)
	return nil
}

// loadUsers reads the users from the meta leader until it succeeds once,
// when the node starts: clients are answered -LOADING until then.
func (n *Node) loadUsers() {
	for n.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
		err := n.RefreshUsers(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-n.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SetUser applies prepared ACL SETUSER modifiers in the meta shard.
func (n *Node) SetUser(ctx context.Context, name string, ops []string) (resp.Value, error) {
	args := [][]byte{[]byte(meta.CmdSetUser), []byte(name)}
	for _, op := range ops {
		args = append(args, []byte(op))
	}
	return n.changeUsers(ctx, args)
}

// DelUsers deletes users in the meta shard.
func (n *Node) DelUsers(ctx context.Context, names []string) (resp.Value, error) {
	args := [][]byte{[]byte(meta.CmdDelUser)}
	for _, name := range names {
		args = append(args, []byte(name))
	}
	return n.changeUsers(ctx, args)
}

// changeUsers runs a META.SETUSER or META.DELUSER command and, once it is
// applied, refreshes this node's users, so that the change is in force
// here when the client hears of it.
func (n *Node) changeUsers(ctx context.Context, args [][]byte) (resp.Value, error) {
	v, err := n.Execute(ctx, server.Request{Shard: meta.ShardID, Args: args, Write: true})
	if err != nil || v.IsError() {
		return v, err
	}
	if err := n.RefreshUsers(ctx); err != nil {
		n.log.Warn("users changed but not yet read back", "err", err)
	}
	return v, nil
}

// readUsers answers CmdReadUsers from the local meta replica, which the
// caller has made fresh.
func (n *Node) readUsers() (resp.Value, error) {
	snap := n.eng.NewSnapshot()
	defer snap.Close()
	u, err := meta.ReadUsers(snap)
	if err != nil {
		return resp.Value{}, err
	}
	b, err := json.Marshal(u)
	if err != nil {
		return resp.Value{}, err
	}
	return resp.Bulk(b), nil
}

var (
	descAuthFailures = prometheus.NewDesc("shoal_auth_failures_total",
		"AUTH and HELLO AUTH refused on this node (wrong password, unknown or disabled user).", nil, nil)
	descACLDenials = prometheus.NewDesc("shoal_acl_denials_total",
		"Commands refused on this node by the user's permissions, by what was refused.", []string{"reason"}, nil)
	descProtected = prometheus.NewDesc("shoal_protected_mode_refusals_total",
		"Connections refused by protected mode: from another host while the default user has no password.", nil, nil)
)

// securityCollector exports the server's counts of refused clients and
// commands.
type securityCollector struct{ n *Node }

func (c securityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAuthFailures
	ch <- descACLDenials
	ch <- descProtected
}

func (c securityCollector) Collect(ch chan<- prometheus.Metric) {
	var st server.SecurityStats
	if srv := c.n.srvRef.Load(); srv != nil {
		st = srv.SecurityStats()
	}
	ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(st.AuthFailures))
	ch <- prometheus.MustNewConstMetric(descACLDenials, prometheus.CounterValue, float64(st.DeniedCommands), "command")
	ch <- prometheus.MustNewConstMetric(descACLDenials, prometheus.CounterValue, float64(st.DeniedKeys), "key")
	ch <- prometheus.MustNewConstMetric(descACLDenials, prometheus.CounterValue, float64(st.DeniedChannels), "channel")
	ch <- prometheus.MustNewConstMetric(descProtected, prometheus.CounterValue, float64(st.ProtectedModeRefusals))
}

// authorizeScrape decides whether an HTTP request may read /metrics (with
// --metrics-auth): the user named by its verified client certificate, or
// by its basic authentication, must be allowed INFO.
func (n *Node) authorizeScrape(r *http.Request) bool {
	srv := n.srvRef.Load()
	if srv == nil {
		return false
	}
	var certUser string
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		certUser = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	user, password, _ := r.BasicAuth()
	return srv.AuthorizeScrape(r.Context(), certUser, user, password, r.RemoteAddr)
}
