package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoaldb/shoal/internal/acl"
	"github.com/shoaldb/shoal/internal/resp"
)

// Users is the cluster's users as a node knows them. A value the Cluster
// returns is never modified: a change comes as a new value.
type Users interface {
	User(name string) (*acl.User, bool)
	UserNames() []string
}

// Replies of authentication and access control, worded as Redis's.
var (
	errNoAuth     = resp.Err("NOAUTH Authentication required.")
	errWrongPass  = resp.Err("WRONGPASS invalid username-password pair or user is disabled.")
	errNoPassword = resp.Err("ERR AUTH <password> called without any password configured for the default user. " +
		"Are you sure your configuration is correct?")
	errHelloNoAuth = resp.Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the " +
		"HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP " +
		"protocol version at the same time")
	errLoadingUsers = resp.Err("LOADING shoal is loading the cluster's users")
	errUserDeleted  = resp.Err("ERR the user of this connection was deleted")
	errDenied       = "DENIED shoal is running in protected mode: the default user has no password, so only " +
		"clients on the loopback interface, or with a client certificate of a user, may connect. " +
		"Set a password (ACL SETUSER default on >password, or CONFIG SET requirepass) from the loopback " +
		"interface, or turn protected mode off with --protected-mode=false."
)

// userCache holds the users of one Users value compiled against the
// command table, as connections ask for them.
type userCache struct {
	src Users // nil: the node does not know its users yet
	mu  sync.Mutex
	m   map[string]*acl.Compiled
}

// compiled returns the user named name, or nil if there is none.
func (uc *userCache) compiled(t *acl.Table, name string) *acl.Compiled {
	uc.mu.Lock()
	defer uc.mu.Unlock()
	if c, ok := uc.m[name]; ok {
		return c
	}
	u, ok := uc.src.User(name)
	if !ok {
		return nil
	}
	c := t.Compile(u)
	uc.m[name] = c
	return c
}

// users returns the cache of the cluster's current users.
func (s *Server) users() *userCache {
	src := s.cluster.Users()
	for {
		uc := s.userCache.Load()
		if uc != nil && uc.src == src {
			return uc
		}
		nu := &userCache{src: src, m: map[string]*acl.Compiled{}}
		if s.userCache.CompareAndSwap(uc, nu) {
			return nu
		}
	}
}

// defaultOpen reports whether the default user needs no password: on, and
// nopass. Connections then start authenticated as it.
func defaultOpen(src Users) bool {
	if src == nil {
		return false
	}
	u, ok := src.User("default")
	return ok && u.Enabled && u.NoPass
}

// aclStats count authentication failures and refusals, for INFO and
// /metrics.
type aclStats struct {
	authFailures  atomic.Int64 // AUTH and HELLO AUTH refused
	deniedCommand atomic.Int64
	deniedKey     atomic.Int64
	deniedChannel atomic.Int64
	protectedMode atomic.Int64 // connections refused by protected mode
	userRefreshes atomic.Int64 // reads of the users from the meta leader after a failed AUTH
}

// SecurityStats are the counters of refused clients and commands.
type SecurityStats struct {
	AuthFailures, DeniedCommands, DeniedKeys, DeniedChannels, ProtectedModeRefusals int64
}

// SecurityStats returns the counts of refusals since the server started
// (or CONFIG RESETSTAT).
func (s *Server) SecurityStats() SecurityStats {
	a := &s.acls
	return SecurityStats{a.authFailures.Load(), a.deniedCommand.Load(), a.deniedKey.Load(),
		a.deniedChannel.Load(), a.protectedMode.Load()}
}

// authUser is who a connection is: the user it authenticated as (or the
// default user) and that user's compiled permissions.
type authUser struct {
	name   string
	authed bool // AUTH, HELLO AUTH or a client certificate succeeded, or the default user was open
	// compiled is name's permissions from cache; both are reset when the
	// users change.
	compiled *acl.Compiled
	cache    *userCache
}

// setDefaultAuth makes c the default user, authenticated only if the
// default user needs no password (Redis's clientSetDefaultAuth).
func (c *conn) setDefaultAuth() {
	c.auth = authUser{name: "default", authed: defaultOpen(c.srv.cluster.Users())}
	c.update(func(st *connState) { st.user = "default" })
}

func (c *conn) setUser(name string) {
	c.auth = authUser{name: name, authed: true}
	c.update(func(st *connState) { st.user = name })
}

