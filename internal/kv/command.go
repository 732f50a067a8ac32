package kv

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/resp"
)

// Flags describe a command to the server and to COMMAND.
type Flags uint32

const (
	// Write commands change state: they go through raft and run with Apply.
	Write Flags = 1 << iota
	// ReadOnly commands never change state and run with Read.
	ReadOnly
	// DenyOOM commands may grow memory use.
	DenyOOM
	// Fast commands run in constant or logarithmic time.
	Fast
	// AllShards commands act on a whole shard rather than on keys: the
	// server sends them to every shard and merges the replies.
	AllShards
	// Internal commands (SHOAL.*) are issued by shoal itself and are hidden
	// from clients and from COMMAND.
	Internal
)

// flagNames are the COMMAND names of the flags Redis knows.
var flagNames = []struct {
	f    Flags
	name string
}{
	{Write, "write"},
	{ReadOnly, "readonly"},
	{DenyOOM, "denyoom"},
	{Fast, "fast"},
}

// Names returns the flags as COMMAND lists them ("write", "readonly",
// "denyoom", "fast"). AllShards and Internal have no Redis name and are
// left out.
func (f Flags) Names() []string {
	var names []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			names = append(names, n.name)
		}
	}
	return names
}

// Spec describes one command.
type Spec struct {
	Name  string // lower case
	Arity int    // Redis convention: >0 exact count including the name, <0 minimum
	Flags Flags
	// FirstKey, LastKey and Step locate the key arguments as COMMAND
	// reports them: LastKey -1 is the last argument, -2 the one before;
	// all zero means the command has no keys.
	FirstKey, LastKey, Step int

	run handler
}

// handler executes a command whose arity has been checked.
type handler func(d db, args [][]byte) (resp.Value, error)

// Keys returns the key arguments of args (args[0] is the command name). It
// is safe on any args.
func (s *Spec) Keys(args [][]byte) [][]byte {
	var ks [][]byte
	for _, i := range KeyIndexes(s.FirstKey, s.LastKey, s.Step, len(args)) {
		ks = append(ks, args[i])
	}
	return ks
}

// KeyIndexes returns the indexes of the key arguments among n arguments
// of a command whose keys COMMAND locates at first, last and step.
func KeyIndexes(first, last, step, n int) []int {
	if first <= 0 || first >= n {
		return nil
	}
	if last < 0 {
		last += n
	}
	last = min(last, n-1)
	step = max(step, 1)
	var idx []int
	for i := first; i <= last; i += step {
		idx = append(idx, i)
	}
	return idx
}

func (s *Spec) arityOK(n int) bool {
	if s.Arity >= 0 {
		return n == s.Arity
	}
	return n >= -s.Arity
}

// Flag combinations of the table below.
const (
	fR   = ReadOnly
	fRF  = ReadOnly | Fast
	fW   = Write
	fWF  = Write | Fast
	fWD  = Write | DenyOOM
	fWDF = Write | DenyOOM | Fast
)

