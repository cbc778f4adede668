package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/internal/pgtest"
	"github.com/walsearch/walsearch/internal/pipeline"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &cluster) }

// ScrollDocsEnv sizes the cursor acceptance test (default 3000; the
// requirement's full size is 25000).
const ScrollDocsEnv = "WALSEARCH_TEST_SCROLL_DOCS"

// livePipeline runs the whole pipeline in-process against a fresh database
// whose users table holds n rows, and waits until they are all searchable.
type livePipeline struct {
	*testServer
	conn *pgx.Conn
	url  string
	p    *pipeline.Pipeline
	cfg  config.Config
	// stop ends p and waits for it.
	stop func()
}

// liveOpts adds to the database, the scripts and the configuration of a
// live pipeline.
type liveOpts struct {
	// setup runs after the users table is filled, before the pipeline starts.
	setup []string
	// scripts are transform.js sources by table folder ("orders").
	scripts map[string]string
	cfg     func(*config.Config)
	// ready is polled until it holds, instead of waiting for the n users.
	ready func(lp *livePipeline) error
}

func startLivePipeline(t *testing.T, n int) *livePipeline {
	t.Helper()
	return startLivePipelineWith(t, n, liveOpts{})
}

func startLivePipelineWith(t *testing.T, n int, o liveOpts) *livePipeline {
	t.Helper()
	c := pgtest.Require(t, cluster)
	dbURL := c.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, status text,
		age int, password_hash text, v int NOT NULL DEFAULT 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO users (id, name, status, age, password_hash)
		SELECT g, 'user ' || g, CASE WHEN g % 2 = 0 THEN 'active' ELSE 'inactive' END, 20 + g % 50, 'pbkdf2$' || md5(g::text)
		FROM generate_series(1, $1::int) g`, n); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range o.setup {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	scripts := t.TempDir()
	for table, src := range o.scripts {
		if err := os.MkdirAll(filepath.Join(scripts, table), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(scripts, table, "transform.js"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.ScriptsDir = scripts
	cfg.Postgres.URL = dbURL
	// Slots are per cluster: one per database lets live tests run in parallel.
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Postgres.Slot = "ws_" + path.Base(u.Path)
	cfg.API.Listen = addr
	cfg.API.RateLimit = 0
	cfg.Indices = map[string]config.IndexCfg{"users": {API: api.IndexConfig{HiddenFields: []string{"password_hash"}}}}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	lp := &livePipeline{conn: conn, url: dbURL, cfg: cfg}
	lp.run(t)
	t.Cleanup(func() { lp.stop() })
	if o.ready == nil {
		lp.waitTotal(t, `{"index":"users","page_size":1}`, n, 120*time.Second)
	} else {
		lp.waitFor(t, 120*time.Second, o.ready)
	}
	return lp
}

// run starts the pipeline of lp.cfg (its API on lp.cfg.API.Listen) and
// sets lp.stop.
func (lp *livePipeline) run(t *testing.T) {
	t.Helper()
	p, err := pipeline.Start(context.Background(), lp.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	lp.p, lp.testServer = p, &testServer{base: "http://" + lp.cfg.API.Listen, es: p.ES}
	lp.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("pipeline Run: %v", err)
			}
			p.Close()
		})
	}
}

// restart stops the pipeline and starts it again on the same data
// directory, slot and API address, as a new process would.
func (lp *livePipeline) restart(t *testing.T) {
	t.Helper()
	lp.stop()
	lp.run(t)
}

// waitFor polls cond until it returns nil.
func (lp *livePipeline) waitFor(t *testing.T, within time.Duration, cond func(*livePipeline) error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond(lp)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", within, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// total returns the total_records of a search, or an error.
func (lp *livePipeline) total(body string) (int, error) {
	raw, err := tryPost(lp.base, body)
	if err != nil {
		return 0, err
	}
	var sr struct {
		Meta struct {
			Total int `json:"total_records"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(raw, &sr); err != nil {
		return 0, err
	}
	return sr.Meta.Total, nil
}

// waitTotal polls a search until it reports want records.
func (lp *livePipeline) waitTotal(t *testing.T, body string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		if r, err := tryPost(lp.base, body); err == nil {
			var sr struct {
				Meta struct {
					Total int `json:"total_records"`
				} `json:"meta"`
			}
			if json.Unmarshal(r, &sr) == nil && sr.Meta.Total == want {
				return
			}
			last = string(r)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	t.Fatalf("never reached %d records within %s: %.300s", want, within, last)
}

func TestLiveCursorPagingWhileRowsAreUpdated(t *testing.T) {
	n := 3000
	if v, err := strconv.Atoi(os.Getenv(ScrollDocsEnv)); err == nil && v > 0 {
		n = v
	}
	lp := startLivePipeline(t, n)
	ctx, stop := context.WithCancel(context.Background())
	wconn, err := pgx.Connect(ctx, lp.url)
	if err != nil {
		t.Fatal(err)
	}
	defer wconn.Close(context.Background())
	var wg sync.WaitGroup
	var updates int
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(7, 8))
		for ctx.Err() == nil {
			id := rng.IntN(n) + 1
			if _, err := wconn.Exec(ctx, `UPDATE users SET v = v + 1, status = $2, age = age + 1 WHERE id = $1`,
				id, []string{"active", "inactive", "banned"}[rng.IntN(3)]); err == nil {
				updates++
			}
		}
	}()
	seen := make(map[int64]int, n)
	path := "/search/users/scroll?size=1000"
	pages := 0
	for {
		r := lp.do(t, "GET", path, "")
		var sr struct {
			Data []map[string]any `json:"data"`
			Meta struct {
				HasNext bool    `json:"has_next"`
				Next    *string `json:"next_cursor"`
			} `json:"meta"`
		}
		r.decode(t, &sr)
		if r.code != 200 {
			t.Fatalf("page %d: %d %s", pages, r.code, r.body)
		}
		pages++
		for _, d := range sr.Data {
			if _, ok := d["password_hash"]; ok {
				t.Fatalf("hidden field returned: %v", d)
			}
			seen[int64(d["id"].(float64))]++
		}
		if !sr.Meta.HasNext {
			break
		}
		path = "/search/users/scroll?size=1000&cursor=" + url.QueryEscape(*sr.Meta.Next)
	}
	stop()
	wg.Wait()
	for id := int64(1); id <= int64(n); id++ {
		if seen[id] != 1 {
			t.Fatalf("id %d seen %d times (%d pages, %d updates during the walk)", id, seen[id], pages, updates)
		}
	}
	if len(seen) != n {
		t.Fatalf("saw %d ids, want %d", len(seen), n)
	}
	t.Logf("%d documents in %d pages, exactly once each, while %d updates were applied", n, pages, updates)
}

