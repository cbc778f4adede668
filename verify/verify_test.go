package verify_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/internal/pgtest"
	"github.com/walsearch/walsearch/transform"
	"github.com/walsearch/walsearch/verify"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &cluster) }

// send sends an Elasticsearch API request to es and fails on an error.
func send(t *testing.T, es *esclient.Client, req esapi.Request) {
	t.Helper()
	res, err := req.Do(context.Background(), es)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.IsError() {
		t.Fatalf("%T: %s", req, res.Status())
	}
}

// TestRunThroughScriptCapsKeys checks the Go API a chaos harness calls: the
// expected documents come from the table's script (an enum and a domain
// converted as capture converts them), and the ids of each kind of drift
// are capped at MaxKeys while all are counted.
func TestRunThroughScriptCapsKeys(t *testing.T) {
	c := pgtest.Require(t, cluster)
	t.Parallel()
	url := c.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN qty AS integer;
CREATE TABLE items (id int PRIMARY KEY, m mood, q qty);
INSERT INTO items SELECT g, 'happy', g FROM generate_series(1, 20) g;`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "items"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "items", "transform.js"),
		[]byte(`function transform(doc) { return {mood: doc.m, double: doc.q * 2}; }`), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := transform.DefaultScriptConfig()
	sc.Dir, sc.ReloadInterval = dir, 0
	scripts, err := transform.LoadScripts(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer scripts.Close()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	es, err := esclient.New(esclient.Config{Transport: eng.RoundTripper()})
	if err != nil {
		t.Fatal(err)
	}
	// The index as the pipeline would have it, but for ids 1-5 (missing),
	// 6-8 with a wrong value (stale), and 101-104 without a row (extra).
	var body bytes.Buffer
	for id := 6; id <= 20; id++ {
		double := id * 2
		if id <= 8 {
			double = -1
		}
		fmt.Fprintf(&body, "{\"index\":{\"_index\":\"items\",\"_id\":\"%d\",\"version\":1,\"version_type\":\"external\"}}\n{\"mood\":\"happy\",\"double\":%d}\n", id, double)
	}
	for id := 101; id <= 104; id++ {
		fmt.Fprintf(&body, "{\"index\":{\"_index\":\"items\",\"_id\":\"%d\"}}\n{\"mood\":\"sad\",\"double\":0}\n", id)
	}
	send(t, es, esapi.BulkRequest{Body: &body, Refresh: "true"})

	cfg := verify.DefaultConfig()
	cfg.URL, cfg.Tables, cfg.Scripts, cfg.ES = url, []string{"items"}, scripts, es
	cfg.MaxKeys, cfg.Settle, cfg.ChunkRows = 2, 200*time.Millisecond, 7
	var progress []verify.Progress
	cfg.Progress = func(p verify.Progress) { progress = append(progress, p) }
	rep, err := verify.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Tables[0]
	if tr.Table != "public.items" || tr.Rows != 20 || tr.Documents != 20 || tr.Error != "" {
		t.Fatalf("report: %+v", tr)
	}
	for _, k := range []struct {
		name  string
		got   verify.Keys
		count int
		ids   []string
	}{{"missing", tr.Missing, 5, []string{"1", "2", "3", "4", "5"}}, {"stale", tr.Stale, 3, []string{"6", "7", "8"}},
		{"extra", tr.Extra, 4, []string{"101", "102", "103", "104"}}} {
		if k.got.Count != k.count || len(k.got.IDs) != 2 {
			t.Errorf("%s: %+v, want %d counted and 2 listed", k.name, k.got, k.count)
		}
		for _, id := range k.got.IDs {
			if !slices.Contains(k.ids, id) {
				t.Errorf("%s lists %s, not one of %v", k.name, id, k.ids)
			}
		}
	}
	if rep.Drift() != 12 {
		t.Errorf("drift %d, want 12", rep.Drift())
	}
	// Chunks of 7: progress after 7, 14 and 20 rows.
	if len(progress) != 3 || progress[2].Rows != 20 || progress[2].RowsPerSecond <= 0 {
		t.Errorf("progress: %+v", progress)
	}
}
