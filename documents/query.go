package documents

import (
	"fmt"
	"strconv"
	"strings"
)

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteTable quotes schema.table.
func quoteTable(t *TableInfo) string { return quoteIdent(t.Schema) + "." + quoteIdent(t.Name) }

// quoteLiteral quotes a string literal.
func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// queries holds the SQL generated from a plan.
type queries struct {
	// rebuild reads the documents of a batch of root keys: parameters are
	// one text array per root key column; rows are (key as a JSON array,
	// document).
	rebuild string
	// entries say, per changed table, how to find the roots a row affects.
	entries map[string][]entry
}

// entry is one way a changed table's rows lead to root keys.
type entry struct {
	// cols are the changed row's columns whose values (old and new) are
	// looked up.
	cols []string
	// direct: the values are the root key itself, no query needed.
	direct bool
	// query finds the root keys: parameters are one text array per
	// column of cols; rows are root keys as JSON arrays.
	query string
	// root: the changed table is the root; its key is the root key.
	root bool
}

// aliases hands out table aliases.
type aliases struct{ n int }

func (a *aliases) next() string { a.n++; return "t" + strconv.Itoa(a.n) }

// buildQueries generates the plan's SQL.
func buildQueries(p *Plan) *queries {
	q := &queries{entries: map[string][]entry{}}
	var al aliases
	root := p.Root
	q.rebuild = "SELECT json_build_array(" + cols("t0", root.Table.Key) + ")::text, " + object(&al, root, "t0") +
		" FROM " + quoteTable(root.Table) + " t0 WHERE " + inValues("t0", root.Table, root.Table.Key, 1)
	add := func(t *TableInfo, e entry) {
		q.entries[t.QualifiedName()] = append(q.entries[t.QualifiedName()], e)
	}
	add(root.Table, entry{cols: root.Table.Key, root: true})
	for _, n := range p.Nodes[1:] {
		// A row of the node's table: its ChildCols match the parent's
		// ParentCols (through the join table for many-to-many).
		if n.Through == nil {
			add(n.Table, upward(n.Parent, n.ChildCols, n.ParentCols, nil))
		} else {
			add(n.Table, upward(n.Parent, n.ChildCols, n.ParentCols, n))
			add(n.Through, upward(n.Parent, n.ThroughParentCols, n.ParentCols, nil))
		}
	}
	return q
}

// upward is the entry of rows whose columns cols equal parent's
// parentCols, or, with via, equal via's join table's ThroughChild columns.
func upward(parent *Node, cols, parentCols []string, via *Node) entry {
	root := parentIsRoot(parent)
	if via == nil && root && sameOrder(parentCols, parent.Table.Key) {
		return entry{cols: cols, direct: true}
	}
	// Join from the root down to parent.
	var chain []*Node
	for n := parent; n != nil; n = n.Parent {
		chain = append([]*Node{n}, chain...)
	}
	var b strings.Builder
	b.WriteString("SELECT DISTINCT json_build_array(" + cols0(chain[0].Table.Key) + ")::text FROM " + quoteTable(chain[0].Table) + " t0")
	prev := "t0"
	for i, n := range chain[1:] {
		a := "u" + strconv.Itoa(i+1)
		if n.Through != nil {
			j := "j" + strconv.Itoa(i+1)
			b.WriteString(" JOIN " + quoteTable(n.Through) + " " + j + " ON " + equal(j, n.ThroughParentCols, prev, n.ParentCols))
			b.WriteString(" JOIN " + quoteTable(n.Table) + " " + a + " ON " + equal(a, n.ChildCols, j, n.ThroughChild))
		} else {
			b.WriteString(" JOIN " + quoteTable(n.Table) + " " + a + " ON " + equal(a, n.ChildCols, prev, n.ParentCols))
		}
		prev = a
	}
	if via != nil {
		b.WriteString(" JOIN " + quoteTable(via.Through) + " jv ON " + equal("jv", via.ThroughParentCols, prev, parentCols))
		b.WriteString(" WHERE " + inValues("jv", via.Through, via.ThroughChild, 1))
		return entry{cols: cols, query: b.String()}
	}
	b.WriteString(" WHERE " + inValues(prev, parent.Table, parentCols, 1))
	return entry{cols: cols, query: b.String()}
}

