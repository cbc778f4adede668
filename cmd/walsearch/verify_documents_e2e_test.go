package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/e2e"
)

// engineCall sends a request to the search engine behind walsearch's back.
func engineCall(t *testing.T, eng *e2e.Engine, method, path, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, eng.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: HTTP %d %s", method, path, res.StatusCode, out)
	}
	return out
}

// shopWrites changes customers 3 and up, and orders 20 and up with their
// items, until the returned stop is called: never orders 10 and 11 nor
// what they embed.
func shopWrites(t *testing.T, dbURL string) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		`UPDATE customers SET name = 'customer v' || $1::int WHERE id = 3 + $1::int % 8`,
		`UPDATE orders SET status = 'v' || $1::int WHERE id = 20 + $1::int % 40`,
		`UPDATE order_items SET qty = qty + 1 WHERE order_id = 20 + $1::int % 40`,
		`INSERT INTO order_items VALUES (10000 + $1::int, 20 + $1::int % 40, 1, $1::int, 1) ON CONFLICT DO NOTHING`,
		`DELETE FROM order_items WHERE id = 10000 + ($1::int * 7) % 1000`,
	}
	var wg sync.WaitGroup
	var n int
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close(context.Background())
		rng := rand.New(rand.NewPCG(5, 6))
		pace := time.NewTicker(10 * time.Millisecond)
		defer pace.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-pace.C:
			}
			if _, err := conn.Exec(ctx, stmts[rng.IntN(len(stmts))], rng.IntN(1000)); err == nil {
				n++
			}
		}
	}()
	stop = func() int { cancel(); wg.Wait(); return n }
	t.Cleanup(func() { stop() }) // before the database is dropped
	return stop
}

