package sim

import (
	"fmt"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// Operation kinds of the workload.
const (
	opGet  = "get"
	opPut  = "put"
	opIncr = "incr"
	opCAS  = "cas"
)

// input is what a client asked.
type input struct {
	Op    string
	Key   string
	Value string // put: value; cas: new value
	Old   string // cas: expected value
}

// output is what it was told. Unknown means the outcome is indeterminate.
type output struct {
	Value   string // get: value ("" when absent); incr: new value
	OK      bool   // cas: whether it swapped
	Unknown bool
}

// kvModel is a linearizable register per key, partitioned by key.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, in, out any) (bool, any) {
		s, i, o := state.(string), in.(input), out.(output)
		switch i.Op {
		case opGet:
			return o.Unknown || o.Value == s, s
		case opPut:
			return true, i.Value
		case opIncr:
			n, _ := strconv.ParseInt(s, 10, 64)
			next := strconv.FormatInt(n+1, 10)
			return o.Unknown || o.Value == next, next
		case opCAS:
			if s == i.Old {
				return o.Unknown || o.OK, i.Value
			}
			return o.Unknown || !o.OK, s
		}
		panic("sim: unknown op " + i.Op)
	},
	Equal: func(a, b any) bool { return a == b },
	DescribeOperation: func(in, out any) string {
		i, o := in.(input), out.(output)
		res := o.Value
		switch {
		case o.Unknown:
			res = "?"
		case i.Op == opCAS:
			res = fmt.Sprint(o.OK)
		case i.Op == opPut:
			res = "ok"
		}
		switch i.Op {
		case opPut:
			return fmt.Sprintf("put(%s, %s) -> %s", i.Key, i.Value, res)
		case opCAS:
			return fmt.Sprintf("cas(%s, %s->%s) -> %s", i.Key, i.Old, i.Value, res)
		}
		return fmt.Sprintf("%s(%s) -> %s", i.Op, i.Key, res)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}
