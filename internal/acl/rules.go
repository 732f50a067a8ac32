package acl

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// RuleError is a refused ACL SETUSER modifier.
type RuleError struct {
	Op    string // the modifier
	Index int    // its position among the modifiers Apply was given
	Msg   string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("Error in ACL SETUSER modifier '%s': %s", e.Op, e.Msg)
}

// The reasons Redis gives for a refused modifier.
const (
	msgUnknown      = "Unknown command or category name in ACL"
	msgSyntax       = "Syntax error"
	msgKeyAfterAll  = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
	msgChanAfterAll = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
	msgNoSuchPass   = "The password you are trying to remove from the user does not exist"
	msgBadHash      = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
	msgFirstArgSub  = "Allowing first-arg of a subcommand is not supported"
)

// ValidName reports whether name may be a user name: no spaces or NULs.
func ValidName(name []byte) bool { return !hasSpaces(string(name)) }

func hasSpaces(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r == 0 || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
	})
}

// Prepare checks ACL SETUSER's modifiers against t and returns them in the
// form Apply takes and the meta shard stores: selector arguments split
// over several modifiers merged into one, command rules in lower case, and
// passwords replaced by salted hashes (salts read from rnd), so that no
// password in clear enters the log. It also returns the modifiers as
// given, merged alike: the i-th given is the i-th prepared. Modifiers
// whose check depends on the user's state (removing a password it does
// not have; key and channel patterns, which Redis checks after "allkeys"
// and "allchannels") are checked by Apply.
func Prepare(t *Table, ops [][]byte, rnd io.Reader) (prepared, given []string, err error) {
	merged, err := mergeSelectors(ops)
	if err != nil {
		return nil, nil, err
	}
	out := make([]string, 0, len(merged))
	for _, op := range merged {
		p, msg := prepareOp(t, op, rnd)
		if msg != "" {
			return nil, nil, &RuleError{Op: sanitize(op), Msg: msg}
		}
		out = append(out, p)
	}
	return out, merged, nil
}

// mergeSelectors joins a selector given over several arguments,
// "(~k*" "+get)", into one, "(~k* +get)".
func mergeSelectors(ops [][]byte) ([]string, error) {
	var out []string
	open := -1
	var sel strings.Builder
	for i, b := range ops {
		op := string(b)
		if open < 0 && strings.HasPrefix(op, "(") && !strings.HasSuffix(op, ")") {
			open = i
			sel.Reset()
			sel.WriteString(op)
			continue
		}
		if open >= 0 {
			sel.WriteString(" " + op)
			if strings.HasSuffix(op, ")") {
				out = append(out, sel.String())
				open = -1
			}
			continue
		}
		out = append(out, op)
	}
	if open >= 0 {
		return nil, fmt.Errorf("Unmatched parenthesis in acl selector starting at '%s'.", sanitize(string(ops[open])))
	}
	return out, nil
}

// prepareOp returns op as Apply takes it, or the reason it is refused.
func prepareOp(t *Table, op string, rnd io.Reader) (string, string) {
	if op == "" {
		return "", "" // a no-op, as in Redis
	}
	switch op[0] {
	case '>':
		return "#" + HashPassword(op[1:], rnd), ""
	case '#':
		if isHex(op[1:], sha256HexLen) {
			return "#" + saltHash(op[1:], rnd), ""
		}
		if isHex(op[1:], storedLen) {
			return op, ""
		}
		return "", msgBadHash
	case '<':
		return "!" + PasswordSHA(op[1:]), ""
	case '!':
		if !isHex(op[1:], sha256HexLen) && !isHex(op[1:], storedLen) {
			return "", msgBadHash
		}
		return op, ""
	case '(':
		// A ')' inside would end the selector when ACL LIST's line is
		// read back.
		if !strings.HasSuffix(op, ")") || strings.Contains(op[1:len(op)-1], ")") {
			return "", msgSyntax
		}
		var inner []string
		for _, s := range strings.Fields(op[1 : len(op)-1]) {
			p, msg := prepareSelectorOp(t, s)
			if msg != "" {
				return "", msg
			}
			inner = append(inner, p)
		}
		return "(" + strings.Join(inner, " ") + ")", ""
	}
	switch low := strings.ToLower(op); low {
	case "on", "off", "nopass", "resetpass", "reset", "clearselectors",
		"sanitize-payload", "skip-sanitize-payload":
		return low, ""
	}
	return prepareSelectorOp(t, op)
}

// prepareSelectorOp checks one selector modifier: key and channel
// patterns, command rules, and their keywords.
func prepareSelectorOp(t *Table, op string) (string, string) {
	switch low := strings.ToLower(op); low {
	case "allkeys", "~*", "resetkeys", "allchannels", "&*", "resetchannels",
		"allcommands", "+@all", "nocommands", "-@all":
		return low, ""
	}
	switch {
	case op[0] == '~' || op[0] == '%' || op[0] == '&':
		return op, "" // checked by Apply

	case (op[0] == '+' || op[0] == '-') && strings.HasPrefix(op[1:], "@"):
		if _, ok := CategoryByName(op[2:]); !ok {
			return "", msgUnknown
		}
		return strings.ToLower(op), ""
	case op[0] == '+' || op[0] == '-':
		return prepareCommandRule(t, op)
	}
	return "", msgSyntax
}

