package documents

import (
	"strings"
	"testing"
)

// shop is the catalog of the example schema.
func shop() Catalog {
	tbl := func(name string, key []string, ident byte, cols ...string) *TableInfo {
		t := &TableInfo{Schema: "public", Name: name, Key: key, Unique: [][]string{key}, ReplicaIdentity: ident}
		for _, c := range cols {
			t.Columns = append(t.Columns, ColumnInfo{Name: c, Type: "bigint"})
		}
		switch ident {
		case 'd':
			t.IdentityColumns = key
		case 'f':
			t.IdentityColumns = cols
		}
		return t
	}
	fk := func(name string, cols []string, ref string, refCols ...string) ForeignKey {
		return ForeignKey{Name: name, Columns: cols, RefSchema: "public", RefTable: ref, RefColumns: refCols}
	}
	customers := tbl("customers", []string{"id"}, 'd', "id", "name", "email")
	orders := tbl("orders", []string{"id"}, 'd', "id", "customer_id", "status", "billing_id", "shipping_id")
	orders.ForeignKeys = []ForeignKey{fk("orders_customer_fk", []string{"customer_id"}, "customers", "id"),
		fk("orders_billing_fk", []string{"billing_id"}, "addresses", "id"), fk("orders_shipping_fk", []string{"shipping_id"}, "addresses", "id")}
	items := tbl("order_items", []string{"id"}, 'f', "id", "order_id", "product_id", "position")
	items.ForeignKeys = []ForeignKey{fk("items_order_fk", []string{"order_id"}, "orders", "id"), fk("items_product_fk", []string{"product_id"}, "products", "id")}
	itemsDefault := tbl("order_lines", []string{"id"}, 'd', "id", "order_id")
	itemsDefault.ForeignKeys = []ForeignKey{fk("lines_order_fk", []string{"order_id"}, "orders", "id")}
	products := tbl("products", []string{"id"}, 'd', "id", "name")
	tags := tbl("tags", []string{"id"}, 'd', "id", "name")
	pt := tbl("product_tags", []string{"product_id", "tag_id"}, 'd', "product_id", "tag_id")
	pt.ForeignKeys = []ForeignKey{fk("pt_product_fk", []string{"product_id"}, "products", "id"), fk("pt_tag_fk", []string{"tag_id"}, "tags", "id")}
	addresses := tbl("addresses", []string{"id"}, 'd', "id", "city")
	nokey := tbl("events", nil, 'd', "at", "what")
	byTime := tbl("readings", []string{"at"}, 'd', "at", "value")
	byTime.Columns[0].Type = "timestamp with time zone"
	cat := Catalog{}
	for _, t := range []*TableInfo{customers, orders, items, itemsDefault, products, tags, pt, addresses, nokey, byTime} {
		cat[t.QualifiedName()] = t
	}
	return cat
}

const ordersYAML = `
table: orders
columns: [id, status]
as: {status: state}
relations:
  - name: customer
    table: customers
    kind: one
    columns: [id, name]
  - name: items
    table: order_items
    kind: many
    order_by: [position desc]
    relations:
      - name: product
        table: products
        kind: one
        relations:
          - name: tags
            table: tags
            kind: many
            through: product_tags
            order_by: [name]
`