func parentIsRoot(n *Node) bool { return n.Parent == nil }

func sameOrder(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// cols lists alias.column for each column.
func cols(alias string, names []string) string {
	out := make([]string, len(names))
	for i, c := range names {
		out[i] = alias + "." + quoteIdent(c)
	}
	return strings.Join(out, ", ")
}

func cols0(names []string) string { return cols("t0", names) }

// equal is a.ac[i] = b.bc[i] for every i.
func equal(a string, ac []string, b string, bc []string) string {
	out := make([]string, len(ac))
	for i := range ac {
		out[i] = a + "." + quoteIdent(ac[i]) + " = " + b + "." + quoteIdent(bc[i])
	}
	return strings.Join(out, " AND ")
}

// inValues is (alias.c1, …) IN (the tuples of parameters $first… as text
// arrays, each cast to its column's type).
func inValues(alias string, t *TableInfo, names []string, first int) string {
	arrays := make([]string, len(names))
	for i, c := range names {
		col, _ := t.column(c)
		arrays[i] = "$" + strconv.Itoa(first+i) + "::text[]::" + col.Type + "[]"
	}
	return "(" + cols(alias, names) + ") IN (SELECT * FROM unnest(" + strings.Join(arrays, ", ") + "))"
}

// maxPairs is how many key/value pairs one json_build_object call takes
// (functions take at most 100 arguments).
const maxPairs = 50

// object is the JSON object of node n's row at alias a, its relations
// embedded.
func object(al *aliases, n *Node, a string) string {
	var pairs []string
	for _, f := range n.Fields {
		pairs = append(pairs, quoteLiteral(f.Name)+", "+a+"."+quoteIdent(f.Column))
	}
	for _, c := range n.Children {
		pairs = append(pairs, quoteLiteral(c.Name)+", "+related(al, c, a))
	}
	if len(pairs) <= maxPairs {
		return "json_build_object(" + strings.Join(pairs, ", ") + ")"
	}
	var parts []string
	for len(pairs) > 0 {
		k := min(maxPairs, len(pairs))
		parts = append(parts, "jsonb_build_object("+strings.Join(pairs[:k], ", ")+")")
		pairs = pairs[k:]
	}
	return "(" + strings.Join(parts, " || ") + ")::json"
}

// related is the value of relation c of the parent row at alias pa: an
// object or null for one, an array (empty when none) for many.
func related(al *aliases, c *Node, pa string) string {
	a := al.next()
	obj := object(al, c, a)
	if c.Kind == One {
		return "(SELECT " + obj + " FROM " + quoteTable(c.Table) + " " + a + " WHERE " + equal(a, c.ChildCols, pa, c.ParentCols) + ")"
	}
	from := quoteTable(c.Table) + " " + a + " WHERE " + equal(a, c.ChildCols, pa, c.ParentCols)
	if c.Through != nil {
		j := al.next()
		from = quoteTable(c.Through) + " " + j + " JOIN " + quoteTable(c.Table) + " " + a + " ON " +
			equal(a, c.ChildCols, j, c.ThroughChild) + " WHERE " + equal(j, c.ThroughParentCols, pa, c.ParentCols)
	}
	var order []string
	for _, o := range c.Order {
		s := a + "." + quoteIdent(o.Column)
		if o.Desc {
			s += " DESC"
		}
		order = append(order, s)
	}
	for _, k := range c.Table.Key {
		order = append(order, a+"."+quoteIdent(k))
	}
	return fmt.Sprintf("coalesce((SELECT json_agg(%s ORDER BY %s) FROM %s), '[]'::json)", obj, strings.Join(order, ", "), from)
}
