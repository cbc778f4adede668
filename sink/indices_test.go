package sink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/sink"
)

func (e *env) getJSON(req esapi.Request) (int, map[string]any) {
	e.t.Helper()
	res, err := req.Do(context.Background(), e.es)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

func TestAliasName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"users": "users", "sales.orders": "sales.orders", "order-items": "order-items",
	} {
		if got := sink.AliasName(in); got != want {
			t.Errorf("AliasName(%q) = %q, want %q", in, got, want)
		}
	}
	seen := map[string]string{}
	for _, in := range []string{"users", "Users", "USERS", "my table", "_hidden", "users_v1", "Sales.Orders", "sales.orders", "a#b", "a:b"} {
		got := sink.AliasName(in)
		if other, dup := seen[got]; dup {
			t.Errorf("%q and %q both map to %q", in, other, got)
		}
		seen[got] = in
		if got != strings.ToLower(got) || strings.ContainsAny(got, ` #:"*\<>|,/?`) || strings.ContainsAny(got[:1], "_-+") {
			t.Errorf("AliasName(%q) = %q is not a valid index name", in, got)
		}
		if sink.AliasName(got) != got {
			t.Errorf("AliasName(%q) = %q is not stable", in, got)
		}
	}
}

func TestSinkCreatesAliasedIndexWithMappingFromColumnTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	ts := &bus.TableSchema{Schema: "public", Table: "users", Key: []string{"id"}, Columns: []bus.ColumnSchema{
		{Name: "id", Type: "bigint"}, {Name: "name", Type: "text"}, {Name: "price", Type: "numeric"},
		{Name: "score", Type: "double precision"}, {Name: "created", Type: "timestamp with time zone"},
		{Name: "born", Type: "date"}, {Name: "active", Type: "boolean"}, {Name: "attrs", Type: "jsonb"},
		{Name: "tags", Type: "text[]", Array: true}, {Name: "uid", Type: "uuid"}, {Name: "blob", Type: "bytea"},
		{Name: "spot", Type: "point"},
	}}
	if err := bus.PutTableSchema(ctx, e.bus.State(), ts); err != nil {
		t.Fatal(err)
	}
	cfg := sink.DefaultConfig()
	cfg.Schemas = e.bus.State()
	cfg.SchemaRecheck = 100 * time.Millisecond
	cfg.Indices = map[string]sink.IndexConfig{"users": {
		Settings: map[string]any{"number_of_replicas": 0},
		Mappings: map[string]any{"properties": map[string]any{"uid": map[string]any{"type": "text"}}},
	}}
	s := e.start(cfg)
	e.publish(idx("1", 100, `{"id":1,"name":"ann","price":"3.14159265358979323846","score":1.5,"created":"2024-01-31T10:11:12.123456Z",`+
		`"born":"-0043-03-15","active":true,"attrs":{"a":[1,2]},"tags":["x","y"],"uid":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","blob":"AP8Q","spot":"(1,2)"}`))
	e.waitFor("first document", func() bool { _, _, ok := e.get("users", "1"); return ok })
	if n := s.Status().DeadLetters; n != 0 {
		t.Fatalf("%d dead letters: a value capture emits was refused by the derived mapping", n)
	}
	_, alias := e.getJSON(esapi.IndicesGetAliasRequest{Name: []string{"users"}})
	if _, ok := alias["users_v1"]; !ok {
		t.Fatalf("alias users does not point to users_v1: %v", alias)
	}
	_, m := e.getJSON(esapi.IndicesGetMappingRequest{Index: []string{"users_v1"}})
	props := m["users_v1"].(map[string]any)["mappings"].(map[string]any)["properties"].(map[string]any)
	typ := func(f string) string { p, _ := props[f].(map[string]any); s, _ := p["type"].(string); return s }
	for f, want := range map[string]string{"id": "long", "name": "text", "price": "double", "score": "double", "created": "date",
		"born": "date", "active": "boolean", "tags": "text", "uid": "text", "blob": "keyword", "spot": "keyword"} {
		if got := typ(f); got != want {
			t.Errorf("field %s mapped as %q, want %q", f, got, want)
		}
	}
	if _, ok := props["attrs"].(map[string]any)["properties"]; !ok {
		t.Errorf("jsonb column not mapped as an object: %v", props["attrs"])
	}
	_, st := e.getJSON(esapi.IndicesGetSettingsRequest{Index: []string{"users_v1"}})
	if b, _ := json.Marshal(st); !strings.Contains(string(b), `"gc_deletes":"1h"`) || !strings.Contains(string(b), `"number_of_replicas":"0"`) {
		t.Errorf("settings: %s", b)
	}

	// A column added later is mapped from its type, not guessed.
	ts.Columns = append(ts.Columns, bus.ColumnSchema{Name: "visits", Type: "integer"})
	ts.UpdatedAt = time.Time{}
	if err := bus.PutTableSchema(ctx, e.bus.State(), ts); err != nil {
		t.Fatal(err)
	}
	e.waitFor("new column mapped", func() bool {
		e.publish(idx("2", 110+uint64(time.Now().UnixNano()%1000), `{"id":2,"name":"bob"}`))
		_, m := e.getJSON(esapi.IndicesGetMappingRequest{Index: []string{"users_v1"}})
		b, _ := json.Marshal(m)
		return strings.Contains(string(b), `"visits":{"type":"long"}`)
	})
}

