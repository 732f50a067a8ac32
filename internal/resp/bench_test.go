package resp

import (
	"bytes"
	"strings"
	"testing"
)

var setCommand = []byte("*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000001\r\n$64\r\n" + strings.Repeat("v", 64) + "\r\n")

func BenchmarkParseCommand(b *testing.B) {
	b.Run("set64/Parser", func(b *testing.B) {
		var p Parser
		b.SetBytes(int64(len(setCommand)))
		b.ReportAllocs()
		for b.Loop() {
			if _, n, err := p.Parse(setCommand); n != len(setCommand) || err != nil {
				b.Fatalf("Parse = %d, %v", n, err)
			}
		}
	})
	b.Run("set64/ParseCommand", func(b *testing.B) {
		b.SetBytes(int64(len(setCommand)))
		b.ReportAllocs()
		for b.Loop() {
			if _, n, err := ParseCommand(setCommand, Limits{}); n != len(setCommand) || err != nil {
				b.Fatalf("ParseCommand = %d, %v", n, err)
			}
		}
	})
	pipeline := bytes.Repeat(setCommand, 16)
	b.Run("pipeline16/Parser", func(b *testing.B) {
		var p Parser
		b.SetBytes(int64(len(pipeline)))
		b.ReportAllocs()
		for b.Loop() {
			for buf := pipeline; len(buf) > 0; {
				_, n, err := p.Parse(buf)
				if n == 0 || err != nil {
					b.Fatalf("Parse = %d, %v", n, err)
				}
				buf = buf[n:]
			}
		}
	})
	// The pipeline arriving in 1 KiB reads, parsed as a server would.
	b.Run("pipeline16/reads1KiB", func(b *testing.B) {
		var p Parser
		b.SetBytes(int64(len(pipeline)))
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf = buf[:0]
			for off := 0; off < len(pipeline); {
				end := min(off+1024, len(pipeline))
				buf = append(buf, pipeline[off:end]...)
				off = end
				for {
					_, n, err := p.Parse(buf)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						break
					}
					buf = buf[:copy(buf, buf[n:])]
				}
			}
		}
	})
	inline := []byte("SET key:000000000001 \"" + strings.Repeat("v", 64) + "\"\r\n")
	b.Run("inline", func(b *testing.B) {
		var p Parser
		b.SetBytes(int64(len(inline)))
		b.ReportAllocs()
		for b.Loop() {
			if _, n, err := p.Parse(inline); n != len(inline) || err != nil {
				b.Fatalf("Parse = %d, %v", n, err)
			}
		}
	})
}

var benchReply = Array(
	BulkString("key:000000000001"),
	Int(1234567),
	Double(3.14159),
	Map(BulkString("field"), BulkString(strings.Repeat("v", 64)), BulkString("n"), Bool(true)),
	Null,
	OK,
)

func BenchmarkAppendValue(b *testing.B) {
	for _, proto := range []int{2, 3} {
		b.Run("proto"+string(rune('0'+proto)), func(b *testing.B) {
			dst := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendValue(dst[:0], benchReply, proto)
			}
			b.SetBytes(int64(len(dst)))
		})
	}
	b.Run("bulk64", func(b *testing.B) {
		dst := make([]byte, 0, 1024)
		v := []byte(strings.Repeat("v", 64))
		b.ReportAllocs()
		for b.Loop() {
			dst = AppendBulk(dst[:0], v)
		}
	})
}

func BenchmarkParseValue(b *testing.B) {
	enc := AppendValue(nil, benchReply, 3)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, n, err := ParseValue(enc); n != len(enc) || err != nil {
			b.Fatalf("ParseValue = %d, %v", n, err)
		}
	}
}
