package main

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/walsearch/walsearch/internal/faultes"
	"github.com/walsearch/walsearch/verify"
)

const verifyTable = `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int NOT NULL, note text);
INSERT INTO items SELECT g, 'item ' || g, g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'note' END FROM generate_series(1, 300) g;`

// exitCode is the exit status walsearch would end with after err.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// verifyJSON runs walsearch verify --json and decodes its report.
func verifyJSON(t *testing.T, args ...string) (*verify.Report, int) {
	t.Helper()
	out, err := runCLI(t, nil, append([]string{"verify", "--json"}, args...)...)
	var rep verify.Report
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("verify --json printed no report (%v, exit %d): %v\n%s", err, exitCode(err), jerr, out)
	}
	return &rep, exitCode(err)
}

// concurrentWrites inserts, updates and deletes rows of items other than
// the ones in keep until the returned stop is called.
func concurrentWrites(t *testing.T, dbURL string, keep ...int64) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var n int
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close(context.Background())
		rng := rand.New(rand.NewPCG(3, 4))
		next := int64(1000)
		pace := time.NewTicker(5 * time.Millisecond) // a steady 200 writes/s
		defer pace.Stop()
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-pace.C:
			}
			var err error
			switch id := rng.Int64N(300) + 1; rng.IntN(4) {
			case 0:
				next++
				_, err = conn.Exec(ctx, `INSERT INTO items VALUES ($1, 'new', 0, NULL)`, next)
			case 1:
				_, err = conn.Exec(ctx, `DELETE FROM items WHERE id = $1 AND id > 1000`, rng.Int64N(next-999)+1000)
			default:
				if slices.Contains(keep, id) {
					continue
				}
				_, err = conn.Exec(ctx, `UPDATE items SET n = n + 1, note = 'changed ' || n WHERE id = $1`, id)
			}
			if err != nil && ctx.Err() == nil {
				t.Errorf("concurrent write: %v", err)
				return
			}
			n++
		}
	}()
	stop = func() int {
		cancel()
		wg.Wait()
		return n
	}
	t.Cleanup(func() { stop() }) // before the database is dropped
	return stop
}

// oldWatermarkTable is the watermark table as versions before repairs made
// it: capture adds the keys column repairs need.
const oldWatermarkTable = `CREATE TABLE public.walsearch_watermarks (
	id bigserial PRIMARY KEY, slot text NOT NULL, kind text NOT NULL CHECK (kind IN ('low', 'high', 'backfill')),
	tbl text, chunk bigint, rate double precision, created_at timestamptz NOT NULL DEFAULT now());`

