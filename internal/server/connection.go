package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoaldb/shoal/internal/resp"
)

// Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET,
// READONLY, READWRITE, ASKING and CLIENT.

func cmdPing(ctx context.Context, c *conn, args [][]byte) resp.Value {
	if len(args) > 2 {
		return wrongArity("ping")
	}
	if len(args) == 2 {
		return resp.Bulk(args[1])
	}
	return resp.Simple("PONG")
}

func cmdEcho(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.Bulk(args[1])
}

// cmdHello is HELLO [protover [AUTH username password] [SETNAME name]].
func cmdHello(ctx context.Context, c *conn, args [][]byte) resp.Value {
	proto := c.st.proto
	if len(args) >= 2 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			return resp.Err("ERR Protocol version is not an integer or out of range")
		}
		if v < 2 || v > 3 {
			return resp.Err("NOPROTO unsupported protocol version")
		}
		proto = int(v)
	}
	var name string
	setName, authed := false, false
	for i := 2; i < len(args); i++ {
		more := len(args) - i - 1
		switch opt := strings.ToLower(string(args[i])); {
		case opt == "auth" && more >= 2:
			if errv, ok := c.authenticate(ctx, args[0], args[i+1], args[i+2]); !ok {
				return errv
			}
			authed = true
			i += 2
		case opt == "setname" && more >= 1:
			if !validName(args[i+1]) {
				return errClientName
			}
			name, setName = string(args[i+1]), true
			i++
		default:
			return resp.Err(sanitize("ERR Syntax error in HELLO option '" + string(args[i]) + "'"))
		}
	}
	if !authed && !c.auth.authed && !defaultOpen(c.srv.cluster.Users()) {
		return errHelloNoAuth
	}
	c.update(func(st *connState) {
		st.proto = proto
		if setName {
			st.name = name
		}
	})
	return helloReply(c.srv.cfg.Version, proto, c.id)
}

// helloReply is HELLO's map describing the server.
func helloReply(version string, proto int, id uint64) resp.Value {
	return resp.Map(
		resp.BulkString("server"), resp.BulkString("redis"),
		resp.BulkString("version"), resp.BulkString(version),
		resp.BulkString("proto"), resp.Int(int64(proto)),
		resp.BulkString("id"), resp.Int(int64(id)),
		resp.BulkString("mode"), resp.BulkString("cluster"),
		resp.BulkString("role"), resp.BulkString("master"),
		resp.BulkString("modules"), resp.Array(),
	)
}

// cmdAuth is AUTH [username] password; the one-argument form names the
// default user, and fails as Redis does when that user needs no password.
func cmdAuth(ctx context.Context, c *conn, args [][]byte) resp.Value {
	switch len(args) {
	case 2:
		if defaultOpen(c.srv.cluster.Users()) {
			return errNoPassword
		}
		v, _ := c.authenticate(ctx, args[0], []byte("default"), args[1])
		return v
	case 3:
		v, _ := c.authenticate(ctx, args[0], args[1], args[2])
		return v
	}
	return errSyntax
}

func cmdSelect(ctx context.Context, c *conn, args [][]byte) resp.Value {
	db, err := strconv.ParseInt(string(args[1]), 10, 64)
	if err != nil {
		return errNotInteger
	}
	if db != 0 {
		return resp.Err("ERR SELECT is not allowed in cluster mode")
	}
	return resp.OK
}

func cmdQuit(ctx context.Context, c *conn, args [][]byte) resp.Value {
	c.closing = true
	return resp.OK
}

// cmdReset returns the connection to the state of a new one.
func cmdReset(ctx context.Context, c *conn, args [][]byte) resp.Value {
	c.update(func(st *connState) {
		st.name = ""
		st.proto = 2
		st.readonly = false
		st.clusterAware = false
		st.noEvict = false
		st.noTouch = false
	})
	c.setDefaultAuth()
	return resp.Simple("RESET")
}

// cmdReadonly is READONLY: this client may read from follower replicas.
func cmdReadonly(ctx context.Context, c *conn, args [][]byte) resp.Value {
	c.update(func(st *connState) { st.readonly, st.clusterAware = true, true })
	return resp.OK
}

func cmdReadwrite(ctx context.Context, c *conn, args [][]byte) resp.Value {
	c.update(func(st *connState) { st.readonly, st.clusterAware = false, true })
	return resp.OK
}

// cmdAsking is accepted for cluster clients; shoal never answers ASK, so
// it changes nothing.
func cmdAsking(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.OK
}

// CLIENT subcommands.

var errClientName = resp.Err("ERR Client names cannot contain spaces, newlines or special characters.")

// validName reports whether s may be a client name or library attribute:
// printable ASCII without spaces, as Redis requires.
func validName(s []byte) bool {
	for _, b := range s {
		if b < '!' || b > '~' {
			return false
		}
	}
	return true
}