// permit decides whether c may run cmd (the subcommand, for a container)
// with args; when it may not, it returns the reply.
func (c *conn) permit(ctx context.Context, cmd *command, args [][]byte) (resp.Value, bool) {
	noAuth := cmd.acl.NoAuth
	uc := c.srv.users()
	if uc.src == nil && !noAuth {
		uc = c.srv.waitUsers(ctx)
	}
	if uc.src == nil {
		if noAuth {
			return resp.Value{}, true
		}
		return errLoadingUsers, false
	}
	if !c.auth.authed && !noAuth && !defaultOpen(uc.src) {
		return errNoAuth, false
	}
	if c.auth.cache != uc {
		c.auth.cache, c.auth.compiled = uc, uc.compiled(c.srv.aclTable, c.auth.name)
	}
	u := c.auth.compiled
	if u == nil {
		c.closing = true // Redis closes the clients of a deleted user
		return errUserDeleted, false
	}
	if u.Unrestricted() {
		return resp.Value{}, true
	}
	d, at := u.Check(cmd.acl, args, cmd.keyRefs(args), nil)
	if d == acl.Allowed {
		return resp.Value{}, true
	}
	c.srv.logDenial(c, d, cmd, args, at)
	switch d {
	case acl.DeniedKey:
		return resp.Err("NOPERM this user has no permissions to access one of the keys used as arguments"), false
	case acl.DeniedChannel:
		return resp.Err("NOPERM this user has no permissions to access one of the channels used as arguments"), false
	}
	return resp.Err(sanitize("NOPERM this user has no permissions to run the '" + cmd.name + "' command")), false
}

// unrestricted reports whether c may run any command as things stand,
// without a look at the command: its user may run everything, and
// authentication is not required.
func (c *conn) unrestricted() bool {
	uc := c.srv.users()
	if uc.src == nil || c.auth.cache != uc || c.auth.compiled == nil {
		return false
	}
	return (c.auth.authed || defaultOpen(uc.src)) && c.auth.compiled.Unrestricted()
}

// usersWait is how long a command waits for a starting node to learn its
// users before it is answered -LOADING: about as long as it would wait
// for a shard leader.
const usersWait = 5 * time.Second

// waitUsers waits until the node knows its users, or usersWait.
func (s *Server) waitUsers(ctx context.Context) *userCache {
	ctx, cancel := context.WithTimeout(ctx, usersWait)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if uc := s.users(); uc.src != nil {
			return uc
		}
		select {
		case <-ctx.Done():
			return s.users()
		case <-t.C:
		}
	}
}

// logDenial records a refused command in the ACL log and the counters.
func (s *Server) logDenial(c *conn, d acl.Denial, cmd *command, args [][]byte, at int) {
	e := acl.LogEntry{Reason: d, Context: "toplevel", Username: c.auth.name, Object: cmd.name}
	switch d {
	case acl.DeniedKey:
		s.acls.deniedKey.Add(1)
		e.Object = string(truncate(args[at], 512))
	case acl.DeniedChannel:
		s.acls.deniedChannel.Add(1)
		e.Object = string(truncate(args[at], 512))
	default:
		s.acls.deniedCommand.Add(1)
	}
	e.ClientInfo = c.info()
	s.aclLog.Add(e, time.Now().UnixMilli())
}

// authenticate logs c in as user with password. A failure is checked
// again against the meta leader's users (a user created a moment ago on
// another node may not have reached this one).
func (c *conn) authenticate(ctx context.Context, cmdName, user, password []byte) (resp.Value, bool) {
	users := c.srv.waitUsers(ctx).src
	if users == nil {
		return errLoadingUsers, false
	}
	check := func(users Users) bool {
		u, found := users.User(string(user))
		return found && u.CheckPassword(password)
	}
	good := check(users)
	if !good && c.srv.refreshUsers(ctx, time.Now()) {
		good = check(c.srv.cluster.Users())
	}
	if good {
		c.setUser(string(user))
		return resp.OK, true
	}
	c.srv.acls.authFailures.Add(1)
	c.srv.aclLog.Add(acl.LogEntry{Reason: acl.DeniedAuth, Context: "toplevel", Object: string(truncate(cmdName, 64)),
		Username: string(truncate(user, 512)), ClientInfo: c.info()}, time.Now().UnixMilli())
	return errWrongPass, false
}

// refreshUsers reads the users from the meta leader, for a check that
// failed at failedAt. Refreshes are serialized, and one begun after
// failedAt serves every check that failed before it began: concurrent
// failures share a read, and each failed check costs the meta leader at
// most one.
func (s *Server) refreshUsers(ctx context.Context, failedAt time.Time) bool {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	if s.refresh.began.After(failedAt) {
		return s.refresh.ok
	}
	s.refresh.began = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s.refresh.ok = s.cluster.RefreshUsers(ctx) == nil
	return s.refresh.ok
}

