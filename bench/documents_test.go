package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/e2e"
)

// documentsDDL is an order with its customer and its items.
const documentsDDL = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, status text NOT NULL,
  placed_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON orders (customer_id);
CREATE TABLE order_items (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders, sku text NOT NULL,
  position int NOT NULL, qty int NOT NULL);
CREATE INDEX ON order_items (order_id);
ALTER TABLE order_items REPLICA IDENTITY FULL;`

const documentsDefinition = `
table: orders
columns: [id, status, placed_at]
relations:
  - {name: customer, table: customers, kind: one, columns: [id, name, email]}
  - {name: items, table: order_items, kind: many, columns: [id, sku, position, qty], order_by: [position]}
`

// documentsCeiling is the definition's rebuild query written by hand: the
// documents of a batch of orders, as walsearch reads them.
const documentsCeiling = `SELECT json_build_array(o.id)::text, json_build_object('id', o.id, 'status', o.status, 'placed_at', o.placed_at,
  'customer', (SELECT json_build_object('id', c.id, 'name', c.name, 'email', c.email) FROM customers c WHERE c.id = o.customer_id),
  'items', coalesce((SELECT json_agg(json_build_object('id', i.id, 'sku', i.sku, 'position', i.position, 'qty', i.qty) ORDER BY i.position, i.id)
    FROM order_items i WHERE i.order_id = o.id), '[]'))
FROM orders o WHERE o.id = ANY($1::int[])`

// BenchmarkDocumentsFanOut renames one customer who has 10,000, then
// 100,000 orders (each with two items), with walsearch running the
// definition orders → customer, items into the discard endpoint
// (e2e.DiscardES), and reports the rebuilt documents per second from the
// commit to the last document's bulk request, and the walsearch process's
// peak RSS during the rebuild (VmHWM, reset before the rename). The
// ceiling, measured in the same run on the same rows: PostgreSQL alone
// finding the customer's orders and reading their documents with the
// definition's query (written by hand), 500 orders per query in one
// REPEATABLE READ transaction, as walsearch does, with the rows read and
// discarded by this process.
func BenchmarkDocumentsFanOut(b *testing.B) {
	cluster, _ := startPostgres(b)
	bin := buildWalsearch(b)
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("roots-%dk", n/1000), func(b *testing.B) {
			for range b.N {
				db := cluster.NewDatabase(b)
				slot := slotName(b, db)
				pgExec(b, db, documentsDDL, fmt.Sprintf(`
INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com'), (2, 'Alan', 'alan@example.com');
INSERT INTO orders SELECT g, 1, 'paid' FROM generate_series(1, %[1]d) g;
INSERT INTO order_items SELECT g, 1 + (g - 1) / 2, 'SKU-' || g, g %% 2, 1 FROM generate_series(1, %[1]d * 2) g;
ANALYZE;`, n))
				ceiling := documentsCeilingRate(b, db, n)
				rate, rss := documentsWalsearchRate(b, bin, db, slot, n)
				b.ReportMetric(rate, "docs/s")
				b.ReportMetric(ceiling, "ceiling-docs/s")
				b.ReportMetric(rate/ceiling, "ratio-to-query")
				b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
				b.Logf("%d roots: walsearch rebuilt %.0f documents/s (%.2f of the query alone, %.0f documents/s), peak RSS %.0f MiB",
					n, rate, rate/ceiling, ceiling, float64(rss)/(1<<20))
				dropSlot(b, db, slot)
				pgExec(b, db, `DROP PUBLICATION `+slot)
			}
		})
	}
}

// documentsCeilingRate reads the documents of customer 1's n orders the
// way a rebuild does, and returns documents per second.
func documentsCeilingRate(b *testing.B, db string, n int) float64 {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	start := time.Now()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only
	rows, err := tx.Query(ctx, `SELECT id FROM orders WHERE customer_id = ANY($1::int[])`, []int32{1})
	if err != nil {
		b.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	read := 0
	for i := 0; i < len(ids); i += 500 {
		rows, err := tx.Query(ctx, documentsCeiling, ids[i:min(len(ids), i+500)])
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var key string
			var doc []byte
			if err := rows.Scan(&key, &doc); err != nil {
				b.Fatal(err)
			}
			read++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
	}
	if read != n {
		b.Fatalf("the query read %d documents, want %d", read, n)
	}
	return float64(n) / time.Since(start).Seconds()
}

// documentsWalsearchRate starts walsearch over db, waits for the initial
// snapshot's n documents, renames customer 1 and waits until all n
// documents were written again. It returns documents per second and the
// peak RSS during the rebuild.
func documentsWalsearchRate(b *testing.B, bin, db, slot string, n int) (float64, uint64) {
	arr := e2e.NewArrivals(n)
	es := e2e.StartDiscardES(b, arr)
	dataDir, err := os.MkdirTemp("", "walsearch-docs-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dataDir)
	scripts := filepath.Join(dataDir, "scripts")
	if err := os.MkdirAll(filepath.Join(scripts, "orders"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scripts, "orders", "document.yaml"), []byte(documentsDefinition), 0o644); err != nil {
		b.Fatal(err)
	}
	addr, natsAddr := e2e.FreeAddr(b), e2e.FreeAddr(b)
	cfg := e2e.WriteConfig(b, e2e.Config{DataDir: filepath.Join(dataDir, "data"), PostgresURL: db, Slot: slot, ElasticsearchURL: es.URL,
		APIListen: addr, Extra: "nats:\n  listen: " + natsAddr + "\n"})
	p := e2e.Start(b, exec.Command(bin, "run", "--config", cfg, "--tables", "orders", "--scripts-dir", scripts))
	defer func() {
		if err := p.Stop(); err != nil {
			b.Fatalf("walsearch did not stop cleanly: %v", err)
		}
	}()
	alive := func() error {
		select {
		case <-p.Exited():
			return fmt.Errorf("walsearch exited: %s", p.Output())
		default:
			return nil
		}
	}
	waitArrivals(b, "the snapshot's documents", n, func() int { rows, _, _, _ := arr.Counts(); return rows }, alive)
	_, _, dup0, stray := arr.Counts()
	if stray != 0 {
		b.Fatalf("%d bulk items are no order", stray)
	}
	if err := p.ResetPeakRSS(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	pgExec(b, db, `UPDATE customers SET name = 'Ada Lovelace' WHERE id = 1`)
	waitArrivals(b, "the rebuilt documents", n, func() int { _, _, dup, _ := arr.Counts(); return dup - dup0 }, alive)
	elapsed := time.Since(start)
	rss, err := p.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	if _, _, dup, stray := arr.Counts(); dup-dup0 != n || stray != 0 {
		b.Fatalf("%d documents written again for %d orders, %d items that are no order", dup-dup0, n, stray)
	}
	return float64(n) / elapsed.Seconds(), rss
}