func cmdClientID(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.Int(int64(c.id))
}

func cmdClientSetName(ctx context.Context, c *conn, args [][]byte) resp.Value {
	if !validName(args[2]) {
		return errClientName
	}
	name := string(args[2])
	c.update(func(st *connState) { st.name = name })
	return resp.OK
}

func cmdClientGetName(ctx context.Context, c *conn, args [][]byte) resp.Value {
	if c.st.name == "" {
		return resp.Null
	}
	return resp.BulkString(c.st.name)
}

// cmdClientSetInfo is CLIENT SETINFO LIB-NAME name | LIB-VER version.
func cmdClientSetInfo(ctx context.Context, c *conn, args [][]byte) resp.Value {
	attr := strings.ToLower(string(args[2]))
	if attr != "lib-name" && attr != "lib-ver" {
		return resp.Err(sanitize("ERR Unrecognized option '" + string(args[2]) + "'"))
	}
	if !validName(args[3]) {
		return resp.Err(sanitize("ERR " + string(args[2]) + " cannot contain spaces, newlines or special characters."))
	}
	v := string(args[3])
	c.update(func(st *connState) {
		if attr == "lib-name" {
			st.libName = v
		} else {
			st.libVer = v
		}
	})
	return resp.OK
}

// cmdClientFlag serves CLIENT NO-EVICT and NO-TOUCH on|off. shoal never
// evicts and keeps no access times, so both are recorded and have no
// effect.
func cmdClientFlag(ctx context.Context, c *conn, args [][]byte) resp.Value {
	var on bool
	switch strings.ToLower(string(args[2])) {
	case "on":
		on = true
	case "off":
	default:
		return errSyntax
	}
	evict := strings.EqualFold(string(args[1]), "no-evict")
	c.update(func(st *connState) {
		if evict {
			st.noEvict = on
		} else {
			st.noTouch = on
		}
	})
	return resp.OK
}

func cmdClientInfo(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return verbatim(clientLine(c, c.snapshot(), time.Now()) + "\n")
}

// cmdClientList is CLIENT LIST [TYPE type] [ID id...].
func cmdClientList(ctx context.Context, c *conn, args [][]byte) resp.Value {
	var ids []uint64
	normal := true
	for i := 2; i < len(args); i++ {
		switch opt := strings.ToLower(string(args[i])); {
		case opt == "type" && i+1 < len(args):
			switch t := strings.ToLower(string(args[i+1])); t {
			case "normal":
			case "master", "replica", "slave", "pubsub":
				normal = false // shoal has none of these clients
			default:
				return resp.Err(sanitize("ERR Unknown client type '" + string(args[i+1]) + "'"))
			}
			i++
		case opt == "id" && i+1 < len(args):
			for i++; i < len(args); i++ {
				id, err := strconv.ParseUint(string(args[i]), 10, 64)
				if err != nil || id == 0 {
					return resp.Err("ERR Invalid client ID")
				}
				ids = append(ids, id)
			}
		default:
			return errSyntax
		}
	}
	var b strings.Builder
	if normal {
		now := time.Now()
		cs := c.srv.clients()
		slices.SortFunc(cs, func(a, b *conn) int { return cmpUint(a.id, b.id) })
		for _, o := range cs {
			if ids != nil && !slices.Contains(ids, o.id) {
				continue
			}
			b.WriteString(clientLine(o, o.snapshot(), now))
			b.WriteByte('\n')
		}
	}
	return verbatim(b.String())
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// clientLine formats one client as CLIENT LIST and CLIENT INFO do, with
// Redis 7.2's fields. Fields about features shoal does not have (pub/sub,
// MULTI, replication buffers) hold their idle values.
func clientLine(c *conn, st connState, now time.Time) string {
	flags := "N"
	if st.readonly {
		flags = "r"
	}
	cmd := st.lastCmd
	if cmd == "" {
		cmd = "NULL"
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s "+
		"db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%d qbuf-free=%d argv-mem=0 multi-mem=0 "+
		"rbs=%d rbp=0 obl=0 oll=0 omem=0 tot-mem=%d events=r cmd=%s user=%s redir=-1 "+
		"resp=%d lib-name=%s lib-ver=%s",
		c.id, c.addr, c.laddr, c.fd, st.name,
		int64(now.Sub(c.created)/time.Second), int64(now.Sub(st.lastActive)/time.Second), flags,
		st.qbuf, st.qbufFree, st.rbufCap, st.rbufCap+st.obufCap, cmd, st.user,
		st.proto, st.libName, st.libVer)
}

// info is c's CLIENT INFO line.
func (c *conn) info() string { return clientLine(c, c.snapshot(), time.Now()) }

// verbatim is a text reply: a verbatim string in RESP3, a bulk string in
// RESP2, as Redis sends CLIENT LIST, INFO and CLUSTER NODES.
func verbatim(s string) resp.Value { return resp.Verbatim(s) }
