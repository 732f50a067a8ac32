// Package kvmodel is the porcupine model of shoal's single-key commands (GET,
// SET, INCR and SET ... IFEQ): independent integer registers, partitioned by
// key. The deterministic simulation and the black-box fault tests check
// their histories against it.
package kvmodel

import (
	"fmt"
	"math"

	"github.com/anishathalye/porcupine"
)

// OpKind is the kind of a recorded client operation.
type OpKind uint8

const (
	OpGet  OpKind = iota // GET key
	OpSet                // SET key value
	OpIncr               // INCR key
	OpCAS                // SET key value IFEQ old
)

func (k OpKind) String() string {
	switch k {
	case OpGet:
		return "get"
	case OpSet:
		return "set"
	case OpIncr:
		return "incr"
	case OpCAS:
		return "cas"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// IsWrite reports whether the operation may change the key.
func (k OpKind) IsWrite() bool { return k != OpGet }

// Input is an operation as invoked. Values are integers so that INCR applies
// to anything SET wrote.
type Input struct {
	Kind  OpKind
	Key   string
	Value int64 // SET and CAS: the new value
	Old   int64 // CAS: the value compared against
}

// Output is an operation's result. Unknown marks an operation whose effect
// is not known (error or timeout); its return time is infinite.
type Output struct {
	Unknown bool
	Found   bool  // GET: the key exists; CAS: the value was set
	Value   int64 // GET (when Found) and INCR: the value
}

// Never is the return time of an operation whose outcome is unknown.
const Never = math.MaxInt64

// state is one key's value in the model.
type state struct {
	exists bool
	v      int64
}

// step applies in to s; ok is false when out is impossible from s.
func step(s state, in Input, out Output) (bool, state) {
	switch in.Kind {
	case OpGet:
		if out.Unknown {
			return true, s
		}
		return out.Found == s.exists && (!s.exists || out.Value == s.v), s
	case OpSet:
		return true, state{true, in.Value}
	case OpIncr:
		n := state{true, s.v + 1}
		if !s.exists {
			n.v = 1
		}
		return out.Unknown || out.Value == n.v, n
	case OpCAS:
		set := s.exists && s.v == in.Old
		if !out.Unknown && out.Found != set {
			return false, s
		}
		if set {
			return true, state{true, in.Value}
		}
		return true, s
	}
	panic(fmt.Sprintf("kvmodel: unknown op kind %d", in.Kind))
}

// Model is the porcupine model of shoal's single-key commands: a map of
// independent integer registers, partitioned by key.
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, byKey[k])
		}
		return out
	},
	PartitionEvent: func(h []porcupine.Event) [][]porcupine.Event {
		keyOf := map[int]string{}
		byKey := map[string][]porcupine.Event{}
		var order []string
		for _, e := range h {
			if e.Kind == porcupine.CallEvent {
				keyOf[e.Id] = e.Value.(Input).Key
			}
			k := keyOf[e.Id]
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], e)
		}
		out := make([][]porcupine.Event, 0, len(order))
		for _, k := range order {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return state{} },
	Step: func(s, in, out any) (bool, any) {
		return step(s.(state), in.(Input), out.(Output))
	},
	Equal: func(a, b any) bool { return a.(state) == b.(state) },
	Hash: func(s any) uint64 {
		st := s.(state)
		if !st.exists {
			return 0
		}
		return uint64(st.v)*0x9e3779b97f4a7c15 + 1
	},
	DescribeOperation: func(in, out any) string { return Describe(in.(Input), out.(Output)) },
	DescribeState: func(s any) string {
		st := s.(state)
		if !st.exists {
			return "(nil)"
		}
		return fmt.Sprint(st.v)
	},
}

// Describe renders an operation as the command and its result.
func Describe(in Input, out Output) string {
	var call string
	switch in.Kind {
	case OpGet:
		call = "GET " + in.Key
	case OpSet:
		call = fmt.Sprintf("SET %s %d", in.Key, in.Value)
	case OpIncr:
		call = "INCR " + in.Key
	case OpCAS:
		call = fmt.Sprintf("SET %s %d IFEQ %d", in.Key, in.Value, in.Old)
	}
	switch {
	case out.Unknown:
		return call + " -> ?"
	case in.Kind == OpGet && !out.Found, in.Kind == OpCAS && !out.Found:
		return call + " -> nil"
	case in.Kind == OpGet, in.Kind == OpIncr:
		return fmt.Sprintf("%s -> %d", call, out.Value)
	}
	return call + " -> OK"
}
