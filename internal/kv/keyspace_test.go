package kv

import (
	"strings"
	"testing"
)

func TestDelExistsTypeTouch(t *testing.T) {
	runScript(t, []step{
		{`MSET a 1 b 2 c 3`, `+OK`},
		{`EXISTS a b x`, `:2`},
		{`EXISTS a a a`, `:3`},
		{`TOUCH a a x`, `:2`},
		{`TYPE a`, `+string`},
		{`TYPE x`, `+none`},
		{`DEL a x a`, `:1`},
		{`EXISTS a`, `:0`},
		{`UNLINK b c`, `:2`},
		{`DEL b`, `:0`},
		{`SET t v EX 10`, `+OK`},
		{`DEL t`, `:1`},
		{`DEL`, `-ERR wrong number of arguments for 'del' command`},
		{`EXISTS`, `-ERR wrong number of arguments for 'exists' command`},
		{`TYPE a b`, `-ERR wrong number of arguments for 'type' command`},
	})
}

func TestExpireCommands(t *testing.T) {
	runScript(t, []step{
		{`EXPIRE k 10`, `:0`},
		{`SET k v`, `+OK`},
		{`TTL k`, `:-1`},
		{`PTTL k`, `:-1`},
		{`EXPIRETIME k`, `:-1`},
		{`TTL nokey`, `:-2`},
		{`PTTL nokey`, `:-2`},
		{`EXPIRETIME nokey`, `:-2`},
		{`PEXPIRETIME nokey`, `:-2`},
		{`EXPIRE k 10`, `:1`},
		{`TTL k`, `:10`},
		{`PTTL k`, `:10000`},
		{`EXPIRETIME k`, `:1780000010`},
		{`PEXPIRETIME k`, `:1780000010000`},
		{`PEXPIRE k 1499`, `:1`},
		{`TTL k`, `:1`}, // rounded to nearest
		{`PEXPIRE k 1500`, `:1`},
		{`TTL k`, `:2`},
		{`EXPIREAT k 1780000100`, `:1`},
		{`TTL k`, `:100`},
		{`PEXPIREAT k 1780000000250`, `:1`},
		{`PTTL k`, `:250`},
		{`EXPIRETIME k`, `:1780000000`}, // 1780000000.25 rounds down
		{`PERSIST k`, `:1`},
		{`PERSIST k`, `:0`},
		{`PERSIST nokey`, `:0`},
		{`TTL k`, `:-1`},
		{`EXPIRE k x`, `-ERR value is not an integer or out of range`},
		{`EXPIRE k 9223372036854776`, `-ERR invalid expire time in 'expire' command`},
		{`EXPIRE k -9223372036854776`, `-ERR invalid expire time in 'expire' command`},
		{`PEXPIRE k 9223372036854775807`, `-ERR invalid expire time in 'pexpire' command`},
		{`EXPIREAT k 9223372036854776`, `-ERR invalid expire time in 'expireat' command`},
		{`PEXPIREAT k 9223372036854775807`, `:1`}, // far future, but no overflow
		{`PEXPIRETIME k`, `:9223372036854775807`},
		{`EXPIRE k 100 bogus`, `-ERR Unsupported option bogus`},
		{`EXPIRE k`, `-ERR wrong number of arguments for 'expire' command`},
		{`TTL`, `-ERR wrong number of arguments for 'ttl' command`},
		// A time in the past deletes the key and answers 1.
		{`EXPIRE k 0`, `:1`},
		{`EXISTS k`, `:0`},
		{`SET k v`, `+OK`},
		{`EXPIRE k -5`, `:1`},
		{`EXISTS k`, `:0`},
		{`SET k v`, `+OK`},
		{`PEXPIREAT k 1780000000000`, `:1`}, // == now
		{`EXISTS k`, `:0`},
		{`SET k v`, `+OK`},
		{`EXPIREAT k 1`, `:1`},
		{`EXISTS k`, `:0`},
	})
}

