// Command demo runs Walsearch end to end on one machine with nothing to set
// up: a throwaway PostgreSQL with the example shop (examples/shop: orders
// indexed with their customer and their items, products with their tags),
// a trickle of live writes, the whole pipeline on embedded defaults, and
// the search API on 127.0.0.1:8080. Stop it with Ctrl-C; everything it started is stopped and
// removed.
//
//	go run ./examples/demo            (or: make demo)
//	go run ./examples/demo -listen 127.0.0.1:9090 -orders 20000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/walsearch/walsearch/examples/shop"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/internal/pgtest"
	"github.com/walsearch/walsearch/internal/pipeline"
)

var adjectives = []string{"red", "quiet", "sturdy", "compact", "vintage", "smart", "wooden", "solar", "foldable", "classic"}
var nouns = []string{"kettle", "lamp", "speaker", "shovel", "novel", "puzzle", "blender", "chair", "headphones", "planter"}
var tagNames = []string{"audio", "books", "eco", "garden", "gift", "kitchen", "sale", "toys"}
var firstNames = []string{"Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus"}
var lastNames = []string{"Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Wirth"}
var statuses = []string{"new", "paid", "shipped", "delivered"}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address of the search API")
	orders := flag.Int("orders", 5000, "orders in the example shop (with a tenth as many customers and products)")
	writesPerSec := flag.Float64("writes", 5, "live writes per second")
	flag.Parse()
	if err := run(*listen, *orders, *writesPerSec); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// stopSignals end the demo, which then stops and removes everything it
// started. SIGPIPE is among them: with the output piped (make demo | tee
// log), Ctrl-C ends the reader too, and the next write would otherwise kill
// the demo before it cleaned up.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE}

func run(listen string, orders int, writesPerSec float64) error {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	fmt.Println("Starting a throwaway PostgreSQL (wal_level=logical, 127.0.0.1 only)…")
	pg, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNotInstalled) {
		return fmt.Errorf("%w (Debian/Ubuntu: apt-get install postgresql)", err)
	}
	if err != nil {
		return err
	}
	defer pg.Stop()
	dataDir, err := os.MkdirTemp("", "walsearch-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	fmt.Printf("PostgreSQL files: %s\nWalsearch files:  %s\n(both are removed when the demo stops)\n", pg.Dir, dataDir)

	err = demo(ctx, pg.URL("postgres"), dataDir, listen, orders, writesPerSec, log)
	if ctx.Err() != nil {
		// Printed to stderr: stdout may be the pipe that just closed.
		fmt.Fprintln(os.Stderr, "\nStopping; the throwaway database and data directory are removed.")
		return nil
	}
	return err
}

// demo seeds the database and runs the pipeline, the live writes and the
// announcement until ctx ends.
func demo(ctx context.Context, dbURL, dataDir, listen string, orders int, writesPerSec float64, log *slog.Logger) error {
	sizes := shopSizes(orders)
	if err := seed(ctx, dbURL, sizes); err != nil {
		return err
	}
	scripts := filepath.Join(dataDir, "scripts")
	if err := shop.WriteScripts(scripts); err != nil {
		return fmt.Errorf("write the shop's document definitions: %w", err)
	}
	cfg := config.Default()
	cfg.DataDir, cfg.Postgres.URL, cfg.API.Listen, cfg.ScriptsDir = filepath.Join(dataDir, "data"), dbURL, listen, scripts
	// The defined indices alone; the other tables are captured for them.
	cfg.Postgres.Tables = []string{"orders", "products"}
	p, err := pipeline.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer p.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Run(gctx) })
	g.Go(func() error { return trickle(gctx, dbURL, sizes, writesPerSec) })
	g.Go(func() error { return announce(gctx, "http://"+listen, dbURL) })
	return g.Wait()
}

// sizes are the rows of each table the demo seeds.
type sizes struct{ customers, products, orders int }

