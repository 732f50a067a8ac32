package kvmodel

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

func op(client int, call, ret int64, in Input, out Output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

func TestModel(t *testing.T) {
	tests := []struct {
		name string
		h    []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"read after write", []porcupine.Operation{
			op(0, 0, 10, Input{Kind: OpSet, Key: "k", Value: 5}, Output{}),
			op(1, 20, 30, Input{Kind: OpGet, Key: "k"}, Output{Found: true, Value: 5}),
		}, porcupine.Ok},
		{"stale read", []porcupine.Operation{
			op(0, 0, 10, Input{Kind: OpSet, Key: "k", Value: 5}, Output{}),
			op(1, 20, 30, Input{Kind: OpGet, Key: "k"}, Output{}),
		}, porcupine.Illegal},
		{"incr from nothing", []porcupine.Operation{
			op(0, 0, 10, Input{Kind: OpIncr, Key: "k"}, Output{Value: 1}),
			op(1, 20, 30, Input{Kind: OpCAS, Key: "k", Old: 1, Value: 7}, Output{Found: true}),
			op(0, 40, 50, Input{Kind: OpGet, Key: "k"}, Output{Found: true, Value: 7}),
		}, porcupine.Ok},
		{"failed cas cannot swap", []porcupine.Operation{
			op(0, 0, 10, Input{Kind: OpCAS, Key: "k", Old: 1, Value: 7}, Output{Found: false}),
			op(1, 20, 30, Input{Kind: OpGet, Key: "k"}, Output{Found: true, Value: 7}),
		}, porcupine.Illegal},
		{"indeterminate write may land later", []porcupine.Operation{
			op(0, 0, Never, Input{Kind: OpSet, Key: "k", Value: 3}, Output{Unknown: true}),
			op(1, 20, 30, Input{Kind: OpGet, Key: "k"}, Output{}),
			op(1, 40, 50, Input{Kind: OpGet, Key: "k"}, Output{Found: true, Value: 3}),
		}, porcupine.Ok},
		{"keys are independent", []porcupine.Operation{
			op(0, 0, 10, Input{Kind: OpSet, Key: "a", Value: 1}, Output{}),
			op(1, 20, 30, Input{Kind: OpGet, Key: "b"}, Output{}),
		}, porcupine.Ok},
	}
	for _, tt := range tests {
		if got := porcupine.CheckOperations(Model, tt.h); got != (tt.want == porcupine.Ok) {
			t.Errorf("%s: linearizable = %v, want %v", tt.name, got, tt.want == porcupine.Ok)
		}
	}
}
