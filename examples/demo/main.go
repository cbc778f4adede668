// Command demo runs Walsearch end to end on one machine with nothing to set
// up: a throwaway PostgreSQL with an example catalogue, a trickle of live
// writes, the whole pipeline on embedded defaults, and the search API on
// 127.0.0.1:8080. Stop it with Ctrl-C; everything it started is stopped and
// removed.
//
//	go run ./examples/demo            (or: make demo)
//	go run ./examples/demo -listen 127.0.0.1:9090 -products 20000
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
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/internal/pgtest"
	"github.com/walsearch/walsearch/internal/pipeline"
)

const schema = `
CREATE TABLE categories (
  id   int PRIMARY KEY,
  name text NOT NULL
);
CREATE TABLE products (
  id          bigint PRIMARY KEY,
  sku         text NOT NULL UNIQUE,
  name        text NOT NULL,
  description text,
  category_id int REFERENCES categories(id),
  price       numeric(10,2) NOT NULL,
  in_stock    boolean NOT NULL DEFAULT true,
  tags        text[],
  attributes  jsonb,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO categories VALUES (1,'books'),(2,'garden'),(3,'kitchen'),(4,'toys'),(5,'audio');
`

var adjectives = []string{"red", "quiet", "sturdy", "compact", "vintage", "smart", "wooden", "solar", "foldable", "classic"}
var nouns = []string{"kettle", "lamp", "speaker", "shovel", "novel", "puzzle", "blender", "chair", "headphones", "planter"}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address of the search API")
	products := flag.Int("products", 5000, "rows in the example products table")
	writesPerSec := flag.Float64("writes", 5, "live writes per second")
	flag.Parse()
	if err := run(*listen, *products, *writesPerSec); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// stopSignals end the demo, which then stops and removes everything it
// started. SIGPIPE is among them: with the output piped (make demo | tee
// log), Ctrl-C ends the reader too, and the next write would otherwise kill
// the demo before it cleaned up.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE}

func run(listen string, products int, writesPerSec float64) error {
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

	err = demo(ctx, pg.URL("postgres"), dataDir, listen, products, writesPerSec, log)
	if ctx.Err() != nil {
		// Printed to stderr: stdout may be the pipe that just closed.
		fmt.Fprintln(os.Stderr, "\nStopping; the throwaway database and data directory are removed.")
		return nil
	}
	return err
}

// demo seeds the database and runs the pipeline, the live writes and the
// announcement until ctx ends.
func demo(ctx context.Context, dbURL, dataDir, listen string, products int, writesPerSec float64, log *slog.Logger) error {
	if err := seed(ctx, dbURL, products); err != nil {
		return err
	}
	cfg := config.Default()
	cfg.DataDir, cfg.Postgres.URL, cfg.API.Listen = dataDir, dbURL, listen
	p, err := pipeline.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer p.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Run(gctx) })
	g.Go(func() error { return trickle(gctx, dbURL, products, writesPerSec) })
	g.Go(func() error { return announce(gctx, "http://"+listen, dbURL) })
	return g.Wait()
}

func seed(ctx context.Context, url string, n int) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = product(rng, int64(i+1))
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"products"},
		[]string{"id", "sku", "name", "description", "category_id", "price", "in_stock", "tags", "attributes"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("load products: %w", err)
	}
	fmt.Printf("Loaded %d products and 5 categories.\n", n)
	return nil
}

func product(rng *rand.Rand, id int64) []any {
	adj, noun := adjectives[rng.IntN(len(adjectives))], nouns[rng.IntN(len(nouns))]
	return []any{
		id, fmt.Sprintf("SKU-%06d", id), adj + " " + noun,
		fmt.Sprintf("A %s %s, item %d. Ships in %d days.", adj, noun, id, 1+rng.IntN(9)),
		1 + rng.IntN(5), fmt.Sprintf("%d.%02d", 1+rng.IntN(300), rng.IntN(100)), rng.IntN(10) > 0,
		[]string{adj, noun}, map[string]any{"color": adj, "weight_kg": rng.IntN(20) + 1},
	}
}

// trickle keeps changing the catalogue so the index visibly follows.
func trickle(ctx context.Context, url string, n int, perSec float64) error {
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
	next := int64(n)
	t := time.NewTicker(time.Duration(float64(time.Second) / perSec))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		id := 1 + rng.Int64N(next)
		switch rng.IntN(10) {
		case 0:
			next++
			p := product(rng, next)
			_, err = conn.Exec(ctx, `INSERT INTO products (id, sku, name, description, category_id, price, in_stock, tags, attributes) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`, p...)
		case 1:
			_, err = conn.Exec(ctx, `DELETE FROM products WHERE id = $1`, id)
		default:
			_, err = conn.Exec(ctx, `UPDATE products SET price = round((price * (0.9 + random() * 0.2))::numeric, 2), in_stock = random() > 0.1, updated_at = now() WHERE id = $1`, id)
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
	fmt.Println("Indexing the catalogue…")
	last := ""
	for {
		st, err := fetchStatus(ctx, base)
		if err == nil {
			if line := progress(st); line != last {
				fmt.Println("  " + line)
				last = line
			}
			if indexed(st) && searchable(ctx, base, "products", "categories") {
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
Walsearch is running. The catalogue is indexed and changes stream in live.

  PostgreSQL:  psql '%s'
  Search API:  %s

Try:
  curl -s %s/health
  curl -s %s/search -d '{"index":"products","query_fields":{"category_id":3},"page_size":5}'
  curl -s %s/search -d '{"index":"products","query_fields":{"price":{"gte":10,"lt":20},"in_stock":true},"sort_by":{"price":"asc"},"fields":["sku","name","price"]}'
  curl -s %s/search -d '{"index":"products","query_fields":{"name":"red kettle"}}'
  curl -s %s/search -d '{"index":"categories"}'

Change a row in psql and search again: it shows up within about a second.
Ctrl-C stops everything.
`, dbURL, base, base, base, base, base, base)
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