func shopSizes(orders int) sizes {
	orders = max(orders, 10)
	return sizes{customers: max(orders/10, 1), products: max(orders/10, 1), orders: orders}
}

func sku(product int64) string { return fmt.Sprintf("SKU-%06d", product) }

func seed(ctx context.Context, url string, n sizes) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, shop.Schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var customers, products, tags, productTags, orders, items [][]any
	for i := range n.customers {
		first, last := firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)]
		name := first + " " + last
		if i >= len(firstNames)*len(lastNames) {
			name = fmt.Sprintf("%s %d", name, i)
		}
		customers = append(customers, []any{int64(i + 1), name, fmt.Sprintf("customer%d@example.com", i+1)})
	}
	for i, t := range tagNames {
		tags = append(tags, []any{int64(i + 1), t})
	}
	for i := range n.products {
		id := int64(i + 1)
		products = append(products, []any{id, adjectives[rng.IntN(len(adjectives))] + " " + nouns[rng.IntN(len(nouns))],
			fmt.Sprintf("%d.%02d", 1+rng.IntN(300), rng.IntN(100))})
		first := rng.IntN(len(tagNames))
		productTags = append(productTags, []any{id, int64(first + 1)})
		if second := rng.IntN(len(tagNames)); second != first {
			productTags = append(productTags, []any{id, int64(second + 1)})
		}
	}
	item := int64(0)
	for i := range n.orders {
		id := int64(i + 1)
		orders = append(orders, []any{id, 1 + rng.Int64N(int64(n.customers)), statuses[rng.IntN(len(statuses))]})
		for pos := range 1 + rng.IntN(3) {
			item++
			product := 1 + rng.Int64N(int64(n.products))
			items = append(items, []any{item, id, product, sku(product), int32(pos + 1), int32(1 + rng.IntN(5))})
		}
	}
	for _, t := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"customers", []string{"id", "name", "email"}, customers},
		{"products", []string{"id", "name", "price"}, products},
		{"tags", []string{"id", "name"}, tags},
		{"product_tags", []string{"product_id", "tag_id"}, productTags},
		{"orders", []string{"id", "customer_id", "status"}, orders},
		{"order_items", []string{"id", "order_id", "product_id", "sku", "position", "qty"}, items},
	} {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{t.table}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
			return fmt.Errorf("load %s: %w", t.table, err)
		}
	}
	fmt.Printf("Loaded the shop: %d customers, %d products with %d tags, %d orders with %d items.\n",
		n.customers, n.products, len(tags), n.orders, item)
	return nil
}