// TestVerifyDefinedDocuments: verify compares a defined index with its
// definition's documents, finds drift made behind walsearch's back by
// key, and --repair rebuilds exactly those documents; concurrent writes
// give no false reports.
func TestVerifyDefinedDocuments(t *testing.T) {
	t.Parallel()
	dbURL, conn := testDB(t, shopSchema+`
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 10) g;
INSERT INTO products VALUES (1, 'pen'), (2, 'ink'), (3, 'paper');
INSERT INTO tags VALUES (1, 'office'), (2, 'blue');
INSERT INTO product_tags VALUES (1, 1), (2, 1), (2, 2);
INSERT INTO orders SELECT g, 1 + g % 10, 'new' FROM generate_series(10, 60) g;
INSERT INTO order_items SELECT g, 10 + g % 51, 1 + g % 3, g, 1 FROM generate_series(1, 200) g;`)
	eng := e2e.StartEngine(t)
	r := runDocuments(t, dbURL, "vdocs", "elasticsearch:\n  url: "+eng.URL+"\n")
	waitDocuments(t, r, conn, "orders", ordersOracle, "snapshot")
	waitDocuments(t, r, conn, "products", productsOracle, "snapshot")

	// A clean index exits 0, with writes going on.
	stop := shopWrites(t, dbURL)
	rep, code := verifyJSON(t, "--config", r.cfgPath, "--settle", "3s")
	var tables []string
	for _, tr := range rep.Tables {
		tables = append(tables, tr.Table+"→"+tr.Index)
	}
	if code != 0 || rep.Drift() != 0 || strings.Join(tables, " ") != "public.orders→orders public.products→products" ||
		rep.Tables[0].Documents < 51 || rep.Tables[1].Documents != 3 {
		t.Fatalf("clean: exit %d, want 0 with orders and products checked: %+v", code, rep)
	}
	t.Logf("clean check under writes: %d orders documents, %d rechecked after changes in flight", rep.Tables[0].Documents, rep.Tables[0].Rechecked)

	// Drift behind walsearch's back: order 10's document deleted, order
	// 11's customer renamed in its document, an extra order.
	var got struct {
		Source map[string]any `json:"_source"`
	}
	if err := json.Unmarshal(engineCall(t, eng, "GET", "/orders/_doc/11", ""), &got); err != nil {
		t.Fatal(err)
	}
	got.Source["customer"].(map[string]any)["name"] = "tampered"
	tampered, _ := json.Marshal(got.Source)
	engineCall(t, eng, "DELETE", "/orders/_doc/10", "")
	engineCall(t, eng, "PUT", "/orders/_doc/11", string(tampered))
	engineCall(t, eng, "PUT", "/orders/_doc/99999", `{"id":99999,"status":"ghost","customer":null,"items":[]}`)
	engineCall(t, eng, "POST", "/orders/_refresh", "")

	rep, code = verifyJSON(t, "--config", r.cfgPath, "--settle", "3s", "orders")
	if code != 1 || len(rep.Tables) != 1 {
		t.Fatalf("drift: exit %d, want 1: %+v", code, rep)
	}
	tr := rep.Tables[0]
	if tr.Table != "public.orders" || !slices.Equal(tr.Missing.IDs, []string{"10"}) || !slices.Equal(tr.Stale.IDs, []string{"11"}) ||
		!slices.Equal(tr.Extra.IDs, []string{"99999"}) || tr.Drift() != 3 {
		t.Fatalf("want missing 10, stale 11, extra 99999 and nothing else, got %+v", tr)
	}

	// --repair rebuilds exactly those documents.
	rep, code = verifyJSON(t, "--config", r.cfgPath, "--settle", "3s", "--repair", "--repair-wait", "30s", "orders")
	if code != 0 || rep.Tables[0].Repaired != 3 || rep.Drift() != 0 {
		t.Fatalf("repair: exit %d, want 0 with 3 repaired: %+v", code, rep.Tables[0])
	}
	rows, err := conn.Query(context.Background(), `SELECT keys::text FROM walsearch_watermarks WHERE keys IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != `[["10"], ["11"], ["99999"]]` {
		t.Fatalf("repair requests: %q, want one for orders 10, 11 and 99999", keys)
	}
	t.Logf("%d concurrent writes during the checks", stop())
	rep, code = verifyJSON(t, "--config", r.cfgPath, "--settle", "3s")
	if code != 0 || rep.Drift() != 0 {
		t.Fatalf("after repair: exit %d: %+v", code, rep)
	}
	waitDocuments(t, r, conn, "orders", ordersOracle, "after repair")
}

// TestContinuousVerifyRepairsDefinedDocuments: continuous verification
// checks a defined index and repairs a nested field changed behind
// walsearch's back.
func TestContinuousVerifyRepairsDefinedDocuments(t *testing.T) {
	t.Parallel()
	dbURL, conn := testDB(t, shopSchema+`
INSERT INTO customers VALUES (1, 'Ada'), (2, 'Alan');
INSERT INTO products VALUES (1, 'pen');
INSERT INTO orders VALUES (10, 1, 'new'), (11, 2, 'paid');
INSERT INTO order_items VALUES (100, 10, 1, 1, 1), (101, 11, 1, 1, 2);`)
	eng := e2e.StartEngine(t)
	r := runDocuments(t, dbURL, "vdocscont", "elasticsearch:\n  url: "+eng.URL+"\nverify:\n  interval: 300ms\n  settle: 500ms\n  repair: true\n")
	waitDocuments(t, r, conn, "orders", ordersOracle, "snapshot")
	var got struct {
		Source map[string]any `json:"_source"`
	}
	if err := json.Unmarshal(engineCall(t, eng, "GET", "/orders/_doc/11", ""), &got); err != nil {
		t.Fatal(err)
	}
	got.Source["customer"].(map[string]any)["name"] = "tampered"
	tampered, _ := json.Marshal(got.Source)
	engineCall(t, eng, "PUT", "/orders/_doc/11?refresh=true", string(tampered))
	waitFor(t, 60*time.Second, "the repair of order 11 counted", func() (bool, string) {
		st := statusChecks(t, r)
		for _, c := range st.Verify {
			if c.Table == "public.orders" {
				return c.Repaired == 1 && c.Drift == 0 && c.Rows == 2, fmt.Sprintf("%+v", st)
			}
		}
		return false, fmt.Sprintf("%+v", st)
	})
	waitDocuments(t, r, conn, "orders", ordersOracle, "after the repair")
}
