package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/transform"
	"github.com/walsearch/walsearch/verify"
)

// BenchmarkVerify checks a table against an index holding exactly its
// documents (the embedded engine, in process) and reports verify's rows/s
// next to a plain COPY of the same table to /dev/null in the same run (the
// ceiling: verify reads the table with the same COPY, then maps, hashes and
// fetches every document); the two alternate, best of attempts(b) each.
// WALSEARCH_BENCH_VERIFY_ROWS sets the size (default 200k).
func BenchmarkVerify(b *testing.B) {
	n := benchRows(b, "WALSEARCH_BENCH_VERIFY_ROWS", 200_000)
	_, url := startPostgres(b)
	pgExec(b, url, `CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric, tags text[], at timestamptz)`,
		fmt.Sprintf(`INSERT INTO items SELECT i, 'item ' || i, i * 0.01, ARRAY['a', 'b'], now() FROM generate_series(1, %d) i`, n),
		`ANALYZE items`)
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	es, err := esclient.New(esclient.Config{Transport: eng.RoundTripper()})
	if err != nil {
		b.Fatal(err)
	}
	indexTable(b, url, es)
	// The engine builds its search index in the background after a bulk
	// load; a first, untimed run lets it finish so that the figure is
	// verify's, not the engine's indexing competing for the CPU.
	vc := verify.DefaultConfig()
	vc.URL, vc.Tables, vc.Scripts, vc.ES = url, []string{"items"}, transform.Identity{}, es
	if _, err := verify.Run(context.Background(), vc); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var copyTook, took time.Duration
		for range attempts(b) {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			began := time.Now()
			if _, err := conn.PgConn().CopyTo(ctx, io.Discard, `COPY (SELECT * FROM items) TO STDOUT`); err != nil {
				b.Fatal(err)
			}
			copyTook = best(copyTook, time.Since(began))
			conn.Close(ctx)

			began = time.Now()
			rep, err := verify.Run(ctx, vc)
			if err != nil {
				b.Fatal(err)
			}
			took = best(took, time.Since(began))
			if tr := rep.Tables[0]; rep.Drift() != 0 || tr.Error != "" || tr.Rows != uint64(n) {
				b.Fatalf("verify of an index equal to its table: %+v", tr)
			}
		}
		copyRate, rate := float64(n)/copyTook.Seconds(), float64(n)/took.Seconds()
		b.ReportMetric(rate, "verify-rows/s")
		b.ReportMetric(copyRate, "copy-rows/s")
		b.ReportMetric(rate/copyRate, "ratio")
	}
}

// indexTable indexes every row of items as the pipeline would without a
// script, reading rows with capture's row reader.
func indexTable(b *testing.B, url string, es *esclient.Client) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rr, err := capture.NewRowReader(ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	t, err := rr.Table(ctx, "public", "items")
	if err != nil {
		b.Fatal(err)
	}
	var body bytes.Buffer
	send := func() {
		if body.Len() == 0 {
			return
		}
		res, err := esapi.BulkRequest{Body: bytes.NewReader(body.Bytes())}.Do(ctx, es)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.IsError() {
			b.Fatalf("bulk: %s", res.Status())
		}
		body.Reset()
	}
	var after []string
	for {
		read, err := rr.ReadChunk(ctx, t, after, 10_000, func(r capture.Row) error {
			docs, err := transform.Identity{}.Map(r.Change)
			if err != nil {
				return err
			}
			for _, d := range docs {
				if d.Op == bus.DocIndex {
					fmt.Fprintf(&body, "{\"index\":{\"_index\":%q,\"_id\":%q}}\n%s\n", d.Index, d.ID, d.Source)
				}
			}
			after = r.Key
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		send()
		if read < 10_000 {
			break
		}
	}
	res, err := esapi.IndicesRefreshRequest{Index: []string{"items"}}.Do(ctx, es)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
}