func TestLiveReadYourWritesHiddenFieldsAndStatus(t *testing.T) {
	lp := startLivePipeline(t, 200)
	ctx := context.Background()
	// A row inserted a moment earlier is returned, every time.
	for i := range 20 {
		id := 100000 + i
		var lsn string
		if err := lp.conn.QueryRow(ctx, `INSERT INTO users (id, name, status) VALUES ($1, 'fresh', 'new') RETURNING (SELECT pg_current_wal_insert_lsn()::text)`, id).Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		if err := lp.conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(`{"index":"users","query_fields":{"id":%d},"min_lsn":%q}`, id, lsn)
		if i%2 == 1 { // the header form
			body = fmt.Sprintf(`{"index":"users","query_fields":{"id":%d}}`, id)
		}
		r := lp.search(t, body, "X-Walsearch-Min-LSN", lsn)
		var sr struct {
			Data []map[string]any `json:"data"`
		}
		r.decode(t, &sr)
		if r.code != 200 || len(sr.Data) != 1 || sr.Data[0]["name"] != "fresh" {
			st := lp.do(t, "GET", "/status", "")
			time.Sleep(time.Second)
			again := lp.search(t, body)
			t.Fatalf("row %d inserted before %s not returned: %d %s\nstatus: %s\nlater: %s", id, lsn, r.code, r.body, st.body, again.body)
		}
	}
	// Hidden fields: not listed, not searchable, not returned.
	if r := lp.do(t, "GET", "/indices/users/fields", ""); r.code != 200 || strings.Contains(string(r.body), "password") {
		t.Fatalf("fields: %d %s", r.code, r.body)
	}
	for _, body := range []string{
		`{"index":"users","fields":["password_hash"]}`,
		`{"index":"users","query_fields":{"password_hash":"x"}}`,
		`{"index":"users","sort_by":{"password_hash":"asc"}}`,
		`{"index":"users","facets":["password_hash"]}`,
	} {
		if r := lp.search(t, body); r.code != 400 {
			t.Errorf("%s: %d %s", body, r.code, r.body)
		}
	}
	if r := lp.search(t, `{"index":"users","q":"pbkdf2","highlight":true}`); r.code != 200 || strings.Contains(string(r.body), "pbkdf2$") {
		t.Errorf("q reaches the hidden field: %s", r.body)
	}
	r := lp.do(t, "GET", "/indices", "")
	if r.code != 200 || !strings.Contains(string(r.body), `{"name":"users","schema":"public","table":"users","key":["id"]}`) {
		t.Fatalf("indices: %d %s", r.code, r.body)
	}
	r = lp.do(t, "GET", "/status", "")
	var st struct {
		Tables []struct {
			Index     string `json:"index"`
			Snapshot  string `json:"snapshot"`
			Documents int64  `json:"documents"`
		} `json:"tables"`
		AppliedLSN   string            `json:"applied_lsn"`
		SlotLagBytes int64             `json:"slot_lag_bytes"`
		BusBacklog   map[string]uint64 `json:"bus_backlog"`
	}
	r.decode(t, &st)
	if r.code != 200 || len(st.Tables) != 1 || st.Tables[0].Index != "users" || st.Tables[0].Documents != 220 ||
		st.AppliedLSN == "0/0" || st.SlotLagBytes < 0 || len(st.BusBacklog) != 2 {
		t.Fatalf("status: %d %s", r.code, r.body)
	}
	r = lp.do(t, "GET", "/metrics", "")
	for _, m := range []string{"walsearch_sink_documents_indexed_total", "walsearch_lag_bytes", "walsearch_bus_backlog_messages{consumer=\"sink\"}",
		`walsearch_api_request_duration_seconds_bucket{method="POST",route="/search"`, "walsearch_dlq_messages 0"} {
		if !strings.Contains(string(r.body), m) {
			var near []string
			for _, line := range strings.Split(string(r.body), "\n") {
				if strings.HasPrefix(line, m[:strings.IndexAny(m+"{", "{")]) {
					near = append(near, line)
				}
			}
			t.Errorf("metrics lack %s; lines with that name:\n%s", m, strings.Join(near, "\n"))
		}
	}
	if r := lp.do(t, "GET", "/health", ""); r.code != 200 || !strings.Contains(string(r.body), `"status":"ok"`) {
		t.Errorf("health: %d %s", r.code, r.body)
	}
}