// trickle keeps changing the shop so the indices visibly follow: orders
// placed and paid, items changed, customers renamed (every one of their
// orders' documents changes), products repriced.
func trickle(ctx context.Context, url string, n sizes, perSec float64) error {
	if perSec <= 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	nextOrder, nextItem := int64(n.orders), int64(0)
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM order_items`).Scan(&nextItem); err != nil {
		return fmt.Errorf("live write: %w", err)
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / perSec))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		order := 1 + rng.Int64N(nextOrder)
		product := 1 + rng.Int64N(int64(n.products))
		switch rng.IntN(10) {
		case 0:
			nextOrder++
			nextItem++
			_, err = conn.Exec(ctx, `WITH o AS (INSERT INTO orders (id, customer_id, status) VALUES ($1, $2, 'new') RETURNING id)
INSERT INTO order_items (id, order_id, product_id, sku, position, qty) SELECT $3, id, $4, $5, 1, 1 FROM o`,
				nextOrder, 1+rng.Int64N(int64(n.customers)), nextItem, product, sku(product))
		case 1:
			customer := 1 + rng.Int64N(int64(n.customers))
			_, err = conn.Exec(ctx, `UPDATE customers SET name = split_part(name, ' ', 1) || ' ' || $2 WHERE id = $1`,
				customer, lastNames[rng.IntN(len(lastNames))])
		case 2:
			_, err = conn.Exec(ctx, `UPDATE products SET price = round((price * (0.9 + random() * 0.2))::numeric, 2) WHERE id = $1`, product)
		case 3, 4, 5:
			_, err = conn.Exec(ctx, `UPDATE order_items SET qty = 1 + (qty % 5) WHERE id = (SELECT min(id) FROM order_items WHERE order_id = $1)`, order)
		default:
			_, err = conn.Exec(ctx, `UPDATE orders SET status = $2 WHERE id = $1`, order, statuses[rng.IntN(len(statuses))])
		}
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("live write: %w", err)
		}
	}
}

// announce waits until the API answers and every table's snapshot is
// indexed, showing the progress, and then prints queries to try: printed
// earlier, a quick first query would find no index yet.
func announce(ctx context.Context, base, dbURL string) error {
	fmt.Println("Indexing the shop…")
	last := ""
	for {
		st, err := fetchStatus(ctx, base)
		if err == nil {
			if line := progress(st); line != last {
				fmt.Println("  " + line)
				last = line
			}
			if indexed(st) && searchable(ctx, base, "orders", "products") {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	fmt.Printf(`
Walsearch is running. The shop is indexed and changes stream in live.
Each order's document holds its customer and its items, each item's
product and that product's tags, read from six tables (examples/shop).

  PostgreSQL:  psql '%[1]s'
  Search API:  %[2]s

Try:
  curl -s %[2]s/health
  curl -s %[2]s/search -d '{"index":"orders","page_size":1}'
  curl -s %[2]s/search -d '{"index":"orders","query_fields":{"items.sku":"SKU-000001"},"fields":["id","status","customer.name","items.sku"]}'
  curl -s %[2]s/search -d '{"index":"orders","q":"lovelace","fields":["id","customer.name"]}'
  curl -s %[2]s/search -d '{"index":"orders","query_fields":{"customer.name":"Ada Lovelace"},"fields":["id","status","customer"]}'
  curl -s %[2]s/search -d '{"index":"products","query_fields":{"tags.name":"garden"},"sort_by":{"price":"asc"}}'

Rename a customer in psql and search again: every one of their orders
changes within about a second.
  UPDATE customers SET name = 'Ada Byron' WHERE id = 1;
Ctrl-C stops everything.
`, dbURL, base)
	<-ctx.Done()
	return ctx.Err()
}

// demoStatus is the part of GET /status the demo reads.
type demoStatus struct {
	Tables []struct {
		Table        string `json:"table"`
		Snapshot     string `json:"snapshot"`
		SnapshotRows uint64 `json:"snapshot_rows"`
		Documents    int64  `json:"documents"`
	} `json:"tables"`
}

func fetchStatus(ctx context.Context, base string) (*demoStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /status: %s", res.Status)
	}
	var st demoStatus
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("GET /status: %w", err)
	}
	return &st, nil
}

// progress says how far each table is, e.g. "products: snapshot running,
// 3000 documents indexed".
func progress(st *demoStatus) string {
	if len(st.Tables) == 0 {
		return "starting…"
	}
	var parts []string
	for _, t := range st.Tables {
		if t.Table != "orders" && t.Table != "products" {
			continue // read for the documents, not indexed on their own
		}
		parts = append(parts, fmt.Sprintf("%s: snapshot %s, %d documents indexed", t.Table, t.Snapshot, max(t.Documents, 0)))
	}
	return strings.Join(parts, "; ")
}

// searchable reports whether a search of each index answers 200: the API
// learns of a new index shortly after it is created.
func searchable(ctx context.Context, base string, indices ...string) bool {
	for _, index := range indices {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/search",
			strings.NewReader(`{"index":"`+index+`","page_size":1}`))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// indexed reports whether both tables' snapshots are done and searchable.
func indexed(st *demoStatus) bool {
	done := 0
	for _, t := range st.Tables {
		if t.Snapshot == "done" && t.Documents >= int64(t.SnapshotRows) && t.Documents > 0 {
			done++
		}
	}
	return done == 2
}