func TestExpireConditions(t *testing.T) {
	runScript(t, []step{
		{`SET k v`, `+OK`},
		{`EXPIRE k 100 XX`, `:0`},
		{`EXPIRE k 100 GT`, `:0`}, // no TTL counts as infinite
		{`EXPIRE k 100 LT`, `:1`},
		{`TTL k`, `:100`},
		{`EXPIRE k 200 NX`, `:0`},
		{`EXPIRE k 200 XX`, `:1`},
		{`EXPIRE k 100 GT`, `:0`},
		{`EXPIRE k 200 GT`, `:0`},
		{`EXPIRE k 300 gt`, `:1`},
		{`EXPIRE k 400 LT`, `:0`},
		{`EXPIRE k 300 LT`, `:0`},
		{`EXPIRE k 50 lt`, `:1`},
		{`TTL k`, `:50`},
		{`EXPIRE k 60 XX GT`, `:1`},
		{`TTL k`, `:60`},
		{`PERSIST k`, `:1`},
		{`EXPIRE k 10 NX`, `:1`},
		{`TTL k`, `:10`},
		{`EXPIRE k 10 NX XX`, `-ERR NX and XX, GT or LT options at the same time are not compatible`},
		{`EXPIRE k 10 NX GT`, `-ERR NX and XX, GT or LT options at the same time are not compatible`},
		{`EXPIRE k 10 LT NX`, `-ERR NX and XX, GT or LT options at the same time are not compatible`},
		{`EXPIRE k 10 GT LT`, `-ERR GT and LT options at the same time are not compatible`},
		{`EXPIRE k 10 NX NX`, `:0`},
		{`EXPIRE nokey 10 NX`, `:0`},
		{`EXPIRE k -1 GT`, `:0`},
		{`EXPIRE k -1 LT`, `:1`},
		{`EXISTS k`, `:0`},
	})
}

func TestRename(t *testing.T) {
	runScript(t, []step{
		{`RENAME a b`, `-ERR no such key`},
		{`RENAMENX a b`, `-ERR no such key`},
		{`SET a 1 EX 100`, `+OK`},
		{`SET b 2`, `+OK`},
		{`RENAME a a`, `+OK`},
		{`RENAMENX a a`, `:0`},
		{`TTL a`, `:100`},
		{`RENAMENX a b`, `:0`},
		{`RENAME a b`, `+OK`},
		{`EXISTS a`, `:0`},
		{`GET b`, `"1"`},
		{`TTL b`, `:100`},
		{`RENAMENX b c`, `:1`},
		{`GET c`, `"1"`},
		{`TTL c`, `:100`},
		{`SET d 4 EX 50`, `+OK`},
		{`RENAME d c`, `+OK`}, // replaces c, TTL and all
		{`TTL c`, `:50`},
		{`SET e 5`, `+OK`},
		{`RENAME e c`, `+OK`},
		{`TTL c`, `:-1`},
		{`GET c`, `"5"`},
		{`RENAME c`, `-ERR wrong number of arguments for 'rename' command`},
	})
}

func TestObject(t *testing.T) {
	long := strings.Repeat("x", 45)
	runScript(t, []step{
		{`OBJECT ENCODING nokey`, `(nil)`},
		{`SET i 12345`, `+OK`},
		{`OBJECT ENCODING i`, `"int"`},
		{`SET i -9223372036854775808`, `+OK`},
		{`OBJECT ENCODING i`, `"int"`},
		{`SET i 9223372036854775808`, `+OK`},
		{`OBJECT ENCODING i`, `"embstr"`},
		{`SET i 012`, `+OK`},
		{`OBJECT ENCODING i`, `"embstr"`},
		{`SET s 12345678901234567890123456789012345678901234`, `+OK`}, // 44 bytes
		{`OBJECT ENCODING s`, `"embstr"`},
		{`SET s ` + long, `+OK`},
		{`object encoding s`, `"raw"`},
		{`OBJECT REFCOUNT s`, `:1`},
		{`OBJECT REFCOUNT nokey`, `(nil)`},
		{`OBJECT IDLETIME s`, `:0`},
		{`@advance 5999`, ``},
		{`OBJECT IDLETIME s`, `:5`},
		{`GET s`, `"` + long + `"`}, // reads do not reset it
		{`TOUCH s`, `:1`},
		{`OBJECT IDLETIME s`, `:5`},
		{`APPEND s x`, `:46`},
		{`OBJECT IDLETIME s`, `:0`},
		{`OBJECT IDLETIME nokey`, `(nil)`},
		{`OBJECT FREQ nokey`, `(nil)`},
		{`OBJECT FREQ s`, `-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.`},
		{`OBJECT`, `-ERR wrong number of arguments for 'object' command`},
		{`OBJECT ENCODING`, `-ERR wrong number of arguments for 'object|encoding' command`},
		{`OBJECT ENCODING a b`, `-ERR wrong number of arguments for 'object|encoding' command`},
		{`OBJECT HELP x`, `-ERR wrong number of arguments for 'object|help' command`},
		{`object bogus k`, `-ERR unknown subcommand 'bogus'. Try OBJECT HELP.`},
	})
	h := newHarness(t)
	if v := h.do(splitArgs("OBJECT HELP")...); len(v.Elems) < 5 || format(v.Elems[0])[0] != '+' {
		t.Errorf("OBJECT HELP = %s, want lines of help", format(v))
	}
}

