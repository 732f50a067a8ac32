// Package acl is Redis 7's access control lists as shoal keeps them: users
// with passwords and selectors (command rules, key patterns, channel
// patterns), the rules that change them (ACL SETUSER's language), and the
// check of a command against a user. It is pure: no I/O, no clock, no
// randomness except a reader the caller passes in.
//
// A user is stored as its rules, not as a bitmap of commands: each
// selector keeps whether it started from every command (+@all) or none
// (-@all) and the ordered command rules applied since, as Redis 7.2 keeps
// them. Which commands the rules allow is computed on each node against its
// own command table (Compile), so a stored user means the same thing to
// nodes of different versions. Users live in the meta shard; SetUser is
// applied there, deterministically.
package acl

import (
	"slices"
	"strings"
)

// Category is a set of Redis's command categories, one bit each.
type Category uint64

// Redis's command categories, in the order ACL CAT lists them.
const (
	CatKeyspace Category = 1 << iota
	CatRead
	CatWrite
	CatSet
	CatSortedSet
	CatList
	CatHash
	CatString
	CatBitmap
	CatHyperLogLog
	CatGeo
	CatStream
	CatPubSub
	CatAdmin
	CatFast
	CatSlow
	CatBlocking
	CatDangerous
	CatConnection
	CatTransaction
	CatScripting
)

// categoryNames are the categories' names, by bit position.
var categoryNames = []string{
	"keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
	"bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
	"blocking", "dangerous", "connection", "transaction", "scripting",
}

// CategoryNames returns every category's name, in ACL CAT's order.
func CategoryNames() []string { return slices.Clone(categoryNames) }

// CategoryByName returns the category named name (without its '@'), in
// any case.
func CategoryByName(name string) (Category, bool) {
	for i, n := range categoryNames {
		if strings.EqualFold(n, name) {
			return 1 << i, true
		}
	}
	return 0, false
}

// Names returns the names of the categories in c, each with its '@'.
func (c Category) Names() []string {
	var out []string
	for i, n := range categoryNames {
		if c&(1<<i) != 0 {
			out = append(out, "@"+n)
		}
	}
	return out
}

// KeyAccess is what a command does with one of its keys, as Redis's key
// specs say: Read (ACCESS: it returns or uses the value) and Write
// (INSERT, UPDATE or DELETE). A key with neither (EXISTS, TTL) may be
// named under any key pattern.
type KeyAccess uint8

const (
	Read KeyAccess = 1 << iota
	Write
)

// User is one user as the meta shard stores it.
type User struct {
	Name    string `json:"name"`
	Enabled bool   `json:"on,omitempty"`
	NoPass  bool   `json:"nopass,omitempty"`
	// SanitizePayload records "sanitize-payload" (1) or
	// "skip-sanitize-payload" (2); 0 is neither.
	SanitizePayload int `json:"sanitize,omitempty"`
	// Passwords are salted hashes (see HashPassword), in the order added.
	Passwords []string `json:"passwords,omitempty"`
	// Selectors[0] is the root selector: the rules outside parentheses.
	Selectors []*Selector `json:"selectors"`
}

// Selector is one set of permissions; a command is allowed when any of a
// user's selectors allows it.
type Selector struct {
	// AllCommands: the rules start from every command, present and future
	// (+@all); otherwise from none (-@all).
	AllCommands bool `json:"all_commands,omitempty"`
	// Commands are the command rules applied since, lower case, in order,
	// each command or category at most once: "+get", "-@dangerous",
	// "+config|get", "+select|0".
	Commands    []string     `json:"commands,omitempty"`
	AllKeys     bool         `json:"all_keys,omitempty"`
	Keys        []KeyPattern `json:"keys,omitempty"`
	AllChannels bool         `json:"all_channels,omitempty"`
	Channels    []string     `json:"channels,omitempty"`
}

// KeyPattern is a glob over key names and the access it grants.
type KeyPattern struct {
	Pattern string    `json:"p"`
	Access  KeyAccess `json:"a"`
}

// NewUser returns a user as ACL SETUSER creates it: off, no password,
// no commands, keys or channels.
func NewUser(name string) *User {
	return &User{Name: name, Selectors: []*Selector{{}}}
}

// DefaultUser returns the default user of a cluster whose default user was
// never changed: on, no password, every command, key and channel.
func DefaultUser() *User {
	return &User{Name: "default", Enabled: true, NoPass: true,
		Selectors: []*Selector{{AllCommands: true, AllKeys: true, AllChannels: true}}}
}

// Clone returns a deep copy of u.
func (u *User) Clone() *User {
	c := *u
	c.Passwords = slices.Clone(u.Passwords)
	c.Selectors = make([]*Selector, len(u.Selectors))
	for i, s := range u.Selectors {
		c.Selectors[i] = s.clone()
	}
	return &c
}

func (s *Selector) clone() *Selector {
	c := *s
	c.Commands = slices.Clone(s.Commands)
	c.Keys = slices.Clone(s.Keys)
	c.Channels = slices.Clone(s.Channels)
	return &c
}

func (u *User) root() *Selector { return u.Selectors[0] }