func TestVerifyFindsAndRepairsDrift(t *testing.T) {
	t.Parallel()
	dbURL, conn := testDB(t, verifyTable+oldWatermarkTable)
	eng := e2e.StartEngine(t)
	r := runPipeline(t, dbURL, "vdrift", "elasticsearch:\n  url: "+eng.URL+"\n")
	eng.WaitEqual(t, conn, "items", "id", "items", 60*time.Second)

	// A clean index exits 0, with writes going on.
	stop := concurrentWrites(t, dbURL, 5, 7)
	rep, code := verifyJSON(t, "--config", r.cfgPath, "--settle", "3s", "items")
	if code != 0 || rep.Drift() != 0 || len(rep.Tables) != 1 || rep.Tables[0].Rows < 300 {
		t.Fatalf("clean index: exit %d, report %+v", code, rep)
	}

	// Drift behind walsearch's back: a deleted document, a stale field, an
	// extra document.
	ctx := context.Background()
	for _, c := range []struct{ method, path, body string }{
		{"DELETE", "/items/_doc/5", ""},
		{"PUT", "/items/_doc/7", `{"id":7,"name":"tampered","n":7,"note":"note"}`},
		{"PUT", "/items/_doc/100000", `{"id":100000,"name":"ghost","n":0,"note":null}`},
		{"POST", "/items/_refresh", ""},
	} {
		req, err := http.NewRequestWithContext(ctx, c.method, eng.URL+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s: HTTP %d", c.method, c.path, res.StatusCode)
		}
	}
	rep, code = verifyJSON(t, "--config", r.cfgPath, "--settle", "3s")
	if code != 1 {
		t.Fatalf("drift: exit %d, want 1: %+v", code, rep)
	}
	tr := rep.Tables[0]
	if tr.Table != "public.items" || tr.Index != "items" ||
		!slices.Equal(tr.Missing.IDs, []string{"5"}) || !slices.Equal(tr.Stale.IDs, []string{"7"}) ||
		!slices.Equal(tr.Extra.IDs, []string{"100000"}) || tr.Drift() != 3 {
		t.Fatalf("want missing 5, stale 7, extra 100000 and nothing else, got %+v", tr)
	}

	// --repair re-syncs exactly those keys.
	rep, code = verifyJSON(t, "--config", r.cfgPath, "--settle", "3s", "--repair", "--repair-wait", "20s", "items")
	if code != 0 || rep.Tables[0].Repaired != 3 || rep.Drift() != 0 {
		t.Fatalf("repair: exit %d, want 0 with 3 repaired: %+v", code, rep.Tables[0])
	}
	var keys []string
	rows, err := conn.Query(ctx, `SELECT keys::text FROM walsearch_watermarks WHERE keys IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != `[["100000"], ["5"], ["7"]]` {
		t.Fatalf("repair requests: %q, want one for keys 5, 7 and 100000", keys)
	}
	writes := stop()
	t.Logf("%d concurrent writes during the checks", writes)
	rep, code = verifyJSON(t, "--config", r.cfgPath, "--settle", "3s")
	if code != 0 || rep.Drift() != 0 {
		t.Fatalf("after repair: exit %d: %+v", code, rep)
	}
	eng.WaitEqual(t, conn, "items", "id", "items", 30*time.Second)
}

func TestVerifyEmbeddedEngineAndExitStatus(t *testing.T) {
	t.Parallel()
	dbURL, _ := testDB(t, verifyTable)
	r := runPipeline(t, dbURL, "vembed", "")
	// The embedded engine is held by walsearch run: verify reaches it
	// through the API, and waits for the snapshot through the watermark.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := runCLI(t, nil, "verify", "--config", r.cfgPath, "--settle", "1s")
		if err == nil {
			if !strings.Contains(out, "public.items → items: in sync (300 rows, 300 documents") {
				t.Fatalf("clean report:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verify did not pass within 60s: exit %d: %v\n%s", exitCode(err), err, out)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	_, err := runCLI(t, nil, "verify", "--config", r.cfgPath, "nosuch")
	if exitCode(err) != 2 {
		t.Fatalf("a table that does not exist: exit %d (%v), want 2", exitCode(err), err)
	}
}

// statusChecks reads the checks section of GET /status.
func statusChecks(t *testing.T, r running) verify.MonitorStatus {
	t.Helper()
	var st struct {
		Checks verify.MonitorStatus `json:"checks"`
	}
	if err := r.apiJSON("GET", "/status", "", &st); err != nil {
		t.Fatal(err)
	}
	return st.Checks
}

func metricsText(t *testing.T, r running) string {
	t.Helper()
	res, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, within, last)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

func deleteBehindBack(t *testing.T, eng *e2e.Engine, id string) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", eng.URL+"/items/_doc/"+id+"?refresh=true", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("delete %s: HTTP %d", id, res.StatusCode)
	}
}

func TestContinuousVerifyReportsDrift(t *testing.T) {
	t.Parallel()
	dbURL, conn := testDB(t, verifyTable)
	eng := e2e.StartEngine(t)
	r := runPipeline(t, dbURL, "vcont", "elasticsearch:\n  url: "+eng.URL+"\nverify:\n  interval: 300ms\n  settle: 500ms\n  no_progress_after: 2s\n")
	eng.WaitEqual(t, conn, "items", "id", "items", 60*time.Second)
	waitFor(t, 30*time.Second, "a clean verification", func() (bool, string) {
		st := statusChecks(t, r)
		return len(st.Verify) == 1 && !st.Verify[0].LastVerified.IsZero() && st.Verify[0].Drift == 0, fmt.Sprintf("%+v", st)
	})
	deleteBehindBack(t, eng, "5")
	waitFor(t, 30*time.Second, "drift in /status and /metrics", func() (bool, string) {
		st := statusChecks(t, r)
		m := metricsText(t, r)
		ok := len(st.Verify) == 1 && st.Verify[0].Drift == 1 && slices.Equal(st.Verify[0].Missing.IDs, []string{"5"}) &&
			strings.Contains(m, `walsearch_verify_drift_documents{kind="missing",table="public.items"} 1`) &&
			strings.Contains(m, `walsearch_verify_last_verified_timestamp_seconds{table="public.items"}`)
		return ok, fmt.Sprintf("%+v", st)
	})
	if !strings.Contains(r.p.output(), "the index has drifted from its table") {
		t.Fatalf("drift not logged as an error:\n%s", r.p.output())
	}

	// No progress: the engine refuses every write while rows change.
	eng.Inject(faultes.Fault{Status: 503})
	if _, err := conn.Exec(context.Background(), `UPDATE items SET n = n + 1 WHERE id <= 10`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "no progress reported", func() (bool, string) {
		st := statusChecks(t, r)
		m := metricsText(t, r)
		ok := len(st.NoProgress) > 0 && st.NoProgress[0].Check == "applied" &&
			strings.Contains(m, `walsearch_no_progress{check="applied"} 1`)
		return ok, fmt.Sprintf("%+v", st.NoProgress)
	})
	eng.Clear()
	waitFor(t, 30*time.Second, "progress again", func() (bool, string) {
		st := statusChecks(t, r)
		return len(st.NoProgress) == 0, fmt.Sprintf("%+v", st.NoProgress)
	})
}

func TestContinuousVerifyRepairs(t *testing.T) {
	t.Parallel()
	dbURL, conn := testDB(t, verifyTable)
	eng := e2e.StartEngine(t)
	r := runPipeline(t, dbURL, "vcrep", "elasticsearch:\n  url: "+eng.URL+"\nverify:\n  interval: 300ms\n  settle: 500ms\n  repair: true\n")
	eng.WaitEqual(t, conn, "items", "id", "items", 60*time.Second)
	deleteBehindBack(t, eng, "9")
	waitFor(t, 60*time.Second, "the repair counted", func() (bool, string) {
		st := statusChecks(t, r)
		return len(st.Verify) == 1 && st.Verify[0].Repaired == 1 && st.Verify[0].Drift == 0 &&
			strings.Contains(metricsText(t, r), `walsearch_verify_repaired_documents_total{table="public.items"} 1`), fmt.Sprintf("%+v", st)
	})
	eng.WaitEqual(t, conn, "items", "id", "items", 10*time.Second)
}

func TestResyncRebuildsFromPostgres(t *testing.T) {
	t.Parallel()
	dbURL, conn := testDB(t, verifyTable)
	eng := e2e.StartEngine(t)
	r := runPipeline(t, dbURL, "vresync", "elasticsearch:\n  url: "+eng.URL+"\nsink:\n  reindex_grace: 1s\n")
	eng.WaitEqual(t, conn, "items", "id", "items", 60*time.Second)
	deleteBehindBack(t, eng, "5")
	req, _ := http.NewRequest("PUT", eng.URL+"/items/_doc/100000?refresh=true", strings.NewReader(`{"id":100000,"name":"ghost","n":0}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	stop := concurrentWrites(t, dbURL)
	out, err := runCLI(t, nil, "resync", "items", "--config", r.cfgPath, "--nats-url", "nats://"+r.natsAddr)
	if err != nil {
		t.Fatalf("resync: %v\n%s", err, out)
	}
	if !strings.Contains(out, "alias items now points to items_v2") {
		t.Fatalf("resync output:\n%s", out)
	}
	stop()
	eng.WaitEqual(t, conn, "items", "id", "items", 30*time.Second)
	rep, code := verifyJSON(t, "--config", r.cfgPath, "--settle", "1s")
	if code != 0 || rep.Tables[0].Rows < 300 {
		t.Fatalf("verify after resync: exit %d: %+v", code, rep.Tables)
	}
}
