package transform

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"

	"github.com/walsearch/walsearch/bus"
)

// ScriptFile is the name of a table's script inside its folder.
const ScriptFile = "transform.js"

// scriptFile is a script found on disk.
type scriptFile struct {
	schema, table string
	path          string
}

// ScriptPath returns where the script of schema.table lives under dir:
// dir/<table>/transform.js for the public schema, dir/<schema>.<table>/transform.js
// otherwise (the table's default index name, see bus.IndexName).
func ScriptPath(dir, schema, table string) string {
	return filepath.Join(dir, bus.IndexName(schema, table), ScriptFile)
}

// discover lists the scripts under dir. A missing dir holds no scripts.
func discover(dir string) ([]scriptFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read scripts_dir: %w", err)
	}
	var out []scriptFile
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name, ScriptFile)
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() {
			continue // a folder without a script, or not a folder at all
		}
		schema, table, err := bus.ParseTable(name)
		if err != nil {
			continue // not a table's folder
		}
		out = append(out, scriptFile{schema: schema, table: table, path: path})
	}
	return out, nil
}

// readScript reads a script file and returns its content and checksum.
func readScript(path string) (string, [32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", [32]byte{}, fmt.Errorf("read script: %w", err)
	}
	return string(b), sha256.Sum256(b), nil
}

// compile compiles src and runs it once in a fresh runtime, so that a syntax
// error, a top-level exception or a missing transform function fails at load
// time, naming the file and line. The runtime goes into the script's pool.
func (s *Scripts) compile(f scriptFile, src string, sum [32]byte) (*script, error) {
	ast, err := parser.ParseFile(nil, f.path, src, 0)
	if err != nil {
		return nil, loadErrorFrom(f.path, err)
	}
	prog, err := goja.CompileAST(ast, false)
	if err != nil {
		return nil, loadErrorFrom(f.path, err)
	}
	name := f.schema + "." + f.table
	sc := &script{
		schema: f.schema, table: f.table, path: f.path, sum: sum, prog: prog,
		timeout: s.cfg.Timeout,
		budgets: s.cfg.budgets(),
		log:     s.log.With("table", name, "script", f.path),
		lim:     s.limiter(name),
		pool:    make(chan *jsRuntime, s.cfg.Workers),
	}
	rt, err := sc.newRuntime()
	if err != nil {
		return nil, err
	}
	declared, err := declaredIndices(rt, f.path)
	if err != nil {
		return nil, err
	}
	sc.indices = append(sc.indices, bus.IndexName(f.schema, f.table))
	for _, n := range declared {
		if !slices.Contains(sc.indices, n) {
			sc.indices = append(sc.indices, n)
		}
	}
	sc.onDelete = rt.onDelete != nil
	sc.put(rt)
	return sc, nil
}
