package documents

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/transform"
)

// Querier runs a query: a *pgx.Conn or a pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Rebuilder reads the documents of definitions' roots the way the
// assembler rebuilds them: the definition's rebuild query, then the next
// mapper (the root table's transform.js). It holds no connection; each
// Read is one statement, so one snapshot, and takes no lock.
type Rebuilder struct {
	roots map[string]*compiled
	next  transform.Mapper
}

// NewRebuilder returns the rebuilder of plans; next maps the assembled
// documents as the pipeline's assembler does (nil: as they are).
func NewRebuilder(plans []*Plan, next transform.Mapper) *Rebuilder {
	if next == nil {
		next = transform.Identity{}
	}
	r := &Rebuilder{roots: map[string]*compiled{}, next: next}
	for _, p := range plans {
		r.roots[p.Root.Table.QualifiedName()] = &compiled{plan: p, q: buildQueries(p)}
	}
	return r
}

// IsRoot reports whether table ("schema.table") is a definition's root.
func (r *Rebuilder) IsRoot(table string) bool { return r != nil && r.roots[table] != nil }

// Read rebuilds the documents of the root rows of table ("schema.table")
// whose keys are keys (as bus key columns, in the root's key order) and
// texts (the same values as PostgreSQL prints them). It returns, by root
// document id, the documents the pipeline would index for it; a root
// without a row has no entry. A root whose transform fails is in failed.
func (r *Rebuilder) Read(ctx context.Context, q Querier, table string, keys [][]bus.Column, texts [][]string) (docs map[string][]*bus.Doc, failed map[string]error, err error) {
	c := r.roots[table]
	if c == nil {
		return nil, nil, fmt.Errorf("documents: %s is no definition's root", table)
	}
	keyNames := c.plan.Root.Table.Key
	byID := make(map[string][]bus.Column, len(keys))
	for _, k := range keys {
		byID[bus.DocumentID(k)] = k
	}
	docs, failed = map[string][]*bus.Doc{}, map[string]error{}
	if len(texts) == 0 {
		return docs, failed, nil
	}
	rows, err := q.Query(ctx, c.q.rebuild, columnsOf(texts, len(keyNames))...)
	if err != nil {
		return nil, nil, fmt.Errorf("read documents of %s: %w", c.plan.Index, err)
	}
	type found struct {
		key []bus.Column
		doc []byte
	}
	var all []found
	for rows.Next() {
		var keyJSON string
		var doc []byte
		if err := rows.Scan(&keyJSON, &doc); err != nil {
			rows.Close()
			return nil, nil, err
		}
		key, err := decodeKey(keyJSON, keyNames)
		if err != nil {
			rows.Close()
			return nil, nil, err
		}
		if k, ok := byID[bus.DocumentID(key)]; ok {
			key = k // the key as capture gives it
		}
		all = append(all, found{key: key, doc: doc})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read documents of %s: %w", c.plan.Index, err)
	}
	for i, f := range all {
		ch := &bus.Change{V: bus.SchemaVersion, Schema: c.plan.Root.Table.Schema, Table: c.plan.Root.Table.Name,
			Op: bus.OpUpdate, Key: f.key, Pos: uint64(i), RowJSON: f.doc}
		id := bus.DocumentID(f.key)
		ds, err := r.next.Map(ch)
		if err != nil {
			failed[id] = err
			continue
		}
		docs[id] = ds
	}
	return docs, failed, nil
}
