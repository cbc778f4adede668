package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/e2e"
)

// shopWriter writes to the orders' parents and children, about 100
// transactions a second, until the returned stop is called; stop returns
// how many transactions committed.
func shopWriter(t *testing.T, dbURL string, orders, items, customers, products, tags int) (stop func() int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wc, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stmts := []string{
		fmt.Sprintf(`UPDATE customers SET name = 'customer v' || $1::int WHERE id = 1 + $1::int %% %d`, customers),
		fmt.Sprintf(`UPDATE order_items SET qty = qty + 1 WHERE id = 1 + $1::int %% %d`, items),
		fmt.Sprintf(`UPDATE order_items SET order_id = 1 + (order_id + $1::int) %% %d WHERE id = 1 + ($1::int * 7) %% %d`, orders, items),
		fmt.Sprintf(`DELETE FROM order_items WHERE id = 1 + ($1::int * 13) %% %d`, items),
		fmt.Sprintf(`INSERT INTO order_items VALUES (10000 + $1::int, 1 + $1::int %% %d, 1 + $1::int %% %d, $1::int, 1) ON CONFLICT DO NOTHING`, orders, products),
		fmt.Sprintf(`INSERT INTO product_tags VALUES (1 + $1::int %% %d, 1 + ($1::int / 3) %% %d) ON CONFLICT DO NOTHING`, products, tags),
		fmt.Sprintf(`DELETE FROM product_tags WHERE product_id = 1 + ($1::int * 5) %% %d`, products),
		fmt.Sprintf(`UPDATE tags SET name = 'tag ' || $1::int WHERE id = 1 + $1::int %% %d`, tags),
		fmt.Sprintf(`UPDATE orders SET status = 'v' || $1::int, customer_id = 1 + $1::int %% %d WHERE id = 1 + $1::int %% %d`, customers, orders),
		fmt.Sprintf(`DELETE FROM orders WHERE id = 1 + ($1::int * 11) %% %d`, orders),
		fmt.Sprintf(`INSERT INTO orders VALUES (1 + ($1::int * 3) %% %d, 1 + $1::int %% %d, 'back') ON CONFLICT DO NOTHING`, orders, customers),
	}
	var wrote atomic.Int64
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer wc.Close(context.Background())
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		pace := time.NewTicker(10 * time.Millisecond)
		defer pace.Stop()
		for i := 1; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-pace.C:
			}
			committed, err := randomTx(ctx, wc, rng, stmts, i)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				werr = err
				return
			case committed:
				wrote.Add(1)
			}
		}
	}()
	return func() int64 {
		cancel()
		wg.Wait()
		if werr != nil {
			t.Fatalf("writer: %v", werr)
		}
		return wrote.Load()
	}
}

// engineIndexOf is the index the alias name points to, as GET /engine
// tells.
func engineIndexOf(t *testing.T, r running, name string) string {
	t.Helper()
	var eng struct {
		Indices []struct {
			Name  string `json:"name"`
			Index string `json:"index"`
		} `json:"indices"`
	}
	if err := r.apiJSON("GET", "/engine", "", &eng); err != nil {
		t.Fatal(err)
	}
	for _, ix := range eng.Indices {
		if ix.Name == name {
			return ix.Index
		}
	}
	t.Fatalf("GET /engine does not list %s: %+v", name, eng.Indices)
	return ""
}

// TestDocumentsReindexAndResync: walsearch reindex and walsearch resync
// rebuild a defined index into a new version while parents and children
// keep changing, with the embedded engine and over the Elasticsearch API;
// afterwards every document equals a fresh query of its definition, the
// alias points at the new version, and verify agrees. Over the
// Elasticsearch API the index is damaged before the resync: resync
// rebuilds the documents from PostgreSQL, not from the old index.
func TestDocumentsReindexAndResync(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testDocumentsReindexAndResync(t, nil) })
	t.Run("elasticsearch", func(t *testing.T) { testDocumentsReindexAndResync(t, e2e.StartEngine(t)) })
}