func TestMemoryUsage(t *testing.T) {
	runScript(t, []step{
		{`MEMORY USAGE nokey`, `(nil)`},
		{`SET k abc`, `+OK`},
		// Data key 4+1, record 17+3, one entry overhead 24.
		{`MEMORY USAGE k`, `:49`},
		{`MEMORY USAGE k SAMPLES 5`, `:49`},
		{`MEMORY USAGE k SAMPLES 0`, `:49`},
		{`EXPIRE k 100`, `:1`},
		// Plus the expiry entry: 12+1 and its overhead.
		{`memory usage k`, `:86`},
		{`MEMORY USAGE k SAMPLES -1`, `-ERR syntax error`},
		{`MEMORY USAGE k SAMPLES x`, `-ERR value is not an integer or out of range`},
		{`MEMORY USAGE k SAMPLES`, `-ERR syntax error`},
		{`MEMORY USAGE k BOGUS 1`, `-ERR syntax error`},
		{`MEMORY USAGE`, `-ERR wrong number of arguments for 'memory|usage' command`},
		{`MEMORY`, `-ERR wrong number of arguments for 'memory' command`},
		{`MEMORY DOCTOR`, `-ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP.`},
		{`MEMORY HELP x`, `-ERR wrong number of arguments for 'memory|help' command`},
	})
}

func TestSpecs(t *testing.T) {
	if got := Lookup([]byte("GeT")); got == nil || got.Name != "get" {
		t.Fatalf("Lookup(GeT) = %v, want the get spec", got)
	}
	for _, name := range []string{"", "hget", "getx", "shoal.", "averyveryveryverylongcommandnamethatisnotthere"} {
		if got := Lookup([]byte(name)); got != nil {
			t.Errorf("Lookup(%q) = %v, want nil", name, got.Name)
		}
	}
	seen := map[string]bool{}
	for _, s := range Specs() {
		if seen[s.Name] {
			t.Errorf("duplicate spec %q", s.Name)
		}
		seen[s.Name] = true
		if Lookup([]byte(s.Name)) != s {
			t.Errorf("Lookup(%q) does not return its spec", s.Name)
		}
		if (s.Flags&Write != 0) == (s.Flags&ReadOnly != 0) {
			t.Errorf("%s: flags %v must have exactly one of Write and ReadOnly", s.Name, s.Flags.Names())
		}
		if s.Arity == 0 || s.run == nil {
			t.Errorf("%s: incomplete spec", s.Name)
		}
	}
	for _, name := range []string{
		"get", "set", "setnx", "setex", "psetex", "getset", "getdel", "getex", "mget", "mset", "msetnx",
		"append", "strlen", "incr", "decr", "incrby", "decrby", "incrbyfloat", "getrange", "setrange", "substr",
		"del", "unlink", "exists", "type", "touch", "expire", "pexpire", "expireat", "pexpireat", "ttl", "pttl",
		"expiretime", "pexpiretime", "persist", "rename", "renamenx", "object", "memory",
		"keys", "dbsize", "randomkey", "flushall", "flushdb", "scan",
		"shoal.batch", "shoal.sweep", "shoal.expired", "shoal.countkeysinslot", "shoal.getkeysinslot",
	} {
		if !seen[name] {
			t.Errorf("missing spec %q", name)
		}
	}
	if got := (Write | DenyOOM | Fast | AllShards | Internal).Names(); len(got) != 3 || got[0] != "write" || got[1] != "denyoom" || got[2] != "fast" {
		t.Errorf("Names() = %v, want [write denyoom fast]", got)
	}
}

func TestSpecKeys(t *testing.T) {
	tests := []struct {
		cmd  string
		want string
	}{
		{`GET k`, `[k]`},
		{`GET`, `[]`},
		{`SET k v EX 10`, `[k]`},
		{`MGET a b c`, `[a b c]`},
		{`MSET a 1 b 2`, `[a b]`},
		{`MSET a 1 b`, `[a b]`},
		{`DEL a`, `[a]`},
		{`RENAME a b`, `[a b]`},
		{`RENAME a`, `[a]`},
		{`OBJECT ENCODING k`, `[k]`},
		{`OBJECT HELP`, `[]`},
		{`MEMORY USAGE k SAMPLES 5`, `[k]`},
		{`KEYS *`, `[]`},
		{`SCAN 0 MATCH x`, `[]`},
		{`SHOAL.SWEEP 10`, `[]`},
	}
	for _, tt := range tests {
		args := splitArgs(tt.cmd)
		s := Lookup(args[0])
		got := "["
		for i, k := range s.Keys(args) {
			if i > 0 {
				got += " "
			}
			got += string(k)
		}
		got += "]"
		if got != tt.want {
			t.Errorf("Keys(%s) = %s, want %s", tt.cmd, got, tt.want)
		}
	}
	// Keys must be safe on any args, even ones arity would reject.
	for _, s := range Specs() {
		for n := 0; n < 6; n++ {
			args := make([][]byte, n)
			for i := range args {
				args[i] = []byte{'a' + byte(i)}
			}
			_ = s.Keys(args)
		}
	}
}
