package resp_test

import (
	"fmt"

	"github.com/shoaldb/shoal/internal/resp"
)

// A connection's read loop: parse every complete command in the buffer,
// then read more.
func ExampleParser() {
	var p resp.Parser
	reads := []string{"*2\r\n$3\r\nGET\r\n$1", "\r\nk\r\nPING\r\n\r\nECHO \"a b\"\r\n"}
	var buf []byte
	for _, r := range reads {
		buf = append(buf, r...) // conn.Read
		for {
			args, n, err := p.Parse(buf)
			if err != nil {
				fmt.Printf("-%s\r\n", err) // then close the connection
				return
			}
			if n == 0 {
				break // incomplete: read more
			}
			buf = buf[n:]
			if args != nil {
				fmt.Printf("%q\n", args)
			}
		}
	}
	// Output:
	// ["GET" "k"]
	// ["PING"]
	// ["ECHO" "a b"]
}

func ExampleAppendValue() {
	v := resp.Map(resp.BulkString("score"), resp.Double(1.5))
	fmt.Printf("%q\n", resp.AppendValue(nil, v, 3))
	fmt.Printf("%q\n", resp.AppendValue(nil, v, 2))
	// Output:
	// "%1\r\n$5\r\nscore\r\n,1.5\r\n"
	// "*2\r\n$5\r\nscore\r\n$3\r\n1.5\r\n"
}
