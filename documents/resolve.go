package documents

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/walsearch/walsearch/bus"
)

// Plan is a definition checked against the catalog: every table, column
// and key resolved.
type Plan struct {
	// Index is the index the documents are written to: the root table's.
	Index string
	Root  *Node
	// Nodes lists every node, the root first, each before its children.
	Nodes []*Node
}

// Node is one table of a plan.
type Node struct {
	// Name is the field the node takes in its parent ("" for the root);
	// Path the dotted path from the root, for messages.
	Name, Path string
	Table      *TableInfo
	Kind       Kind
	Fields     []Field
	Order      []OrderColumn
	Parent     *Node
	Children   []*Node
	// The link to the parent. One: Parent.ParentCols reference this
	// table's ChildCols. Many: this table's ChildCols reference the
	// parent's ParentCols. Many through: Through's ThroughParent
	// columns reference ParentCols, its ThroughChild columns reference
	// this table's ChildCols.
	ParentCols, ChildCols           []string
	Through                         *TableInfo
	ThroughParentCols, ThroughChild []string
}

// Field is a column and its name in the document.
type Field struct {
	Column, Name string
}

// OrderColumn is one column of a many relation's order.
type OrderColumn struct {
	Column string
	Desc   bool
}

// Tables lists every table the plan reads, join tables included, as
// "schema.table", without repeats.
func (p *Plan) Tables() []string {
	var out []string
	add := func(t *TableInfo) {
		if t != nil && !slices.Contains(out, t.QualifiedName()) {
			out = append(out, t.QualifiedName())
		}
	}
	for _, n := range p.Nodes {
		add(n.Table)
		add(n.Through)
	}
	return out
}

// qualify turns "table" or "schema.table" into "schema.table".
func qualify(name string) (string, error) {
	schema, table, err := bus.ParseTable(strings.TrimSpace(name))
	if err != nil {
		return "", err
	}
	return schema + "." + table, nil
}

// Resolve checks d against the catalog and returns its plan. index is the
// name of the folder the definition was found in, which must be the root
// table's index.
func Resolve(index string, d *Definition, cat Catalog) (*Plan, error) {
	r := resolver{cat: cat}
	root := r.table("table", d.Table)
	if root == nil {
		return nil, errors.Join(r.errs...)
	}
	if want := bus.IndexName(root.Schema, root.Name); index != want {
		return nil, fmt.Errorf("a definition of root table %s belongs in the folder %s (its index), not %s", root.QualifiedName(), want, index)
	}
	if len(root.Key) == 0 {
		r.errs = append(r.errs, fmt.Errorf("table %s: has no primary key; a document's id is its root row's primary key", root.QualifiedName()))
	}
	for _, k := range root.Key {
		if c, _ := root.column(k); !idType(c.Type) {
			r.fail("table %s: primary key column %s is of type %s; a root's key must be an integer, numeric, text or uuid column, whose document id reads the same from the log and from a query", root.QualifiedName(), k, c.Type)
		}
	}
	p := &Plan{Index: index}
	p.Root = &Node{Table: root, Fields: r.fields("", root, d.Columns, d.As)}
	p.Nodes = append(p.Nodes, p.Root)
	r.relations(p, p.Root, d.Relations, []string{root.QualifiedName()})
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	return p, nil
}

type resolver struct {
	cat  Catalog
	errs []error
}

