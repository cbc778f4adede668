package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/internal/faultes"
)

// Engine is an in-memory embedded engine served on 127.0.0.1 behind a
// fault-injection server: point walsearch's elasticsearch.url at URL, make
// the engine misbehave with Inject, and read what it holds with Compare
// (which bypasses the faults).
type Engine struct {
	*faultes.Server
	direct *http.Client
}

// StartEngine starts an engine stopped at the end of the test.
func StartEngine(tb testing.TB) *Engine {
	tb.Helper()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { eng.Close() })
	srv := faultes.Start(eng)
	tb.Cleanup(srv.Close)
	return &Engine{Server: srv, direct: &http.Client{Transport: eng.RoundTripper()}}
}

// Transport reaches the engine itself, past the fault injection: for
// reading what it holds while a fault is injected.
func (e *Engine) Transport() http.RoundTripper { return e.direct.Transport }

// call sends a request to the engine itself, past the fault injection.
func (e *Engine) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://eslite.e2e"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := e.direct.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, tail(string(out), 300))
	}
	return out, nil
}

// Count refreshes index and returns how many documents it holds.
func (e *Engine) Count(ctx context.Context, index string) (int64, error) {
	if _, err := e.call(ctx, "POST", "/"+index+"/_refresh", nil); err != nil {
		return 0, err
	}
	raw, err := e.call(ctx, "GET", "/"+index+"/_count", nil)
	if err != nil {
		return 0, err
	}
	var c struct {
		Count int64 `json:"count"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return 0, fmt.Errorf("count %s: %w", index, err)
	}
	return c.Count, nil
}

// sources reads the current source of each id in index (realtime _mget).
func (e *Engine) sources(ctx context.Context, index string, ids []string) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(ids))
	for start := 0; start < len(ids); start += 2000 {
		body, _ := json.Marshal(map[string]any{"ids": ids[start:min(len(ids), start+2000)]})
		raw, err := e.call(ctx, "POST", "/"+index+"/_mget", body)
		if err != nil {
			return nil, err
		}
		var mr struct {
			Docs []struct {
				ID     string          `json:"_id"`
				Found  bool            `json:"found"`
				Source json.RawMessage `json:"_source"`
			} `json:"docs"`
		}
		if err := json.Unmarshal(raw, &mr); err != nil {
			return nil, fmt.Errorf("mget %s: %w", index, err)
		}
		for _, d := range mr.Docs {
			if d.Found {
				out[d.ID] = d.Source
			}
		}
	}
	return out, nil
}

// Compare says how index differs from table, whose primary key is the
// single column key: "" when the index holds exactly one document per row
// and every document equals the row as PostgreSQL's row_to_json prints it
// (every column, with its value). Otherwise it describes up to ten
// differences.
func (e *Engine) Compare(ctx context.Context, conn *pgx.Conn, table, key, index string) (string, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT t.%s::text, row_to_json(t)::text FROM %s t`,
		pgx.Identifier{key}.Sanitize(), pgx.Identifier{table}.Sanitize()))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", table, err)
	}
	want := map[string]string{}
	var ids []string
	for rows.Next() {
		var id, doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return "", fmt.Errorf("read %s: %w", table, err)
		}
		want[id] = doc
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", table, err)
	}
	got, err := e.sources(ctx, index, ids)
	if err != nil {
		return "", err
	}
	var diffs []string
	for _, id := range ids {
		if len(diffs) == 10 {
			break
		}
		src, ok := got[id]
		switch {
		case !ok:
			diffs = append(diffs, "row "+id+" has no document")
		case !sameJSON([]byte(want[id]), src):
			diffs = append(diffs, fmt.Sprintf("row %s differs: table %s, index %s", id, tail(want[id], 200), tail(string(src), 200)))
		}
	}
	n, err := e.Count(ctx, index)
	if err != nil {
		return "", err
	}
	if n != int64(len(want)) {
		// The rows all have their documents (or diffs says otherwise): the
		// rest are documents of rows that no longer exist.
		diffs = append(diffs, fmt.Sprintf("index holds %d documents, table %d rows", n, len(want)))
	}
	return strings.Join(diffs, "; "), nil
}

func sameJSON(a, b []byte) bool {
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// WaitEqual polls Compare until the index equals the table, and fails the
// test with the differences when it does not within the time given.
func (e *Engine) WaitEqual(tb testing.TB, conn *pgx.Conn, table, key, index string, within time.Duration) {
	tb.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	for {
		diff, err := e.Compare(ctx, conn, table, key, index)
		if err == nil && diff == "" {
			return
		}
		if err != nil {
			diff = err.Error()
		}
		if time.Now().After(deadline) {
			tb.Fatalf("index %s did not equal table %s within %s: %s", index, table, within, diff)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
}