func TestSinkNeverMergesTablesWhoseNamesElasticsearchRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start(sink.DefaultConfig())
	upper := &bus.Doc{Op: bus.DocIndex, Index: "Users", ID: "1", Version: 100, Source: json.RawMessage(`{"t":"Users"}`), Schema: "public", Table: "Users"}
	e.publish(idx("1", 100, `{"t":"users"}`), upper)
	e.waitFor("both tables", func() bool {
		_, _, a := e.get("users", "1")
		_, _, b := e.get(sink.AliasName("Users"), "1")
		return a && b
	})
	if src, _, _ := e.get("users", "1"); src["t"] != "users" {
		t.Fatalf("users holds %v", src)
	}
	if src, _, _ := e.get(sink.AliasName("Users"), "1"); src["t"] != "Users" {
		t.Fatalf("%s holds %v", sink.AliasName("Users"), src)
	}
}

// TestReindexWhileSearchingAndWriting: walsearch reindex builds users_v2
// while updates keep arriving; searches running throughout never fail and
// always count every document; afterwards the alias points to the new index,
// which holds every latest version, and the old index is gone.
func TestReindexWhileSearchingAndWriting(t *testing.T) {
	t.Parallel()
	const n, rounds = 2000, 15
	e := newEnv(t, nil)
	cfg := sink.DefaultConfig()
	cfg.Control, cfg.ControlPoll, cfg.ReindexGrace = e.bus.State(), 50*time.Millisecond, 300*time.Millisecond
	cfg.MaxBatchSize = 200
	s := e.start(cfg)
	var docs []*bus.Doc
	for i := range n {
		docs = append(docs, idx(strconv.Itoa(i), 100, fmt.Sprintf(`{"n":%d}`, i)))
	}
	e.publish(docs...)
	e.waitFor("initial load", func() bool { _, un := e.consumerState(); return un == 0 })
	if c := e.count("users"); c != n {
		t.Fatalf("count %d before reindex", c)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var searches, bad atomic.Int64
	var firstBad atomic.Value
	for range 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				res, err := esapi.SearchRequest{Index: []string{"users"}, Body: strings.NewReader(`{"size":0,"track_total_hits":true}`)}.Do(ctx, e.es)
				if ctx.Err() != nil {
					return
				}
				var sr struct {
					Hits struct {
						Total struct {
							Value int64 `json:"value"`
						} `json:"total"`
					} `json:"hits"`
				}
				ok := err == nil && res.StatusCode == 200 && json.NewDecoder(res.Body).Decode(&sr) == nil && sr.Hits.Total.Value == n
				if res != nil {
					res.Body.Close()
				}
				searches.Add(1)
				if !ok {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("err=%v total=%d", err, sr.Hits.Total.Value))
				}
			}
		}()
	}
	// Updates during the reindex: the count stays n, versions move on.
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for round := uint64(1); ctx.Err() == nil && round <= rounds; round++ {
			var upd []*bus.Doc
			for i := 0; i < n; i += 7 {
				upd = append(upd, idx(strconv.Itoa(i), 100+round, fmt.Sprintf(`{"n":%d,"round":%d}`, i, round)))
			}
			for _, d := range upd {
				if err := e.pub.Publish(ctx, d); err != nil {
					return
				}
			}
			_ = e.pub.Flush(ctx)
		}
	}()

	if _, err := sink.RequestReindex(ctx, e.bus.State(), "users"); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.RequestReindex(ctx, e.bus.State(), "users"); err == nil {
		t.Fatal("a second request while one is active was accepted")
	}
	var final *sink.ReindexState
	e.waitFor("reindex done", func() bool {
		st, err := sink.GetReindex(ctx, e.bus.State())
		if err != nil || st == nil {
			return false
		}
		if st.Phase == sink.ReindexFailed {
			t.Fatalf("reindex failed: %+v", st)
		}
		final = st
		return st.Phase == sink.ReindexDone
	})
	writer.Wait() // the writer finishes its rounds
	cancel()
	wg.Wait()
	e.waitFor("updates applied", func() bool { _, un := e.consumerState(); return un == 0 })
	if bad.Load() > 0 || searches.Load() < 10 {
		t.Fatalf("%d of %d searches failed or saw a partial index (first: %v)", bad.Load(), searches.Load(), firstBad.Load())
	}
	if final.From != "users_v1" || final.To != "users_v2" || final.FromCount != n || final.ToCount != n {
		t.Fatalf("reindex state: %+v", final)
	}
	_, alias := e.getJSON(esapi.IndicesGetAliasRequest{Name: []string{"users"}})
	if _, ok := alias["users_v2"]; !ok || len(alias) != 1 {
		t.Fatalf("alias: %v", alias)
	}
	if status, _ := e.getJSON(esapi.IndicesGetRequest{Index: []string{"users_v1"}}); status != 404 {
		t.Fatalf("old index still there after the grace period: HTTP %d", status)
	}
	// The new index holds the latest version of every document.
	for i := 0; i < n; i += 7 {
		if _, v, ok := e.get("users_v2", strconv.Itoa(i)); !ok || v != 100+rounds {
			t.Fatalf("document %d in users_v2: found=%v version %d, want %d", i, ok, v, 100+rounds)
		}
	}
	if c := e.count("users"); c != n {
		t.Fatalf("count %d after reindex", c)
	}
	t.Logf("reindex of %d documents: %d copied, %d searches during it, all complete; sink status %+v", n, final.Copied, searches.Load(), s.Status())
}
