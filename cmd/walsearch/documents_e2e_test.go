package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// shopSchema is the example schema: orders embed their customer and their
// items, each item its product, each product its tags.
const shopSchema = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE CASCADE, status text NOT NULL,
  placed_at timestamptz NOT NULL DEFAULT '2026-01-02 03:04:05.123+00');
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2) NOT NULL DEFAULT 1.50);
CREATE TABLE tags (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE product_tags (product_id int REFERENCES products ON DELETE CASCADE, tag_id int REFERENCES tags ON DELETE CASCADE,
  PRIMARY KEY (product_id, tag_id));
CREATE TABLE order_items (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders ON DELETE CASCADE,
  product_id int REFERENCES products, position int NOT NULL, qty int NOT NULL);
-- A deleted or moved item must say which order it left.
ALTER TABLE order_items REPLICA IDENTITY FULL;
`

const ordersDefinition = `
table: orders
columns: [id, status, placed_at]
relations:
  - name: customer
    table: customers
    kind: one
  - name: items
    table: order_items
    kind: many
    columns: [id, position, qty]
    order_by: [position]
    relations:
      - name: product
        table: products
        kind: one
        relations:
          - name: tags
            table: tags
            kind: many
            through: product_tags
            columns: [name]
            order_by: [name]
`

const productsDefinition = `
table: products
relations:
  - {name: tags, table: tags, kind: many, through: product_tags, columns: [id, name], order_by: [name desc]}
`

// The oracles: each document as a fresh query of its definition reads it,
// written by hand.
const (
	ordersOracle = `SELECT o.id::text, json_build_object('id', o.id, 'status', o.status, 'placed_at', o.placed_at,
  'customer', (SELECT json_build_object('id', c.id, 'name', c.name) FROM customers c WHERE c.id = o.customer_id),
  'items', coalesce((SELECT json_agg(json_build_object('id', i.id, 'position', i.position, 'qty', i.qty,
      'product', (SELECT json_build_object('id', p.id, 'name', p.name, 'price', p.price,
          'tags', coalesce((SELECT json_agg(json_build_object('name', g.name) ORDER BY g.name, g.id)
                   FROM product_tags pt JOIN tags g ON g.id = pt.tag_id WHERE pt.product_id = p.id), '[]'))
        FROM products p WHERE p.id = i.product_id)) ORDER BY i.position, i.id)
    FROM order_items i WHERE i.order_id = o.id), '[]'))::text FROM orders o`
	productsOracle = `SELECT p.id::text, json_build_object('id', p.id, 'name', p.name, 'price', p.price,
  'tags', coalesce((SELECT json_agg(json_build_object('id', g.id, 'name', g.name) ORDER BY g.name DESC, g.id)
    FROM product_tags pt JOIN tags g ON g.id = pt.tag_id WHERE pt.product_id = p.id), '[]'),
  'tag_count', (SELECT count(*) FROM product_tags pt WHERE pt.product_id = p.id))::text FROM products p`
)

// productsScript runs on each assembled product document.
const productsScript = `function transform(doc, ctx) { doc.tag_count = doc.tags.length; return doc; }`

// runDocuments starts walsearch over dbURL capturing only orders and
// products on their own, with both definitions in its scripts folder and
// a script for the products' documents. extra is added to the
// configuration file.
func runDocuments(t *testing.T, dbURL, name string, extra ...string) running {
	t.Helper()
	scripts := t.TempDir()
	for index, def := range map[string]string{"orders": ordersDefinition, "products": productsDefinition} {
		if err := os.MkdirAll(filepath.Join(scripts, index), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(scripts, index, "document.yaml"), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(scripts, "products", "transform.js"), []byte(productsScript), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, natsAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "walsearch.yaml")
	cfg := fmt.Sprintf("data_dir: %s\nscripts_dir: %s\npostgres:\n  url: %s\n  slot: %s\n  publication: %s\n  tables: [orders, products]\napi:\n  listen: %s\nnats:\n  listen: %s\n%s",
		t.TempDir(), scripts, dbURL, name, name, addr, natsAddr, strings.Join(extra, ""))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := running{base: "http://" + addr, natsAddr: natsAddr, cfgPath: cfgPath, p: startWalsearch(t, "run", "--config", cfgPath)}
	waitHealthy(t, r.base, r.p)
	return r
}

// expectedDocs runs an oracle: every document by id.
func expectedDocs(ctx context.Context, conn *pgx.Conn, oracle string) (map[string]any, error) {
	rows, err := conn.Query(ctx, oracle)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]any{}
	for rows.Next() {
		var id, doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, err
		}
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

// indexedDocs reads every document of index (at most 10,000) by id, a
// page of 1,000 at a time in id order.
func indexedDocs(r running, index string) (map[string]any, error) {
	out := map[string]any{}
	for page := 1; ; page++ {
		var sr struct {
			Data []map[string]any `json:"data"`
			Meta struct {
				HasNext bool `json:"has_next"`
			} `json:"meta"`
		}
		body := fmt.Sprintf(`{"index":%q,"page_size":1000,"page":%d,"sort_by":{"id":"asc"}}`, index, page)
		if err := r.apiJSON("POST", "/search", body, &sr); err != nil {
			return nil, err
		}
		for _, d := range sr.Data {
			out[fmt.Sprint(d["id"])] = any(d)
		}
		if !sr.Meta.HasNext {
			return out, nil
		}
	}
}

// docsDiff compares every document with the oracle's; "" when equal.
func docsDiff(want, got map[string]any) string {
	var diffs []string
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s missing (want %v)", id, w))
		case !reflect.DeepEqual(w, g):
			diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v", id, g, w))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s should not be indexed (got %v)", id, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("… %d differences in all", len(diffs)))
	}
	return strings.Join(diffs, "; ")
}

// waitDocuments polls until every document of index equals the oracle's.
func waitDocuments(t *testing.T, r running, conn *pgx.Conn, index, oracle, what string) map[string]any {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(convergeWithin)
	last := ""
	for {
		want, err := expectedDocs(ctx, conn, oracle)
		if err != nil {
			t.Fatal(err)
		}
		got, err := indexedDocs(r, index)
		if err == nil {
			if last = docsDiff(want, got); last == "" {
				return got
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not equal its definition's query within %s: %s", what, index, convergeWithin, last)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestDocumentsFollowEveryRelatedTable: each change of a related table
// rebuilds exactly the documents that embed it.
func TestDocumentsFollowEveryRelatedTable(t *testing.T) {
	dbURL, conn := testDB(t, shopSchema+`
INSERT INTO customers VALUES (1, 'Ada'), (2, 'Alan'), (3, 'Grace');
INSERT INTO products VALUES (1, 'pen'), (2, 'ink'), (3, 'paper');
INSERT INTO tags VALUES (1, 'office'), (2, 'blue'), (3, 'sale');
INSERT INTO product_tags VALUES (1, 1), (2, 1), (2, 2);
INSERT INTO orders VALUES (10, 1, 'new'), (11, 1, 'paid'), (12, 2, 'new'), (13, 3, 'new'), (14, NULL, 'lost');
INSERT INTO order_items VALUES (100, 10, 1, 2, 1), (101, 10, 2, 1, 3), (102, 11, 3, 1, 1), (103, 12, 1, 1, 5), (104, 13, 2, 1, 1);`)
	r := runDocuments(t, dbURL, "documents")
	got := waitDocuments(t, r, conn, "orders", ordersOracle, "snapshot")
	if items := got["10"].(map[string]any)["items"].([]any); len(items) != 2 || items[0].(map[string]any)["id"] != float64(101) {
		t.Fatalf("order 10's items are not ordered by position: %v", items)
	}
	waitDocuments(t, r, conn, "products", productsOracle, "snapshot")

	mustExec(t, conn, `UPDATE customers SET name = 'Ada Lovelace' WHERE id = 1`)
	got = waitDocuments(t, r, conn, "orders", ordersOracle, "a customer renamed")
	for _, id := range []string{"10", "11"} {
		if name := got[id].(map[string]any)["customer"].(map[string]any)["name"]; name != "Ada Lovelace" {
			t.Fatalf("order %s's customer is %v", id, name)
		}
	}
	mustExec(t, conn, `INSERT INTO order_items VALUES (105, 12, 3, 2, 1)`)
	waitDocuments(t, r, conn, "orders", ordersOracle, "an item added")
	mustExec(t, conn, `UPDATE order_items SET qty = 9 WHERE id = 105`)
	waitDocuments(t, r, conn, "orders", ordersOracle, "an item updated")
	mustExec(t, conn, `DELETE FROM order_items WHERE id = 103`)
	waitDocuments(t, r, conn, "orders", ordersOracle, "an item deleted")
	mustExec(t, conn, `UPDATE order_items SET order_id = 13 WHERE id = 102`)
	got = waitDocuments(t, r, conn, "orders", ordersOracle, "an item moved to another order")
	if items := got["11"].(map[string]any)["items"].([]any); len(items) != 0 {
		t.Fatalf("order 11 still lists the item that moved away: %v", items)
	}
	mustExec(t, conn, `INSERT INTO product_tags VALUES (3, 3), (1, 3)`)
	waitDocuments(t, r, conn, "products", productsOracle, "products tagged")
	waitDocuments(t, r, conn, "orders", ordersOracle, "products tagged")
	mustExec(t, conn, `UPDATE tags SET name = 'clearance' WHERE id = 3`)
	waitDocuments(t, r, conn, "products", productsOracle, "a tag renamed")
	waitDocuments(t, r, conn, "orders", ordersOracle, "a tag renamed")
	mustExec(t, conn, `UPDATE orders SET customer_id = 3, status = 'moved' WHERE id = 12`)
	waitDocuments(t, r, conn, "orders", ordersOracle, "an order moved to another customer")
	mustExec(t, conn, `DELETE FROM customers WHERE id = 1`)
	got = waitDocuments(t, r, conn, "orders", ordersOracle, "a customer deleted, with their orders (ON DELETE CASCADE)")
	if _, ok := got["10"]; ok {
		t.Fatal("order 10 outlived its customer")
	}
	mustExec(t, conn, `DELETE FROM product_tags WHERE product_id = 2 AND tag_id = 1`)
	waitDocuments(t, r, conn, "products", productsOracle, "a product untagged")
	waitDocuments(t, r, conn, "orders", ordersOracle, "a product untagged")
	mustExec(t, conn, `TRUNCATE product_tags`)
	waitDocuments(t, r, conn, "products", productsOracle, "the join table truncated")
	waitDocuments(t, r, conn, "orders", ordersOracle, "the join table truncated")

	// Tables only the definitions read have no index of their own.
	for _, index := range []string{"order_items", "customers", "tags", "product_tags"} {
		if docs, err := indexedDocs(r, index); err == nil && len(docs) > 0 {
			t.Errorf("%s is indexed on its own: %v", index, docs)
		}
	}
	// GET /indices lists the defined indices, and no index for the
	// tables read only for them.
	var list struct {
		Indices []struct {
			Name string `json:"name"`
		} `json:"indices"`
	}
	if err := r.apiJSON("GET", "/indices", "", &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mi := range list.Indices {
		names = append(names, mi.Name)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "orders products" {
		t.Errorf("GET /indices lists %v, want orders and products", names)
	}
	// walsearch verify compares the defined indices with their
	// definitions' documents, and leaves the tables read only for them
	// alone.
	rep, code := verifyJSON(t, "--config", r.cfgPath, "--settle", "3s")
	var checked []string
	for _, tr := range rep.Tables {
		checked = append(checked, tr.Table)
	}
	if code != 0 || strings.Join(checked, " ") != "public.orders public.products" {
		t.Errorf("verify: exit %d, tables %+v; want 0 with orders and products checked", code, rep.Tables)
	}
}

// TestDocumentsStayExactUnderConcurrentWrites writes to parents and
// children while the snapshot runs and after; once the writers stop, every
// document equals a fresh query of its definition.
func TestDocumentsStayExactUnderConcurrentWrites(t *testing.T) {
	const orders, items, customers, products, tags = 150, 600, 20, 30, 8
	dbURL, conn := testDB(t, shopSchema+fmt.Sprintf(`
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, %[3]d) g;
INSERT INTO products SELECT g, 'product ' || g FROM generate_series(1, %[4]d) g;
INSERT INTO tags SELECT g, 'tag ' || g FROM generate_series(1, %[5]d) g;
INSERT INTO product_tags SELECT p, 1 + p %% %[5]d FROM generate_series(1, %[4]d) p;
INSERT INTO orders SELECT g, 1 + g %% %[3]d, 'new' FROM generate_series(1, %[1]d) g;
INSERT INTO order_items SELECT g, 1 + g %% %[1]d, 1 + g %% %[4]d, g, 1 FROM generate_series(1, %[2]d) g;`,
		orders, items, customers, products, tags))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var writes [4]atomic.Int64
	errs := make(chan error, 4)
	statements := [][]string{
		{`UPDATE customers SET name = 'customer ' || $1::int || ' v' || floor(random() * 1000) WHERE id = 1 + $1::int % ` + fmt.Sprint(customers)},
		{`UPDATE order_items SET qty = qty + 1 WHERE id = 1 + $1::int % ` + fmt.Sprint(items),
			`UPDATE order_items SET order_id = 1 + (order_id + $1::int) % ` + fmt.Sprint(orders) + ` WHERE id = 1 + ($1::int * 7) % ` + fmt.Sprint(items),
			`DELETE FROM order_items WHERE id = 1 + ($1::int * 13) % ` + fmt.Sprint(items),
			`INSERT INTO order_items VALUES (10000 + $1::int, 1 + $1::int % ` + fmt.Sprint(orders) + `, 1 + $1::int % ` + fmt.Sprint(products) + `, $1::int, 1) ON CONFLICT DO NOTHING`},
		{`INSERT INTO product_tags VALUES (1 + $1::int % ` + fmt.Sprint(products) + `, 1 + ($1::int / 3) % ` + fmt.Sprint(tags) + `) ON CONFLICT DO NOTHING`,
			`DELETE FROM product_tags WHERE product_id = 1 + ($1::int * 5) % ` + fmt.Sprint(products),
			`UPDATE tags SET name = 'tag ' || $1::int WHERE id = 1 + $1::int % ` + fmt.Sprint(tags)},
		{`UPDATE orders SET customer_id = 1 + ($1::int * 3) % ` + fmt.Sprint(customers) + `, status = 'v' || $1::int WHERE id = 1 + $1::int % ` + fmt.Sprint(orders),
			`DELETE FROM orders WHERE id = 1 + ($1::int * 11) % ` + fmt.Sprint(orders),
			`INSERT INTO orders VALUES (1 + ($1::int * 3) % ` + fmt.Sprint(orders) + `, 1 + $1::int % ` + fmt.Sprint(customers) + `, 'back') ON CONFLICT DO NOTHING`},
	}
	for w, stmts := range statements {
		wc, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer wc.Close(context.Background())
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			// About 100 transactions a second each: a workload, not a
			// flood that fans out faster than two cores can rebuild.
			pace := time.NewTicker(10 * time.Millisecond)
			defer pace.Stop()
			for i := 1; ctx.Err() == nil; i++ {
				select {
				case <-ctx.Done():
					return
				case <-pace.C:
				}
				// Some transactions touch several tables at once.
				committed, err := randomTx(ctx, wc, rng, stmts, i)
				switch {
				case ctx.Err() != nil:
				case err != nil:
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				case committed:
					writes[w].Add(1)
				}
			}
		}()
	}
	r := runDocuments(t, dbURL, "docsconcurrent")
	// Keep writing while the snapshot's documents are indexed, and until
	// every writer committed 100 more transactions after that.
	deadline := time.Now().Add(convergeWithin)
	var from [4]int64
	for i := range writes {
		from[i] = writes[i].Load()
	}
	for {
		got, err := indexedDocs(r, "orders")
		done := err == nil && len(got) > 0
		for i := range writes {
			done = done && writes[i].Load() >= from[i]+100
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writers or indexing did not progress within %s: %v, writes %d %d %d %d (from %v)", convergeWithin, err,
				writes[0].Load(), writes[1].Load(), writes[2].Load(), writes[3].Load(), from)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("transactions written by each writer: %d %d %d %d", writes[0].Load(), writes[1].Load(), writes[2].Load(), writes[3].Load())
	waitDocuments(t, r, conn, "orders", ordersOracle, "after concurrent writes")
	waitDocuments(t, r, conn, "products", productsOracle, "after concurrent writes")
}

// randomTx runs one to three of stmts, picked by rng, in a transaction, each
// with an argument near i. A transaction PostgreSQL refused (a deadlock
// between writers, a row another writer deleted) changed nothing: it is not
// committed, and not an error.
func randomTx(ctx context.Context, conn *pgx.Conn, rng *rand.Rand, stmts []string, i int) (committed bool, err error) {
	tx, err := conn.Begin(ctx)
	if err == nil {
		for range 1 + rng.IntN(3) {
			if _, err = tx.Exec(ctx, stmts[rng.IntN(len(stmts))], i+rng.IntN(1000)); err != nil {
				break
			}
		}
		if err == nil {
			err = tx.Commit(ctx)
		} else {
			_ = tx.Rollback(ctx)
		}
	}
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) {
		return false, nil
	}
	return err == nil, err
}
