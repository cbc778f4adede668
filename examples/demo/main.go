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
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
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

func run(listen string, products int, writesPerSec float64) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
	dbURL := pg.URL("postgres")
	if err := seed(ctx, dbURL, products); err != nil {
		return err
	}

	dataDir, err := os.MkdirTemp("", "walsearch-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
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
	err = g.Wait()
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		fmt.Println("\nStopped; the throwaway database and data directory are removed.")
		return nil
	}
	return err
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

// announce waits for the API and prints queries to try.
func announce(ctx context.Context, base, dbURL string) error {
	for {
		res, err := http.Get(base + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf(`
Walsearch is running. The catalogue is being indexed and changes stream in live.

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
