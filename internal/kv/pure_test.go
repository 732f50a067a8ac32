package kv

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPure keeps package kv deterministic: its non-test files import no
// clock, network, OS or synchronization, start no goroutines, and use
// math/rand/v2 only to build PRNGs seeded from Env, never its global
// source.
func TestPure(t *testing.T) {
	forbidden := []string{"time", "net", "os", "syscall", "sync", "math/rand", "crypto/rand", "unsafe", "runtime"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == "math/rand/v2" {
					break
				}
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %q", name, path)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: go statement", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				pkg, ok := n.X.(*ast.Ident)
				if ok && pkg.Name == "rand" && n.Sel.Name != "New" && n.Sel.Name != "NewPCG" && n.Sel.Name != "Rand" {
					t.Errorf("%s: rand.%s uses the global source", fset.Position(n.Pos()), n.Sel.Name)
				}
			}
			return true
		})
	}
}
