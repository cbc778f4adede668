package documents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/transform"
)

// assemblerOn loads the definition into an Assembler over a fresh
// database made by setup.
func assemblerOn(t *testing.T, setup, index, def string) (*Assembler, *pgx.Conn, string) {
	t.Helper()
	ctx := context.Background()
	url := requirePG(t).NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, setup); err != nil {
		t.Fatal(err)
	}
	cat, err := LoadCatalog(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(index+"/document.yaml", []byte(def))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Resolve(index, d, cat)
	if err != nil {
		t.Fatal(err)
	}
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }
	a, err := NewAssembler(Config{Connect: connect}, []*Plan{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, conn, url
}

// collect runs one round of changes and returns the documents it emitted.
func collect(ctx context.Context, a *Assembler, changes ...*bus.Change) ([]*bus.Doc, []transform.Failure, error) {
	var docs []*bus.Doc
	failed, err := a.MapRound(ctx, changes, func(ds []*bus.Doc) error { docs = append(docs, ds...); return nil })
	return docs, failed, err
}

const ordersSchema = `
CREATE TABLE customers (id int PRIMARY KEY, name text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);
INSERT INTO customers VALUES (1, 'Ada');
INSERT INTO orders VALUES (10, 1), (11, 1);`

const ordersWithCustomer = "table: orders\nrelations: [{name: customer, table: customers, kind: one, columns: [name]}]"

// TestRebuildWaitsUntilItsSnapshotSeesTheChange: a change whose
// transaction the log has but PostgreSQL does not show to new snapshots
// yet (the moment between writing a commit and publishing it, long under
// synchronous replication) is rebuilt only once it is visible, with a
// version past its commit.
func TestRebuildWaitsUntilItsSnapshotSeesTheChange(t *testing.T) {
	ctx := context.Background()
	a, _, url := assemblerOn(t, ordersSchema, "orders", ordersWithCustomer)
	writer, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(ctx)
	// The transaction is open, so it stands for one not visible yet.
	tx, err := writer.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var xid uint32
	if err := tx.QueryRow(ctx, `UPDATE customers SET name = 'Ada Lovelace' WHERE id = 1 RETURNING txid_current()::bigint::int8 % 4294967296`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	change := &bus.Change{V: bus.SchemaVersion, Op: bus.OpUpdate, Schema: "public", Table: "customers",
		Key: []bus.Column{{Name: "id", Value: json.Number("1")}}, Row: map[string]any{"id": json.Number("1"), "name": "Ada Lovelace"}, Xid: xid}
	type result struct {
		docs []*bus.Doc
		err  error
	}
	done := make(chan result, 1)
	go func() {
		docs, _, err := collect(ctx, a, change)
		done <- result{docs, err}
	}()
	// While the transaction is open, the rebuild waits for it (it polls
	// every 200ms at most, so a second shows it is waiting).
	select {
	case r := <-done:
		t.Fatalf("rebuilt before the change was visible: %v %v", r.docs, r.err)
	case <-time.After(time.Second):
	}
	var commitLSN bus.LSN
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var lsnText string
	if err := writer.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsnText); err != nil {
		t.Fatal(err)
	}
	if commitLSN, err = bus.ParseLSN(lsnText); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.docs) != 2 {
		t.Fatalf("want both orders of the customer rebuilt, got %d documents", len(r.docs))
	}
	for _, d := range r.docs {
		var doc struct {
			Customer struct{ Name string }
		}
		if err := json.Unmarshal(d.Source, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Customer.Name != "Ada Lovelace" {
			t.Errorf("order %s: customer %q, want the committed name", d.ID, doc.Customer.Name)
		}
		// The version was read after the commit was visible, so after
		// its commit record; commitLSN was read later still, and no
		// other writer runs.
		if d.Version > uint64(commitLSN) || d.Version == 0 {
			t.Errorf("order %s: version %s is not between the commit and %s", d.ID, bus.LSN(d.Version), commitLSN)
		}
	}
}

// TestLaterRebuildsHaveHigherVersions: a rebuild that starts after another
// never gets a lower version, so a later change's document always wins.
func TestLaterRebuildsHaveHigherVersions(t *testing.T) {
	ctx := context.Background()
	a, conn, _ := assemblerOn(t, ordersSchema, "orders", ordersWithCustomer)
	change := &bus.Change{V: bus.SchemaVersion, Op: bus.OpUpdate, Schema: "public", Table: "orders",
		Key: []bus.Column{{Name: "id", Value: json.Number("10")}}, Row: map[string]any{"id": json.Number("10"), "customer_id": json.Number("1")}}
	var last uint64
	for i := range 3 {
		docs, failed, err := collect(ctx, a, change)
		if err != nil || len(failed) > 0 || len(docs) != 1 {
			t.Fatalf("round %d: %v %v %v", i, docs, failed, err)
		}
		if docs[0].Version <= last && i > 0 {
			t.Fatalf("round %d: version %d after %d", i, docs[0].Version, last)
		}
		last = docs[0].Version
		if _, err := conn.Exec(ctx, "UPDATE customers SET name = name || '!' WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
	}
	// A root that is gone is deleted, at a version past the last one.
	if _, err := conn.Exec(ctx, "DELETE FROM orders WHERE id = 10"); err != nil {
		t.Fatal(err)
	}
	docs, _, err := collect(ctx, a, change)
	if err != nil || len(docs) != 1 || docs[0].Op != bus.DocDelete || docs[0].Version <= last {
		t.Fatalf("want a delete of order 10 past version %d, got %+v (%v)", last, docs, err)
	}
}

// TestShopExampleLoadsAndBuilds: the definitions in examples/shop fit
// their schema, and build the documents docs/documents.md shows.
func TestShopExampleLoadsAndBuilds(t *testing.T) {
	ctx := context.Background()
	schema, err := os.ReadFile("../examples/shop/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	url := requirePG(t).NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, string(schema)+`
INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com');
INSERT INTO products VALUES (1, 'pen', 1.50), (2, 'ink', 4.00);
INSERT INTO tags VALUES (1, 'office'), (2, 'blue');
INSERT INTO product_tags VALUES (2, 2), (2, 1);
INSERT INTO orders VALUES (10, 1, 'paid', '2026-01-02 03:04:05+00');
INSERT INTO order_items VALUES (100, 10, 1, 'SKU-1', 2, 1), (101, 10, 2, 'SKU-2', 1, 3);`); err != nil {
		t.Fatal(err)
	}
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }
	plans, err := Load(ctx, "../examples/shop/scripts", connect)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 2 || plans[0].Index != "orders" || plans[1].Index != "products" {
		t.Fatalf("plans %v", plans)
	}
	a, err := NewAssembler(Config{Connect: connect}, plans, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	read := &bus.Change{V: bus.SchemaVersion, Op: bus.OpRead, Schema: "public", Table: "orders",
		Key: []bus.Column{{Name: "id", Value: json.Number("10")}}, RowJSON: json.RawMessage(`{"id":10}`)}
	docs, failed, err := collect(ctx, a, read)
	if err != nil || len(failed) > 0 || len(docs) != 1 {
		t.Fatalf("%v %v %v", docs, failed, err)
	}
	want := `{"id" : 10, "status" : "paid", "placed_at" : "2026-01-02T03:04:05+00:00", ` +
		`"customer" : {"id" : 1, "name" : "Ada", "email" : "ada@example.com"}, ` +
		`"items" : [{"id" : 101, "position" : 1, "sku" : "SKU-2", "qty" : 3, "product" : {"id" : 2, "name" : "ink", "price" : 4.00, "tags" : [{"name" : "blue"}, {"name" : "office"}]}}, ` +
		`{"id" : 100, "position" : 2, "sku" : "SKU-1", "qty" : 1, "product" : {"id" : 1, "name" : "pen", "price" : 1.50, "tags" : []}}]}`
	if got := string(docs[0].Source); got != want {
		t.Fatalf("document\n%s\nwant\n%s", got, want)
	}
	if docs[0].Index != "orders" || docs[0].ID != "10" || docs[0].Op != bus.DocIndex {
		t.Fatalf("document event %+v", docs[0])
	}
}

// TestBurstIsCoalescedAndBatched: a customer renamed ten times in one
// round, with 1,202 orders, rebuilds each order once, 500 documents at a
// time, handing each batch on before reading the next.
func TestBurstIsCoalescedAndBatched(t *testing.T) {
	ctx := context.Background()
	a, conn, _ := assemblerOn(t, ordersSchema+`
INSERT INTO orders SELECT g, 1 FROM generate_series(12, 1211) g;`, "orders", ordersWithCustomer)
	var changes []*bus.Change
	for i := range 10 {
		name := fmt.Sprintf("Ada %d", i)
		if _, err := conn.Exec(ctx, "UPDATE customers SET name = $1 WHERE id = 1", name); err != nil {
			t.Fatal(err)
		}
		changes = append(changes, &bus.Change{V: bus.SchemaVersion, Op: bus.OpUpdate, Schema: "public", Table: "customers",
			Key: []bus.Column{{Name: "id", Value: json.Number("1")}}, Row: map[string]any{"id": json.Number("1"), "name": name}})
	}
	var batches []int
	seen := map[string]int{}
	failed, err := a.MapRound(ctx, changes, func(ds []*bus.Doc) error {
		batches = append(batches, len(ds))
		for _, d := range ds {
			seen[d.ID]++
			if !strings.Contains(string(d.Source), `"Ada 9"`) {
				t.Fatalf("order %s: %s, want the last name", d.ID, d.Source)
			}
		}
		return nil
	})
	if err != nil || len(failed) > 0 {
		t.Fatal(err, failed)
	}
	if fmt.Sprint(batches) != "[500 500 202]" {
		t.Errorf("batches %v, want [500 500 202]", batches)
	}
	if len(seen) != 1202 {
		t.Errorf("%d orders rebuilt, want 1202", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("order %s rebuilt %d times", id, n)
		}
	}
}

// failingScript is a fault injected in place of the scripts: it throws for
// one document.
type failingScript struct{ id string }

func (f failingScript) Map(c *bus.Change) ([]*bus.Doc, error) {
	if bus.DocumentID(c.Key) == f.id {
		return nil, errors.New("script threw")
	}
	return transform.Identity{}.Map(c)
}

// TestScriptErrorDeadLettersTheRootsRebuild: a root table's script that
// fails on an assembled document fails that root alone, as a change of the
// root table, which replaying rebuilds again.
func TestScriptErrorDeadLettersTheRootsRebuild(t *testing.T) {
	ctx := context.Background()
	a, _, url := assemblerOn(t, ordersSchema, "orders", ordersWithCustomer)
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }
	b, err := NewAssembler(Config{Connect: connect}, []*Plan{a.plans[0].plan}, failingScript{id: "11"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	change := &bus.Change{V: bus.SchemaVersion, Op: bus.OpUpdate, Schema: "public", Table: "customers",
		Key: []bus.Column{{Name: "id", Value: json.Number("1")}}, Row: map[string]any{"id": json.Number("1"), "name": "Ada"}}
	docs, failed, err := collect(ctx, b, change)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || docs[0].ID != "10" {
		t.Fatalf("want order 10's document alone, got %v", docs)
	}
	if len(failed) != 1 || failed[0].Change.Table != "orders" || bus.DocumentID(failed[0].Change.Key) != "11" ||
		failed[0].Change.Op != bus.OpUpdate || len(failed[0].Change.RowJSON) == 0 {
		t.Fatalf("want order 11's rebuild dead-lettered as a change of orders, got %+v", failed)
	}
}
