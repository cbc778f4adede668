package documents

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Find lists the definitions under the scripts directory dir, by index
// (the folder's name): dir/<index>/document.yaml. A missing dir holds none.
func Find(dir string) (map[string]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read scripts_dir: %w", err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name(), File)
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
			out[e.Name()] = path
		}
	}
	return out, nil
}

// Load reads every definition under dir and checks it against the
// catalog read through conn. It reports every problem of every
// definition at once. No definitions: nil, nil, and conn is not used.
func Load(ctx context.Context, dir string, connect func(context.Context) (*pgx.Conn, error)) ([]*Plan, error) {
	files, err := Find(dir)
	if err != nil || len(files) == 0 {
		return nil, err
	}
	conn, err := connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("read catalog for document definitions: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cat, err := LoadCatalog(ctx, conn)
	if err != nil {
		return nil, err
	}
	indices := make([]string, 0, len(files))
	for index := range files {
		indices = append(indices, index)
	}
	sort.Strings(indices)
	var plans []*Plan
	var errs []error
	for _, index := range indices {
		path := files[index]
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("read document definition: %w", err))
			continue
		}
		d, err := Parse(path, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := Resolve(index, d, cat)
		if err != nil {
			errs = append(errs, &DefinitionError{Path: path, Err: err})
			continue
		}
		plans = append(plans, p)
	}
	return plans, errors.Join(errs...)
}

// OwnTables is the rule for which tables a definition reads are also
// indexed on their own: those listed in postgres.tables, or every table
// when the list is empty (every table is captured and indexed then).
func OwnTables(listed []string) func(schema, table string) bool {
	set := map[string]bool{}
	for _, t := range listed {
		if q, err := qualify(t); err == nil {
			set[q] = true
		}
	}
	return func(schema, table string) bool { return len(set) == 0 || set[schema+"."+table] }
}

// CapturedOnly lists the tables captured only for definitions: read by a
// definition, neither a definition's root nor indexed on their own. They
// have no index of their own.
func CapturedOnly(plans []*Plan, own func(schema, table string) bool) []string {
	var out []string
	roots := map[string]bool{}
	for _, p := range plans {
		roots[p.Root.Table.QualifiedName()] = true
	}
	for _, p := range plans {
		for _, q := range p.Tables() {
			schema, table, _ := strings.Cut(q, ".")
			if !roots[q] && !own(schema, table) && !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	sort.Strings(out)
	return out
}