// specs is the command table.
var specs = []*Spec{
	// strings
	{Name: "get", Arity: 2, Flags: fRF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdGet},
	{Name: "set", Arity: -3, Flags: fWD, FirstKey: 1, LastKey: 1, Step: 1, run: cmdSet},
	{Name: "setnx", Arity: 3, Flags: fWDF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdSetNX},
	{Name: "setex", Arity: 4, Flags: fWD, FirstKey: 1, LastKey: 1, Step: 1, run: cmdSetEX},
	{Name: "psetex", Arity: 4, Flags: fWD, FirstKey: 1, LastKey: 1, Step: 1, run: cmdPSetEX},
	{Name: "getset", Arity: 3, Flags: fWDF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdGetSet},
	{Name: "getdel", Arity: 2, Flags: fWF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdGetDel},
	{Name: "getex", Arity: -2, Flags: fWF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdGetEx},
	{Name: "mget", Arity: -2, Flags: fRF, FirstKey: 1, LastKey: -1, Step: 1, run: cmdMGet},
	{Name: "mset", Arity: -3, Flags: fWD, FirstKey: 1, LastKey: -1, Step: 2, run: cmdMSet},
	{Name: "msetnx", Arity: -3, Flags: fWD, FirstKey: 1, LastKey: -1, Step: 2, run: cmdMSetNX},
	{Name: "append", Arity: 3, Flags: fWDF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdAppend},
	{Name: "strlen", Arity: 2, Flags: fRF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdStrlen},
	{Name: "incr", Arity: 2, Flags: fWDF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdIncr},
	{Name: "decr", Arity: 2, Flags: fWDF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdDecr},
	{Name: "incrby", Arity: 3, Flags: fWDF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdIncrBy},
	{Name: "decrby", Arity: 3, Flags: fWDF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdDecrBy},
	{Name: "incrbyfloat", Arity: 3, Flags: fWDF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdIncrByFloat},
	{Name: "getrange", Arity: 4, Flags: fR, FirstKey: 1, LastKey: 1, Step: 1, run: cmdGetRange},
	{Name: "substr", Arity: 4, Flags: fR, FirstKey: 1, LastKey: 1, Step: 1, run: cmdGetRange},
	{Name: "setrange", Arity: 4, Flags: fWD, FirstKey: 1, LastKey: 1, Step: 1, run: cmdSetRange},

	// keys and TTL
	{Name: "del", Arity: -2, Flags: fW, FirstKey: 1, LastKey: -1, Step: 1, run: cmdDel},
	{Name: "unlink", Arity: -2, Flags: fWF, FirstKey: 1, LastKey: -1, Step: 1, run: cmdDel},
	{Name: "exists", Arity: -2, Flags: fRF, FirstKey: 1, LastKey: -1, Step: 1, run: cmdExists},
	{Name: "touch", Arity: -2, Flags: fRF, FirstKey: 1, LastKey: -1, Step: 1, run: cmdExists},
	{Name: "type", Arity: 2, Flags: fRF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdType},
	{Name: "expire", Arity: -3, Flags: fWF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdExpire},
	{Name: "pexpire", Arity: -3, Flags: fWF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdPExpire},
	{Name: "expireat", Arity: -3, Flags: fWF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdExpireAt},
	{Name: "pexpireat", Arity: -3, Flags: fWF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdPExpireAt},
	{Name: "ttl", Arity: 2, Flags: fRF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdTTL},
	{Name: "pttl", Arity: 2, Flags: fRF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdPTTL},
	{Name: "expiretime", Arity: 2, Flags: fRF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdExpireTime},
	{Name: "pexpiretime", Arity: 2, Flags: fRF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdPExpireTime},
	{Name: "persist", Arity: 2, Flags: fWF, FirstKey: 1, LastKey: 1, Step: 1, run: cmdPersist},
	{Name: "rename", Arity: 3, Flags: fW, FirstKey: 1, LastKey: 2, Step: 1, run: cmdRename},
	{Name: "renamenx", Arity: 3, Flags: fWF, FirstKey: 1, LastKey: 2, Step: 1, run: cmdRenameNX},
	{Name: "object", Arity: -2, Flags: fR, FirstKey: 2, LastKey: 2, Step: 1, run: cmdObject},
	{Name: "memory", Arity: -2, Flags: fR, FirstKey: 2, LastKey: 2, Step: 1, run: cmdMemory},

	// per shard
	{Name: "keys", Arity: 2, Flags: fR | AllShards, run: cmdKeys},
	{Name: "dbsize", Arity: 1, Flags: fRF | AllShards, run: cmdDBSize},
	{Name: "randomkey", Arity: 1, Flags: fR | AllShards, run: cmdRandomKey},
	{Name: "flushall", Arity: -1, Flags: fW | AllShards, run: cmdFlush},
	{Name: "flushdb", Arity: -1, Flags: fW | AllShards, run: cmdFlush},
	{Name: "scan", Arity: -2, Flags: fR | AllShards, run: cmdScan},

	// internal
	{Name: "shoal.sweep", Arity: 2, Flags: fW | AllShards | Internal, run: cmdSweep},
	{Name: "shoal.expired", Arity: 2, Flags: fR | AllShards | Internal, run: cmdExpired},
	{Name: "shoal.countkeysinslot", Arity: 2, Flags: fR | Internal, run: cmdCountKeysInSlot},
	{Name: "shoal.getkeysinslot", Arity: 3, Flags: fR | Internal, run: cmdGetKeysInSlot},
}

var (
	table      = make(map[string]*Spec, len(specs))
	maxNameLen int
)