func testDocumentsReindexAndResync(t *testing.T, eng *e2e.Engine) {
	const orders, items, customers, products, tags = 120, 400, 15, 25, 6
	dbURL, conn := testDB(t, shopSchema+fmt.Sprintf(`
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, %[3]d) g;
INSERT INTO products SELECT g, 'product ' || g FROM generate_series(1, %[4]d) g;
INSERT INTO tags SELECT g, 'tag ' || g FROM generate_series(1, %[5]d) g;
INSERT INTO product_tags SELECT p, 1 + p %% %[5]d FROM generate_series(1, %[4]d) p;
INSERT INTO orders SELECT g, 1 + g %% %[3]d, 'new' FROM generate_series(1, %[1]d) g;
INSERT INTO order_items SELECT g, 1 + g %% %[1]d, 1 + g %% %[4]d, g, 1 FROM generate_series(1, %[2]d) g;
INSERT INTO customers VALUES (999, 'quiet');
INSERT INTO orders VALUES (500, 999, 'quiet'), (501, 999, 'quiet');`,
		orders, items, customers, products, tags))
	extra := "sink:\n  reindex_grace: 1s\n"
	name := "docsreindex"
	if eng != nil {
		extra += "elasticsearch:\n  url: " + eng.URL + "\n"
		name = "docsreindexes"
	}
	r := runDocuments(t, dbURL, name, extra)
	waitDocuments(t, r, conn, "orders", ordersOracle, "snapshot")

	for _, step := range []struct {
		args []string
		to   string
	}{
		{[]string{"reindex", "orders", "--timeout", "3m"}, "orders_v2"},
		{[]string{"resync", "orders", "--timeout", "3m", "--nats-url", "nats://" + r.natsAddr}, "orders_v3"},
	} {
		if eng != nil && step.args[0] == "resync" {
			// Drift only a rebuild from PostgreSQL repairs: a document
			// lost, one wrong, one without a row.
			// Orders 500 and 501 are ones no writer touches.
			const lost, wrong = 500, 501
			for _, req := range []struct{ method, path, body string }{
				{"DELETE", fmt.Sprintf("/orders/_doc/%d?refresh=true", lost), ""},
				{"PUT", fmt.Sprintf("/orders/_doc/%d?refresh=true", wrong), fmt.Sprintf(`{"id":%d,"status":"wrong","items":[]}`, wrong)},
				{"PUT", "/orders/_doc/100000?refresh=true", `{"id":100000,"status":"ghost","items":[]}`},
			} {
				hr, _ := http.NewRequest(req.method, eng.URL+req.path, strings.NewReader(req.body))
				hr.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(hr)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode >= 300 {
					t.Fatalf("%s %s: HTTP %d", req.method, req.path, res.StatusCode)
				}
			}
		}
		stop := shopWriter(t, dbURL, orders, items, customers, products, tags)
		out, err := runCLI(t, nil, append(step.args, "--config", r.cfgPath)...)
		wrote := stop()
		if err != nil || !strings.Contains(out, "alias orders now points to "+step.to) {
			t.Fatalf("%s: %v\n%s", step.args[0], err, out)
		}
		t.Logf("%s: %d transactions written during it", step.args[0], wrote)
		waitDocuments(t, r, conn, "orders", ordersOracle, "after "+step.args[0])
		waitDocuments(t, r, conn, "products", productsOracle, "after "+step.args[0])
		if got := engineIndexOf(t, r, "orders"); got != step.to {
			t.Fatalf("after %s the alias orders points to %q, want %s", step.args[0], got, step.to)
		}
		if rep, code := verifyJSON(t, "--config", r.cfgPath, "--settle", "3s"); code != 0 {
			t.Fatalf("verify after %s: exit %d: %+v", step.args[0], code, rep.Tables)
		}
	}
}
