package acl

import "strings"

// Describe returns u's rules in ACL LIST's form (without "user NAME"):
// applying them to a new user gives u back.
func (u *User) Describe() string {
	var b strings.Builder
	if u.Enabled {
		b.WriteString("on ")
	} else {
		b.WriteString("off ")
	}
	if u.NoPass {
		b.WriteString("nopass ")
	}
	switch u.SanitizePayload {
	case 1:
		b.WriteString("sanitize-payload ")
	case 2:
		b.WriteString("skip-sanitize-payload ")
	}
	for _, p := range u.Passwords {
		b.WriteString("#" + p + " ")
	}
	for i, s := range u.Selectors {
		if i == 0 {
			b.WriteString(s.describe())
		} else {
			b.WriteString(" (" + s.describe() + ")")
		}
	}
	return b.String()
}

func (s *Selector) describe() string {
	var b strings.Builder
	if s.AllKeys {
		b.WriteString("~* ")
	} else {
		for _, k := range s.Keys {
			b.WriteString(k.String() + " ")
		}
	}
	if s.AllChannels {
		b.WriteString("&* ")
	} else {
		b.WriteString("resetchannels ")
		for _, c := range s.Channels {
			b.WriteString("&" + c + " ")
		}
	}
	b.WriteString(s.DescribeCommands())
	return b.String()
}

// DescribeCommands returns the selector's command rules, from +@all or
// -@all on (ACL GETUSER's "commands").
func (s *Selector) DescribeCommands() string {
	base := "-@all"
	if s.AllCommands {
		base = "+@all"
	}
	if len(s.Commands) == 0 {
		return base
	}
	return base + " " + strings.Join(s.Commands, " ")
}

// DescribeKeys returns the selector's key patterns (ACL GETUSER's "keys").
func (s *Selector) DescribeKeys() string {
	if s.AllKeys {
		return "~*"
	}
	out := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		out[i] = k.String()
	}
	return strings.Join(out, " ")
}

// DescribeChannels returns the selector's channel patterns (ACL GETUSER's
// "channels").
func (s *Selector) DescribeChannels() string {
	if s.AllChannels {
		return "&*"
	}
	out := make([]string, len(s.Channels))
	for i, c := range s.Channels {
		out[i] = "&" + c
	}
	return strings.Join(out, " ")
}

// Flags returns ACL GETUSER's "flags".
func (u *User) Flags() []string {
	f := []string{"off"}
	if u.Enabled {
		f[0] = "on"
	}
	if u.NoPass {
		f = append(f, "nopass")
	}
	switch u.SanitizePayload {
	case 1:
		f = append(f, "sanitize-payload")
	case 2:
		f = append(f, "skip-sanitize-payload")
	}
	return f
}

func (k KeyPattern) String() string {
	switch k.Access {
	case Read:
		return "%R~" + k.Pattern
	case Write:
		return "%W~" + k.Pattern
	}
	return "~" + k.Pattern
}
