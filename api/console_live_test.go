package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/config"
)

// requestAs sends one request with key (none when empty) and returns the
// body of a 2xx answer, else an error with the status and body.
func (lp *livePipeline) requestAs(key, method, path, body string) ([]byte, error) {
	code, raw, err := lp.sendAs(key, method, path, body, "application/json")
	if err == nil && (code < 200 || code > 299) {
		err = fmt.Errorf("%s %s: %d %s", method, path, code, raw)
	}
	return raw, err
}

// sendAs sends one request with key (none when empty) and content type
// (with a body) and returns the status and body.
func (lp *livePipeline) sendAs(key, method, path, body, contentType string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, lp.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

// writeScript replaces table's transform.js; the pipeline reloads it by
// itself.
func (lp *livePipeline) writeScript(t *testing.T, table, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(lp.cfg.ScriptsDir, table, "transform.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// touch updates user id, so that its row goes through its table's script
// again: the way to see a reloaded script at work.
func (lp *livePipeline) touch(t *testing.T, id int) {
	t.Helper()
	if _, err := lp.conn.Exec(t.Context(), `UPDATE users SET v = v + 1 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
}

type liveDLQ struct {
	DeadLetters []struct {
		Seq    uint64          `json:"seq"`
		Stage  string          `json:"stage"`
		Schema string          `json:"schema"`
		Table  string          `json:"table"`
		Error  string          `json:"error"`
		Stack  string          `json:"stack"`
		Event  json.RawMessage `json:"event"`
	} `json:"dead_letters"`
	Truncated bool `json:"truncated"`
}

func (lp *livePipeline) dlqAs(key, query string) (liveDLQ, error) {
	raw, err := lp.requestAs(key, "GET", "/dlq"+query, "")
	var d liveDLQ
	if err == nil {
		err = json.Unmarshal(raw, &d)
	}
	return d, err
}

// tables returns how many entries of d came from each table.
func (d liveDLQ) tables() map[string]int {
	out := map[string]int{}
	for _, dl := range d.DeadLetters {
		out[dl.Schema+"."+dl.Table]++
	}
	return out
}

// TestConsoleEndpointsLive checks the endpoints the web console adds,
// against a running pipeline with real dead letters in two tables: GET /dlq
// lists them with their errors (a limited key only its tables' and never
// another's to replay), POST /dlq/{seq}/replay republishes and removes an
// entry, GET /engine tells each index's version and documents and the
// breaker, and /ui answers without a key while the data needs one.
func TestConsoleEndpointsLive(t *testing.T) {
	t.Parallel()
	const keyAll, keyOrders = "console-all-key-0123456789", "console-orders-key-0123456789"
	lp := startLivePipelineWith(t, 30, liveOpts{
		setup: []string{
			`CREATE TABLE orders (id bigint PRIMARY KEY, amount int NOT NULL)`,
			`INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 20) g`,
		},
		scripts: map[string]string{
			// ids 10, 20, 30 of users and 5, 10, 15, 20 of orders.
			"users":  `function transform(doc) { if (doc.id % 10 === 0) { throw new Error("no tens"); } return doc; }`,
			"orders": `function transform(doc) { if (doc.id % 5 === 0) { throw new Error("no fives"); } return doc; }`,
		},
		cfg: func(c *config.Config) {
			c.API.Keys = []config.APIKey{{Key: keyAll}, {Key: keyOrders, Indices: []string{"orders"}}}
		},
		ready: func(lp *livePipeline) error {
			d, err := lp.dlqAs(keyAll, "")
			if err == nil && len(d.DeadLetters) != 7 {
				err = fmt.Errorf("%d dead letters listed, want 7", len(d.DeadLetters))
			}
			return err
		},
	})

	all, err := lp.dlqAs(keyAll, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := all.tables(); got["public.users"] != 3 || got["public.orders"] != 4 || all.Truncated {
		t.Errorf("GET /dlq: by table %v (truncated %v), want 3 users and 4 orders", got, all.Truncated)
	}
	var usersSeq uint64
	for i, dl := range all.DeadLetters {
		if i > 0 && dl.Seq <= all.DeadLetters[i-1].Seq {
			t.Errorf("GET /dlq: not oldest first: %d after %d", dl.Seq, all.DeadLetters[i-1].Seq)
		}
		want := map[string]string{"users": "no tens", "orders": "no fives"}[dl.Table]
		if dl.Stage != "transform" || !strings.Contains(dl.Error, want) || len(dl.Event) == 0 {
			t.Errorf("GET /dlq: entry %d: stage %q, error %q, event %s; want transform, %q and the event", dl.Seq, dl.Stage, dl.Error, dl.Event, want)
		}
		// users' password_hash is hidden: never shown, at any depth.
		if dl.Table == "users" && (strings.Contains(string(dl.Event), "password_hash") || !strings.Contains(string(dl.Event), `"name":"user `)) {
			t.Errorf("GET /dlq: users entry %d: event %s, want its row without password_hash", dl.Seq, dl.Event)
		}
		if dl.Table == "users" && usersSeq == 0 {
			usersSeq = dl.Seq
		}
	}
	if page, err := lp.dlqAs(keyAll, "?limit=2"); err != nil || len(page.DeadLetters) != 2 || !page.Truncated {
		t.Errorf("GET /dlq?limit=2: %d entries, truncated %v (%v); want 2 and truncated", len(page.DeadLetters), page.Truncated, err)
	}
	if code, raw, _ := lp.sendAs(keyAll, "GET", "/dlq?limit=0", "", ""); code != 400 {
		t.Errorf("GET /dlq?limit=0: %d %s, want 400", code, raw)
	}

	// The key limited to orders: orders' entries only, and users' entries
	// are missing to it, to list and to replay.
	orders, err := lp.dlqAs(keyOrders, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := orders.tables(); len(got) != 1 || got["public.orders"] != 4 {
		t.Errorf("orders-only key: GET /dlq by table %v, want 4 of public.orders only", got)
	}
	replayPath := fmt.Sprintf("/dlq/%d/replay", usersSeq)
	if code, raw, _ := lp.sendAs(keyOrders, "POST", replayPath, "{}", "application/json"); code != 404 {
		t.Errorf("orders-only key replaying a users entry: %d %s, want 404", code, raw)
	}
	// Without a key, and without JSON (as a cross-site form would send).
	if code, _, _ := lp.sendAs("", "GET", "/dlq", "", ""); code != 401 {
		t.Errorf("GET /dlq without a key: %d, want 401", code)
	}
	if code, raw, _ := lp.sendAs(keyAll, "POST", replayPath, "x=1", "application/x-www-form-urlencoded"); code != 415 {
		t.Errorf("replay sent as a form: %d %s, want 415", code, raw)
	}

	// Fix users' script (a probe row shows when the new one runs), then
	// replay the users entry: it leaves the queue and its row becomes
	// searchable.
	lp.writeScript(t, "users", `function transform(doc) { doc.status = "fixed"; return doc; }`)
	if _, err := lp.conn.Exec(t.Context(), `INSERT INTO users (id, name) VALUES (1001, 'probe')`); err != nil {
		t.Fatal(err)
	}
	lp.waitFor(t, 60*time.Second, func(lp *livePipeline) error {
		lp.touch(t, 1001)
		n, err := lp.searchTotalAs(keyAll, `{"index":"users","query_fields":{"id":1001,"status":"fixed"}}`)
		if err == nil && n != 1 {
			err = fmt.Errorf("probe row: not transformed by the new script yet")
		}
		return err
	})
	raw, err := lp.requestAs(keyAll, "POST", replayPath, "{}")
	if err != nil || !strings.Contains(string(raw), `"replayed":true`) {
		t.Fatalf("replay: %s %v", raw, err)
	}
	if code, raw, _ := lp.sendAs(keyAll, "POST", replayPath, "{}", "application/json"); code != 404 {
		t.Errorf("second replay of %d: %d %s, want 404", usersSeq, code, raw)
	}
	lp.waitFor(t, 60*time.Second, func(lp *livePipeline) error {
		d, err := lp.dlqAs(keyAll, "")
		if err != nil {
			return err
		}
		if got := d.tables(); got["public.users"] != 2 || got["public.orders"] != 4 {
			return fmt.Errorf("after replay: by table %v, want 2 users and 4 orders", got)
		}
		n, err := lp.searchTotalAs(keyAll, `{"index":"users"}`)
		if err == nil && n != 29 {
			err = fmt.Errorf("users: %d documents, want 29 (27 rows, the probe and the replayed row)", n)
		}
		return err
	})

	// GET /engine: versions, documents and the breaker; a limited key sees
	// its indices only.
	var eng struct {
		Breaker struct {
			Open bool `json:"open"`
		} `json:"breaker"`
		Indices []struct {
			Name      string `json:"name"`
			Index     string `json:"index"`
			Documents int64  `json:"documents"`
		} `json:"indices"`
	}
	raw, err = lp.requestAs(keyAll, "GET", "/engine", "")
	if err != nil || json.Unmarshal(raw, &eng) != nil {
		t.Fatalf("GET /engine: %s %v", raw, err)
	}
	got := fmt.Sprint(eng.Breaker.Open, eng.Indices)
	if want := "false [{orders orders_v1 16} {users users_v1 29}]"; got != want {
		t.Errorf("GET /engine: %s, want %s", got, want)
	}
	raw, err = lp.requestAs(keyOrders, "GET", "/engine", "")
	if err != nil || json.Unmarshal(raw, &eng) != nil || len(eng.Indices) != 1 || eng.Indices[0].Name != "orders" {
		t.Errorf("orders-only key: GET /engine %s %v, want orders only", raw, err)
	}

	// The console's files answer without a key; unknown ones are 404.
	for path, want := range map[string]string{"/ui": "<title>Walsearch console</title>", "/ui/": "<title>Walsearch console</title>", "/ui/console.js": "/dlq/", "/ui/console.css": "progress"} {
		code, raw, _ := lp.sendAs("", "GET", path, "", "")
		if code != 200 || !strings.Contains(string(raw), want) {
			t.Errorf("GET %s without a key: %d, body has %q: %v", path, code, want, strings.Contains(string(raw), want))
		}
	}
	for _, path := range []string{"/ui/nope.js", "/ui/..%2Fconsole.go"} {
		if code, _, _ := lp.sendAs("", "GET", path, "", ""); code != 404 {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
}