func (r *resolver) fail(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

// table looks a table up; at names the key for messages.
func (r *resolver) table(at, name string) *TableInfo {
	q, err := qualify(name)
	if err != nil {
		r.fail("%s: %w", at, err)
		return nil
	}
	t := r.cat[q]
	if t == nil {
		r.fail("%s: table %s does not exist (or is not visible to the configured user)", at, q)
	}
	return t
}

// fields resolves a column list (all columns when empty) and its renames.
func (r *resolver) fields(at string, t *TableInfo, cols []string, as map[string]string) []Field {
	if len(cols) == 0 {
		for _, c := range t.Columns {
			cols = append(cols, c.Name)
		}
	}
	var out []Field
	for _, c := range cols {
		if _, ok := t.column(c); !ok {
			r.fail("%scolumns: %s has no column %q", at, t.QualifiedName(), c)
			continue
		}
		name := c
		if f, ok := as[c]; ok {
			name = f
		}
		out = append(out, Field{Column: c, Name: name})
	}
	for c := range as {
		if !slices.Contains(cols, c) {
			r.fail("%sas: %q is not among the columns taken from %s", at, c, t.QualifiedName())
		}
	}
	return out
}

// relations resolves the relations of parent; path lists the tables from
// the root to parent, to find cycles.
func (r *resolver) relations(p *Plan, parent *Node, rels []Relation, path []string) {
	names := map[string]bool{}
	for _, f := range parent.Fields {
		names[f.Name] = true
	}
	for i := range rels {
		rel := &rels[i]
		at := rel.Name
		if parent.Path != "" {
			at = parent.Path + "." + rel.Name
		}
		if names[rel.Name] {
			r.fail("%s: the name is also a column's field of %s", at, parent.Table.QualifiedName())
		}
		names[rel.Name] = true
		t := r.table(at+".table", rel.Table)
		if t == nil {
			continue
		}
		n := &Node{Name: rel.Name, Path: at, Table: t, Kind: rel.Kind, Parent: parent}
		n.Fields = r.fields(at+".", t, rel.Columns, rel.As)
		if len(t.Key) == 0 {
			r.fail("%s: table %s has no primary key; its changes could not be told apart", at, t.QualifiedName())
		}
		var through []string
		if rel.Through != "" {
			n.Through = r.table(at+".through", rel.Through)
			if n.Through == nil {
				continue
			}
			through = append(through, n.Through.QualifiedName())
		}
		for _, q := range append(through, t.QualifiedName()) {
			if i := slices.Index(path, q); i >= 0 {
				r.fail("%s: %s appears twice on the path %s → %s: relations form a cycle; a definition is a tree whose tables each appear once on any path from the root",
					at, q, strings.Join(path, " → "), strings.Join(append(through, t.QualifiedName()), " → "))
				continue
			}
		}
		switch {
		case rel.Kind == One:
			n.ParentCols, n.ChildCols = r.link(at, "foreign_key", "references", parent.Table, rel.ForeignKey, t, rel.References)
		case n.Through != nil:
			n.ThroughParentCols, n.ParentCols = r.link(at, "foreign_key", "references", n.Through, rel.ForeignKey, parent.Table, rel.References)
			n.ThroughChild, n.ChildCols = r.link(at, "through_key", "through_references", n.Through, rel.ThroughKey, t, rel.ThroughReferences)
		default:
			n.ChildCols, n.ParentCols = r.link(at, "foreign_key", "references", t, rel.ForeignKey, parent.Table, rel.References)
		}
		for _, o := range rel.OrderBy {
			col, desc, _ := parseOrder(o) // checked by Parse
			if _, ok := t.column(col); !ok {
				r.fail("%s.order_by: %s has no column %q", at, t.QualifiedName(), col)
			}
			n.Order = append(n.Order, OrderColumn{Column: col, Desc: desc})
		}
		r.identity(n)
		parent.Children = append(parent.Children, n)
		p.Nodes = append(p.Nodes, n)
		r.relations(p, n, rel.Relations, append(slices.Clip(path), append(through, t.QualifiedName())...))
	}
}

// idType reports whether a key column of type t (as format_type prints
// it) gives the same document id from the log as from to_json.
func idType(t string) bool {
	base, _, _ := strings.Cut(t, "(")
	switch base {
	case "smallint", "integer", "bigint", "numeric", "text", "character varying", "uuid":
		return true
	}
	return false
}

// link resolves a reference from table from (columns fk) to table to
// (columns ref). Given no columns, it finds the one foreign key of from
// that references to in the catalog; given fk and no ref, ref is to's
// primary key. It returns fk and ref.
func (r *resolver) link(at, fkName, refName string, from *TableInfo, fk []string, to *TableInfo, ref []string) ([]string, []string) {
	if len(fk) == 0 {
		var found []ForeignKey
		for _, f := range from.ForeignKeys {
			if f.RefSchema == to.Schema && f.RefTable == to.Name && (len(ref) == 0 || slices.Equal(f.RefColumns, ref)) {
				found = append(found, f)
			}
		}
		switch len(found) {
		case 0:
			r.fail("%s: no foreign key of %s references %s; add one, or name the columns with %s (and %s)",
				at, from.QualifiedName(), to.QualifiedName(), fkName, refName)
			return nil, nil
		case 1:
			return found[0].Columns, found[0].RefColumns
		default:
			var list []string
			for _, f := range found {
				list = append(list, fmt.Sprintf("%s (%s)", f.Name, strings.Join(f.Columns, ", ")))
			}
			r.fail("%s: %d foreign keys of %s reference %s: %s; say which with %s",
				at, len(found), from.QualifiedName(), to.QualifiedName(), strings.Join(list, ", "), fkName)
			return nil, nil
		}
	}
	if len(ref) == 0 {
		ref = to.Key
	}
	ok := true
	for _, c := range fk {
		if _, has := from.column(c); !has {
			r.fail("%s.%s: %s has no column %q", at, fkName, from.QualifiedName(), c)
			ok = false
		}
	}
	for _, c := range ref {
		if _, has := to.column(c); !has {
			r.fail("%s.%s: %s has no column %q", at, refName, to.QualifiedName(), c)
			ok = false
		}
	}
	if !ok {
		return nil, nil
	}
	if len(fk) != len(ref) {
		r.fail("%s: %s has %d columns but %s %d (%s)", at, fkName, len(fk), refName, len(ref), strings.Join(ref, ", "))
		return nil, nil
	}
	if !to.unique(ref) {
		r.fail("%s.%s: %s (%s) is not a primary key or unique constraint of %s, so a reference could match several rows",
			at, refName, strings.Join(ref, ", "), to.QualifiedName(), to.QualifiedName())
		return nil, nil
	}
	return fk, ref
}

// identity checks that a deleted row, or one an update moves to another
// parent, still tells which parent it left: the columns linking it to its
// parent must be in its table's replica identity.
func (r *resolver) identity(n *Node) {
	t, cols, what := n.Table, n.ChildCols, "links its rows to"
	switch {
	case n.Through != nil:
		t, cols, what = n.Through, n.ThroughParentCols, "links its rows to"
	case n.Kind == One:
		what = "is referenced by"
	}
	if len(cols) == 0 || t.identityCovers(cols) {
		return
	}
	r.fail("%s: table %s's REPLICA IDENTITY does not include %s, the columns that %s %s, so deleting a row (or moving it to another parent) could not update the document it leaves; run ALTER TABLE %s REPLICA IDENTITY FULL (or USING INDEX of a unique index that includes them)",
		n.Path, t.QualifiedName(), strings.Join(cols, ", "), what, n.Parent.Table.QualifiedName(), quoteTable(t))
}