// admit runs when a connection opens: a client certificate naming a user
// logs the client in as that user; protected mode refuses a client from
// another host while the default user has no password. It reports
// whether the connection may go on; if not, c.out holds the reason.
func (c *conn) admit(ctx context.Context) bool {
	c.setDefaultAuth()
	if tc, ok := c.nc.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return false
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			name := certs[0].Subject.CommonName
			known := func() bool {
				users := c.srv.waitUsers(ctx).src
				if users == nil {
					return false
				}
				u, ok := users.User(name)
				return ok && u.Enabled
			}
			if known() || c.srv.refreshUsers(ctx, time.Now()) && known() {
				c.setUser(name)
				return true
			}
		}
	}
	if !c.srv.protected.Load() || isLoopback(c.nc.RemoteAddr()) || c.srv.cluster.Users() == nil ||
		!defaultOpen(c.srv.cluster.Users()) {
		return true
	}
	c.srv.acls.protectedMode.Add(1)
	c.out = resp.AppendError(c.out, errDenied)
	return false
}

func isLoopback(a net.Addr) bool {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() || strings.HasPrefix(a.Network(), "unix") || a.Network() == "pipe"
}

// prepareSetUser checks ACL SETUSER's modifiers and returns them as the
// meta shard takes them, or the error reply.
func (s *Server) prepareSetUser(name []byte, ops [][]byte) ([]string, resp.Value, bool) {
	if !acl.ValidName(name) {
		return nil, resp.Err("ERR Usernames can't contain spaces or null characters"), false
	}
	prepared, given, err := acl.Prepare(s.aclTable, ops, rand.Reader)
	if err != nil {
		return nil, resp.Err(sanitize("ERR " + err.Error())), false
	}
	// Try them on the user as this node knows it, to answer at once, with
	// the modifier as given, what the meta shard would refuse.
	users := s.cluster.Users()
	if users == nil {
		return nil, errLoadingUsers, false
	}
	u, ok := users.User(string(name))
	if !ok {
		u = acl.NewUser(string(name))
	}
	if err := u.Clone().Apply(prepared); err != nil {
		if re, ok := err.(*acl.RuleError); ok {
			re.Op = given[re.Index] // the modifier as the client wrote it
		}
		return nil, resp.Err(sanitize("ERR " + err.Error())), false
	}
	return prepared, resp.Value{}, true
}

// setRequirePass is CONFIG SET requirepass: the default user's only
// password becomes password, or, if it is empty, the default user needs
// none (Redis's ACLUpdateDefaultUserPassword).
func (s *Server) setRequirePass(ctx context.Context, password []byte) resp.Value {
	ops := [][]byte{[]byte("resetpass"), []byte("nopass")}
	if len(password) > 0 {
		ops[1] = append([]byte(">"), password...)
	}
	prepared, errv, ok := s.prepareSetUser([]byte("default"), ops)
	if !ok {
		return errv
	}
	return s.changeUsers(func() (resp.Value, error) { return s.cluster.SetUser(ctx, "default", prepared) })
}

// AuthorizeScrape decides whether an HTTP client may read this node's
// metrics: the user its client certificate names (certUser), else the
// user and password of its HTTP basic authentication, else the default
// user without a password, must exist, be on and may run INFO. A
// refusal of a password counts and is logged as a failed AUTH.
func (s *Server) AuthorizeScrape(ctx context.Context, certUser, user, password, remote string) bool {
	uc := s.waitUsers(ctx)
	if uc.src == nil {
		return false
	}
	name := certUser
	switch {
	case certUser != "":
		if u, ok := uc.src.User(certUser); !ok || !u.Enabled {
			return false
		}
	case user != "" || password != "":
		if user == "" {
			user = "default"
		}
		check := func(users Users) bool {
			u, found := users.User(user)
			return found && u.CheckPassword([]byte(password))
		}
		if !check(uc.src) && !(s.refreshUsers(ctx, time.Now()) && check(s.cluster.Users())) {
			s.acls.authFailures.Add(1)
			s.aclLog.Add(acl.LogEntry{Reason: acl.DeniedAuth, Context: "toplevel", Object: "metrics",
				Username: string(truncate([]byte(user), 512)), ClientInfo: "addr=" + remote + " http=/metrics"},
				time.Now().UnixMilli())
			return false
		}
		uc, name = s.users(), user
	default:
		if !defaultOpen(uc.src) {
			return false
		}
		name = "default"
	}
	u := uc.compiled(s.aclTable, name)
	if u == nil {
		return false
	}
	info := s.cmds["info"]
	d, _ := u.Check(info.acl, nil, nil, nil)
	return d == acl.Allowed
}