func TestParseAndResolve(t *testing.T) {
	cases := []struct {
		name, index, yaml string
		want              []string // substrings of the error; none: valid
	}{
		{"example", "orders", ordersYAML, nil},
		{"schema-qualified root", "orders", "table: public.orders", nil},
		{"explicit keys", "orders", `
table: orders
relations:
  - {name: billing, table: addresses, kind: one, foreign_key: [billing_id]}
  - {name: shipping, table: addresses, kind: one, foreign_key: [shipping_id], references: [id]}
  - {name: tags, table: tags, kind: many, through: product_tags, foreign_key: [product_id], through_key: [tag_id]}`, nil},
		{"empty", "orders", "", []string{"table: required"}},
		{"not yaml", "orders", "table: [", []string{"parse"}},
		{"unknown field", "orders", "table: orders\ncolums: [id]", []string{"parse", "colums"}},
		{"unknown table", "orders", "table: nope", []string{"table public.nope does not exist"}},
		{"wrong folder", "customers", "table: orders", []string{"belongs in the folder orders"}},
		{"unknown column", "orders", "table: orders\ncolumns: [id, nope]", []string{`has no column "nope"`}},
		{"rename of a column not taken", "orders", "table: orders\ncolumns: [id]\nas: {status: s}", []string{`"status" is not among the columns`}},
		{"root without a key", "events", "table: events", []string{"has no primary key"}},
		{"root keyed by a timestamp", "readings", "table: readings", []string{"primary key column at is of type timestamp with time zone"}},
		{"bad kind", "orders", "table: orders\nrelations: [{name: c, table: customers, kind: many-to-one}]", []string{"kind: want one"}},
		{"missing name", "orders", "table: orders\nrelations: [{table: customers, kind: one}]", []string{"name: required"}},
		{"name twice", "orders", "table: orders\nrelations: [{name: c, table: customers, kind: one}, {name: c, table: customers, kind: one}]", []string{"name used twice"}},
		{"name clashes with a column", "orders", "table: orders\nrelations: [{name: status, table: customers, kind: one}]", []string{"also a column's field"}},
		{"no foreign key", "orders", "table: orders\nrelations: [{name: p, table: products, kind: one}]", []string{"no foreign key of public.orders references public.products"}},
		{"ambiguous foreign key", "orders", "table: orders\nrelations: [{name: a, table: addresses, kind: one}]", []string{"2 foreign keys", "orders_billing_fk (billing_id)", "foreign_key"}},
		{"foreign key of unknown columns", "orders", "table: orders\nrelations: [{name: a, table: addresses, kind: one, foreign_key: [nope]}]", []string{`foreign_key: public.orders has no column "nope"`}},
		{"reference not unique", "orders", "table: orders\nrelations: [{name: a, table: addresses, kind: one, foreign_key: [billing_id], references: [city]}]", []string{"not a primary key or unique constraint"}},
		{"key lengths differ", "orders", "table: orders\nrelations: [{name: a, table: addresses, kind: one, foreign_key: [billing_id, shipping_id]}]", []string{"has 2 columns but references 1"}},
		{"cycle", "orders", `
table: orders
relations:
  - name: items
    table: order_items
    kind: many
    relations: [{name: order, table: orders, kind: one}]`, []string{"public.orders appears twice", "cycle"}},
		{"replica identity", "orders", "table: orders\nrelations: [{name: lines, table: order_lines, kind: many}]",
			[]string{"REPLICA IDENTITY does not include order_id", "ALTER TABLE \"public\".\"order_lines\" REPLICA IDENTITY FULL"}},
		{"order_by on one", "orders", "table: orders\nrelations: [{name: c, table: customers, kind: one, order_by: [name]}]", []string{"only a kind many relation"}},
		{"bad order_by", "orders", "table: orders\nrelations: [{name: i, table: order_items, kind: many, order_by: [position sideways]}]", []string{"column desc"}},
		{"order_by unknown column", "orders", "table: orders\nrelations: [{name: i, table: order_items, kind: many, order_by: [nope]}]", []string{`order_by: public.order_items has no column "nope"`}},
		{"through on one", "orders", "table: orders\nrelations: [{name: c, table: customers, kind: one, through: product_tags}]", []string{"through is for kind many"}},
		{"too deep", "orders", deep(MaxDepth + 1), []string{"nested deeper"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Parse("orders/document.yaml", []byte(c.yaml))
			var p *Plan
			if err == nil {
				p, err = Resolve(c.index, d, shop())
			}
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				if p.Index != c.index || p.Root == nil {
					t.Fatalf("plan %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error with %q, got none", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestPlanOfExample(t *testing.T) {
	d, err := Parse("orders/document.yaml", []byte(ordersYAML))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Resolve("orders", d, shop())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(p.Tables(), " "), "public.orders public.customers public.order_items public.products public.tags public.product_tags"; got != want {
		t.Errorf("tables %q, want %q", got, want)
	}
	items := p.Nodes[2]
	if items.Path != "items" || strings.Join(items.ChildCols, ",") != "order_id" || strings.Join(items.ParentCols, ",") != "id" {
		t.Errorf("items link %q→%q", items.ChildCols, items.ParentCols)
	}
	tags := p.Nodes[4]
	if tags.Path != "items.product.tags" || strings.Join(tags.ThroughParentCols, ",") != "product_id" || strings.Join(tags.ThroughChild, ",") != "tag_id" {
		t.Errorf("tags link %+v", tags)
	}
	q := buildQueries(p)
	for table, n := range map[string]int{"public.orders": 1, "public.customers": 1, "public.order_items": 1, "public.products": 1, "public.tags": 1, "public.product_tags": 1} {
		if len(q.entries[table]) != n {
			t.Errorf("%s: %d entries, want %d", table, len(q.entries[table]), n)
		}
	}
	if e := q.entries["public.order_items"][0]; !e.direct || e.cols[0] != "order_id" {
		t.Errorf("an item's order id is its root key: %+v", e)
	}
	if e := q.entries["public.customers"][0]; e.direct || !strings.Contains(e.query, `WHERE (t0."customer_id") IN`) {
		t.Errorf("a customer's orders are found by a query: %+v", e)
	}
	for _, want := range []string{`'state', t0."status"`, `ORDER BY t2."position" DESC, t2."id"`, `"public"."product_tags"`, `'[]'::json`} {
		if !strings.Contains(q.rebuild, want) {
			t.Errorf("rebuild query lacks %s:\n%s", want, q.rebuild)
		}
	}
}

func FuzzParseResolve(f *testing.F) {
	f.Add([]byte(ordersYAML))
	f.Add([]byte("table: orders\nrelations: [{name: a, table: addresses, kind: one}]"))
	f.Add([]byte("table: orders\nrelations: &a [{name: x, table: orders, kind: one, relations: *a}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("f/document.yaml", data)
		if err != nil {
			return
		}
		p, err := Resolve("orders", d, shop())
		if err != nil {
			return
		}
		q := buildQueries(p)
		if q.rebuild == "" || len(q.entries["public.orders"]) == 0 {
			t.Fatalf("a valid plan has a rebuild query and a root entry: %+v", q)
		}
	})
}

// deep is a definition whose relations nest n levels (YAML's flow style).
func deep(n int) string {
	return "table: orders\nrelations: " + strings.Repeat(`[{name: r, table: customers, kind: one, relations: `, n) + "[]" + strings.Repeat("}]", n)
}