// prepareCommandRule checks +cmd, +cmd|sub, +cmd|firstarg and -cmd, as
// Redis's ACLSetSelector does.
func prepareCommandRule(t *Table, op string) (string, string) {
	name := strings.ToLower(op[1:])
	i := strings.LastIndexByte(name, '|')
	if op[0] == '-' || i < 0 {
		if t.Lookup(name) == nil {
			return "", msgUnknown
		}
		return op[:1] + name, ""
	}
	cmd := t.Lookup(name[:i])
	switch {
	case cmd == nil:
		return "", msgUnknown
	case cmd.parent != nil:
		return "", msgFirstArgSub
	case i == len(name)-1:
		return "", msgSyntax
	case cmd.Subs != nil && t.Lookup(name) == nil:
		return "", msgUnknown
	case cmd.Subs == nil:
		// A first argument keeps the case it was given in, as Redis
		// compares it case-insensitively.
		return "+" + name[:i+1] + op[1+i+1:], ""
	}
	return "+" + name, ""
}

// parseKeyPattern splits ~pattern, %R~pattern, %W~pattern and %RW~pattern.
func parseKeyPattern(op string) (string, KeyAccess, bool) {
	if op[0] == '~' {
		p := op[1:]
		return p, Read | Write, !hasSpaces(p)
	}
	var access KeyAccess
	for i := 1; i < len(op); i++ {
		switch c := op[i]; {
		case (c == 'R' || c == 'r') && access&Read == 0:
			access |= Read
		case (c == 'W' || c == 'w') && access&Write == 0:
			access |= Write
		case c == '~' && access != 0:
			p := op[i+1:]
			return p, access, !hasSpaces(p)
		default:
			return "", 0, false
		}
	}
	return "", 0, false
}

// Apply applies modifiers prepared by Prepare to u, all or none: on an
// error u is unchanged. It is deterministic, as the meta shard requires.
func (u *User) Apply(ops []string) error {
	tmp := u.Clone()
	for i, op := range ops {
		if msg := tmp.applyOp(op); msg != "" {
			return &RuleError{Op: sanitize(op), Index: i, Msg: msg}
		}
	}
	*u = *tmp
	return nil
}

func (u *User) applyOp(op string) string {
	switch op {
	case "":
		// a no-op, as in Redis
	case "on":
		u.Enabled = true
	case "off":
		u.Enabled = false
	case "sanitize-payload":
		u.SanitizePayload = 1
	case "skip-sanitize-payload":
		u.SanitizePayload = 2
	case "nopass":
		u.NoPass, u.Passwords = true, nil
	case "resetpass":
		u.NoPass, u.Passwords = false, nil
	case "clearselectors":
		u.Selectors = u.Selectors[:1]
	case "reset":
		u.NoPass, u.Passwords = false, nil
		u.Enabled, u.SanitizePayload = false, 1
		u.Selectors = []*Selector{{}}
	default:
		switch op[0] {
		case '#':
			if !slices.Contains(u.Passwords, op[1:]) {
				u.Passwords = append(u.Passwords, op[1:])
			}
			u.NoPass = false
		case '!':
			n := len(u.Passwords)
			u.Passwords = slices.DeleteFunc(u.Passwords, func(p string) bool { return sameHash(p, op[1:]) })
			if len(u.Passwords) == n {
				return msgNoSuchPass
			}
		case '(':
			s := &Selector{}
			for _, sop := range strings.Fields(op[1 : len(op)-1]) {
				if msg := s.applyOp(sop); msg != "" {
					return msg
				}
			}
			u.Selectors = append(u.Selectors, s)
		default:
			return u.root().applyOp(op)
		}
	}
	return ""
}

func (s *Selector) applyOp(op string) string {
	switch op {
	case "allkeys", "~*":
		s.AllKeys, s.Keys = true, nil
	case "resetkeys":
		s.AllKeys, s.Keys = false, nil
	case "allchannels", "&*":
		s.AllChannels, s.Channels = true, nil
	case "resetchannels":
		s.AllChannels, s.Channels = false, nil
	case "allcommands", "+@all":
		s.AllCommands, s.Commands = true, nil
	case "nocommands", "-@all":
		s.AllCommands, s.Commands = false, nil
	default:
		switch op[0] {
		case '~', '%':
			if s.AllKeys {
				return msgKeyAfterAll
			}
			p, access, ok := parseKeyPattern(op)
			if !ok {
				return msgSyntax
			}
			if i := slices.IndexFunc(s.Keys, func(k KeyPattern) bool { return k.Pattern == p }); i >= 0 {
				s.Keys[i].Access |= access
			} else {
				s.Keys = append(s.Keys, KeyPattern{Pattern: p, Access: access})
			}
		case '&':
			if s.AllChannels {
				return msgChanAfterAll
			}
			if hasSpaces(op[1:]) {
				return msgSyntax
			}
			if !slices.Contains(s.Channels, op[1:]) {
				s.Channels = append(s.Channels, op[1:])
			}
		case '+', '-':
			s.updateCommands(op)
		default:
			return msgSyntax
		}
	}
	return ""
}

// updateCommands appends a command rule, dropping earlier rules for the
// same command or category, and for a whole command those of its
// subcommands and first arguments: what remains says, in order, what
// each rule still decides (Redis 7.2's ACLUpdateCommandRules).
func (s *Selector) updateCommands(rule string) {
	name := rule[1:]
	s.Commands = slices.DeleteFunc(s.Commands, func(r string) bool {
		old := r[1:]
		return old == name || (strings.HasPrefix(old, name) && old[len(name)] == '|')
	})
	s.Commands = append(s.Commands, rule)
}

// sanitize replaces the characters an error reply may not carry.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