func init() {
	// Added here, not in the literal: cmdBatch runs commands through the
	// table, which would make the table's initialization depend on itself.
	specs = append(specs, &Spec{Name: "shoal.batch", Arity: -3, Flags: fW | Internal, run: cmdBatch})
	slices.SortFunc(specs, func(a, b *Spec) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range specs {
		table[s.Name] = s
		maxNameLen = max(maxNameLen, len(s.Name))
	}
}

// Lookup returns the spec of the command called name (in any case), or nil
// if kv does not implement it.
func Lookup(name []byte) *Spec {
	var buf [32]byte
	if len(name) > maxNameLen || len(name) > len(buf) {
		return nil
	}
	lower := buf[:len(name)]
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return table[string(lower)]
}

// Specs returns every kv command, sorted by name.
func Specs() []*Spec { return slices.Clone(specs) }

// Apply executes a command as a write on w: normally a Write command from a
// raft log entry, but any command is accepted (a ReadOnly one then reads
// through w). Command errors (syntax, wrong type, ...) are error replies;
// err is non-nil only when w fails, and then the batch must be discarded.
func Apply(w Writer, env Env, args [][]byte) (resp.Value, error) {
	return execute(db{r: w, w: w, env: env}, args)
}

// Read executes a ReadOnly command on r. It never writes; a Write command
// gets an error reply.
func Read(r Reader, env Env, args [][]byte) (resp.Value, error) {
	if len(args) > 0 {
		if s := Lookup(args[0]); s != nil && s.Flags&Write != 0 {
			return resp.Err("ERR '" + s.Name + "' is a write command and cannot run as a read"), nil
		}
	}
	return execute(db{r: r, env: env}, args)
}

func execute(d db, args [][]byte) (resp.Value, error) {
	if len(args) == 0 {
		return resp.Err("ERR empty command"), nil
	}
	s := Lookup(args[0])
	if s == nil {
		return unknownCommand(args), nil
	}
	if !s.arityOK(len(args)) {
		return resp.Err(string(arityError(s.Name))), nil
	}
	if d.env.OwnSlots {
		for _, i := range KeyIndexes(s.FirstKey, s.LastKey, s.Step, len(args)) {
			if slot := keys.Slot(args[i]); slot < d.env.FirstSlot || slot > d.env.LastSlot {
				return notOwned(slot), nil
			}
		}
	}
	v, err := s.run(d, args)
	if ce, ok := err.(cmdError); ok { // never wrapped
		return resp.Err(sanitize(string(ce))), nil
	}
	return v, err
}

// unknownCommand builds Redis's reply to a command it does not know,
// quoting the name and the first arguments (at most 128 bytes of them).
func unknownCommand(args [][]byte) resp.Value {
	var b bytes.Buffer
	b.WriteString("ERR unknown command '")
	b.Write(args[0][:min(len(args[0]), 128)])
	b.WriteString("', with args beginning with: ")
	n := 0
	for _, a := range args[1:] {
		if n >= 128 {
			break
		}
		a = a[:min(len(a), 128-n)]
		b.WriteByte('\'')
		b.Write(a)
		b.WriteString("' ")
		n += len(a) + 3
	}
	return resp.Err(sanitize(b.String()))
}

// sanitize replaces the CR and LF an error line cannot hold with spaces.
// It works on bytes, so arguments that are not UTF-8 pass unchanged.
func sanitize(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

// cmdError is a command error: the client gets it as an error reply (the
// string is the whole message, prefix included), while Apply and Read
// return nil errors for it. Handlers return cmdErrors like any other error
// and execute translates them.
type cmdError string

func (e cmdError) Error() string { return string(e) }

// Errors shared by several commands.
const (
	errSyntax    cmdError = "ERR syntax error"
	errNotInt    cmdError = "ERR value is not an integer or out of range"
	errNotFloat  cmdError = "ERR value is not a valid float"
	errWrongType cmdError = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errTooBig    cmdError = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	errNoKey     cmdError = "ERR no such key"
)

var emptyBulk = resp.Bulk([]byte{})

func arityError(name string) cmdError {
	return cmdError("ERR wrong number of arguments for '" + name + "' command")
}

func invalidExpire(cmd string) cmdError {
	return cmdError("ERR invalid expire time in '" + cmd + "' command")
}

// equalFold reports whether b equals the lower-case ASCII word s in any
// case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// NotOwnedPrefix begins the error reply to a command with a key whose slot
// the shard it reached does not serve (Env.OwnSlots).
const NotOwnedPrefix = "TRYAGAIN slot "

func notOwned(slot int) resp.Value {
	return resp.Err(fmt.Sprintf("%s%d is not served by the shard this command reached; retry", NotOwnedPrefix, slot))
}
