package kv

import "testing"

func TestMaxValueLen(t *testing.T) {
	const tooBig = `-ERR string exceeds maximum allowed size (proto-max-bulk-len)`
	runScript(t, []step{
		{`@maxvalue 10`, ``},
		{`SETRANGE k 536870911 x`, tooBig},
		{`EXISTS k`, `:0`},
		{`SETRANGE k 9 x`, `:10`},
		{`SETRANGE k 10 x`, tooBig},
		{`SETRANGE k 100 ""`, `:10`}, // nothing to write: no check, as Redis
		{`APPEND k x`, tooBig},
		{`STRLEN k`, `:10`},
		{`SET s 123456789`, `+OK`},
		{`APPEND s 0`, `:10`},
		{`APPEND s 1`, tooBig},
		{`APPEND new 0123456789`, `:10`}, // a new key holds what was sent
		{`@maxvalue 0`, ``},              // entries of earlier versions: 512 MiB
		{`APPEND s 1`, `:11`},
		{`SETRANGE k 536870912 x`, tooBig},
	})
}

func TestMaxReplyLen(t *testing.T) {
	const tooLarge = `-ERR reply too large: it would hold more than 250 bytes, the most one command may answer (client-output-buffer-limit); ask for less at a time`
	runScript(t, []step{
		{`MSET {t}a 0123456789 {t}b 0123456789 {t}c 0123456789`, `+OK`},
		{`@maxreply 250`, ``},
		// Each element counts its bytes plus ReplyElemOverhead (64).
		{`MGET {t}a {t}b {t}c`, `["0123456789" "0123456789" "0123456789"]`},
		{`MGET {t}a {t}b {t}c {t}a`, tooLarge},
		{`MGET {t}a {t}x {t}y`, `["0123456789" (nil) (nil)]`},
		{`KEYS *`, `["{t}a" "{t}b" "{t}c"]`},
		{`MSET {t}d 1 {t}e 1`, `+OK`},
		{`KEYS *`, tooLarge},
		{`SCAN 0 COUNT 100`, tooLarge},
		{`SCAN 0 COUNT 100 MATCH *a`, `["16384" ["{t}a"]]`},
		{`SHOAL.GETKEYSINSLOT 15891 3`, `["{t}a" "{t}b" "{t}c"]`},
		{`SHOAL.GETKEYSINSLOT 15891 5`, tooLarge},
		{`@maxreply 0`, ``},
		{`SHOAL.GETKEYSINSLOT 15891 5`, `["{t}a" "{t}b" "{t}c" "{t}d" "{t}e"]`},
	})
}

func TestRefuseEarly(t *testing.T) {
	tests := []struct {
		cmd   string
		limit int64
		want  string // "" when not refused
	}{
		{`SETRANGE k 536870911 x`, 1 << 20, `-ERR string exceeds maximum allowed size (proto-max-bulk-len)`},
		{`setrange k 1048575 x`, 1 << 20, ``},
		{`setrange k 1048576 x`, 1 << 20, `-ERR string exceeds maximum allowed size (proto-max-bulk-len)`},
		{`SETRANGE k 536870911 ""`, 1 << 20, ``}, // writes nothing
		{`SETRANGE k -1 x`, 1 << 20, ``},         // the command's own error
		{`SETRANGE k x x`, 1 << 20, ``},
		{`SETRANGE k 536870911 x`, 0, ``}, // 512 MiB exactly
		{`SET k 536870911`, 1, ``},
	}
	for _, tt := range tests {
		v, refused := RefuseEarly(splitArgs(tt.cmd), tt.limit)
		got := ""
		if refused {
			got = format(v)
		}
		if got != tt.want {
			t.Errorf("RefuseEarly(%s, %d) = %q, want %q", tt.cmd, tt.limit, got, tt.want)
		}
	}
}
