package acl

import (
	"strings"

	"github.com/shoaldb/shoal/internal/kv"
)

// Command is what the ACL needs to know of one command or subcommand.
type Command struct {
	Name       string // lower case; "parent|sub" for a subcommand
	Categories Category
	// NoAuth commands (AUTH, HELLO, QUIT...) run whatever the user's
	// permissions.
	NoAuth bool
	Subs   []*Command // of a container (CONFIG, CLIENT...)

	id     int
	parent *Command
}

// Table is a node's command table as the ACL sees it.
type Table struct {
	byName map[string]*Command // top-level and "parent|sub"
	all    []*Command          // by id
}

// NewTable indexes cmds and their subcommands.
func NewTable(cmds []*Command) *Table {
	t := &Table{byName: map[string]*Command{}}
	var add func(c, parent *Command)
	add = func(c, parent *Command) {
		c.id, c.parent = len(t.all), parent
		t.all = append(t.all, c)
		t.byName[c.Name] = c
		for _, s := range c.Subs {
			add(s, c)
		}
	}
	for _, c := range cmds {
		add(c, nil)
	}
	return t
}

// Lookup returns the command or subcommand ("config|get") named name, in
// any case.
func (t *Table) Lookup(name string) *Command { return t.byName[strings.ToLower(name)] }

// InCategory returns the full names of the commands in category c, in
// table order.
func (t *Table) InCategory(c Category) []string {
	var out []string
	for _, cmd := range t.all {
		if cmd.Categories&c != 0 {
			out = append(out, cmd.Name)
		}
	}
	return out
}

// Compiled is a user's permissions resolved against a table.
type Compiled struct {
	User *User
	sels []compiledSelector
}

type compiledSelector struct {
	s       *Selector
	allowed []bool           // by command id
	first   map[int][]string // command id -> allowed first arguments
	all     bool             // every command allowed: skip the lookup
}

// Compile resolves u's command rules against t. Rules that name commands t
// does not have (a node of another version) allow or deny nothing.
func (t *Table) Compile(u *User) *Compiled {
	c := &Compiled{User: u}
	for _, s := range u.Selectors {
		c.sels = append(c.sels, t.compileSelector(s))
	}
	return c
}

func (t *Table) compileSelector(s *Selector) compiledSelector {
	cs := compiledSelector{s: s, allowed: make([]bool, len(t.all)), all: s.AllCommands}
	for i := range cs.allowed {
		cs.allowed[i] = s.AllCommands
	}
	for _, r := range s.Commands {
		allow := r[0] == '+'
		name := r[1:]
		if !allow {
			cs.all = false
		}
		if cat, ok := strings.CutPrefix(name, "@"); ok {
			c, _ := CategoryByName(cat)
			for _, cmd := range t.all {
				if cmd.Categories&c != 0 {
					cs.set(cmd, allow)
				}
			}
			continue
		}
		if cmd := t.byName[name]; cmd != nil {
			cs.set(cmd, allow)
			continue
		}
		// "+select|0": a first argument of a command without subcommands.
		if i := strings.LastIndexByte(name, '|'); i > 0 && allow {
			if cmd := t.byName[name[:i]]; cmd != nil && cmd.Subs == nil && cmd.parent == nil {
				if cs.first == nil {
					cs.first = map[int][]string{}
				}
				cs.first[cmd.id] = append(cs.first[cmd.id], name[i+1:])
			}
		}
	}
	return cs
}

// set allows or denies cmd and, for a container, its subcommands, and
// forgets cmd's allowed first arguments, as Redis's ACLChangeSelectorPerm.
func (cs *compiledSelector) set(cmd *Command, allow bool) {
	cs.allowed[cmd.id] = allow
	delete(cs.first, cmd.id)
	for _, s := range cmd.Subs {
		cs.allowed[s.id] = allow
	}
}

// Unrestricted reports whether the user may run every command on every
// key and channel: Check would allow anything.
func (c *Compiled) Unrestricted() bool {
	for _, cs := range c.sels {
		if cs.all && cs.s.AllKeys && cs.s.AllChannels {
			return true
		}
	}
	return false
}

// Denial says why a command was refused.
type Denial int

const (
	Allowed Denial = iota
	DeniedCommand
	DeniedKey
	DeniedChannel
	DeniedAuth // a failed AUTH, for the ACL log
)

// String is the reason ACL LOG shows.
func (d Denial) String() string {
	switch d {
	case DeniedCommand:
		return "command"
	case DeniedKey:
		return "key"
	case DeniedChannel:
		return "channel"
	case DeniedAuth:
		return "auth"
	}
	return "allowed"
}

// KeyRef is one key argument of a command: its index in args and what
// the command does with it.
type KeyRef struct {
	Index  int
	Access KeyAccess
}

// ChannelRef is one channel argument; Pattern for PSUBSCRIBE's patterns,
// which match ACL channel patterns literally.
type ChannelRef struct {
	Index   int
	Pattern bool
}

// Check reports whether u may run cmd with args (args[0] the command's
// name, args[1] the subcommand's for a subcommand), whose keys and
// channels are at keys and channels. When it may not, it returns why and
// the index in args of the key or channel refused (0 for a command). Of
// several selectors' refusals it reports, as Redis does, a key or channel
// over a command, and the last argument over an earlier one.
func (c *Compiled) Check(cmd *Command, args [][]byte, keys []KeyRef, channels []ChannelRef) (Denial, int) {
	worst, at := DeniedCommand, 0
	for i := range c.sels {
		d, idx := c.sels[i].check(cmd, args, keys, channels)
		if d == Allowed {
			return Allowed, 0
		}
		if d > worst || (d == worst && idx > at) {
			worst, at = d, idx
		}
	}
	return worst, at
}

func (cs *compiledSelector) check(cmd *Command, args [][]byte, keys []KeyRef, channels []ChannelRef) (Denial, int) {
	if !cs.all && !cmd.NoAuth && !cs.allowed[cmd.id] && !cs.firstArgAllowed(cmd, args) {
		return DeniedCommand, 0
	}
	if !cs.s.AllKeys {
		for _, k := range keys {
			if !cs.keyAllowed(args[k.Index], k.Access) {
				return DeniedKey, k.Index
			}
		}
	}
	if !cs.s.AllChannels {
		for _, ch := range channels {
			if !channelAllowed(cs.s.Channels, args[ch.Index], ch.Pattern) {
				return DeniedChannel, ch.Index
			}
		}
	}
	return Allowed, 0
}

func (cs *compiledSelector) firstArgAllowed(cmd *Command, args [][]byte) bool {
	first := cs.first[cmd.id]
	if len(first) == 0 || len(args) < 2 {
		return false
	}
	for _, f := range first {
		if strings.EqualFold(f, string(args[1])) {
			return true
		}
	}
	return false
}

func (cs *compiledSelector) keyAllowed(key []byte, access KeyAccess) bool {
	for _, p := range cs.s.Keys {
		if p.Access&access == access && kv.Match([]byte(p.Pattern), key) {
			return true
		}
	}
	return false
}

// channelAllowed: a channel is matched against the ACL's patterns; a
// subscription pattern only equals one of them literally.
func channelAllowed(patterns []string, ch []byte, isPattern bool) bool {
	for _, p := range patterns {
		if (isPattern && p == string(ch)) || (!isPattern && kv.Match([]byte(p), ch)) {
			return true
		}
	}
	return false
}
