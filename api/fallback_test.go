package api_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/faultes"
	"github.com/walsearch/walsearch/internal/pgtest"
)

// usersTable creates public.users in a fresh database with the same n rows
// seedUsers indexes, and returns a connector to that database.
func usersTable(t *testing.T, n int) api.Connector {
	t.Helper()
	dbURL := pgtest.Require(t, cluster).NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, status text,
		age int, secret text, bio text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO users
		SELECT g, 'user ' || g, CASE WHEN g % 2 = 0 THEN 'active' ELSE 'inactive' END, 20 + g, 'hunter' || g,
		       (ARRAY['loves postgres and search', 'writes go every day', 'plays chess'])[g % 3 + 1]
		FROM generate_series(1, $1::int) g`, n); err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dbURL) }
}

// fallbackReply is a search answer with the fields the fallback test reads.
type fallbackReply struct {
	Data []map[string]any `json:"data"`
	Meta struct {
		Total    int64    `json:"total_records"`
		Pages    int64    `json:"total_pages"`
		Page     int      `json:"current_page"`
		HasNext  bool     `json:"has_next"`
		HasPrev  bool     `json:"has_previous"`
		Selected []string `json:"selected_fields"`
		Source   string   `json:"source"`
	} `json:"meta"`
}

func (s *testServer) searchReply(t *testing.T, body string) (reply, fallbackReply) {
	t.Helper()
	r := s.search(t, body)
	var fr fallbackReply
	if r.code == 200 {
		r.decode(t, &fr)
	}
	return r, fr
}

// injectOutage makes the fault injector drop every connection to the engine.
func injectOutage(t *testing.T, s *testServer) {
	t.Helper()
	s.faults.Inject(faultes.Fault{Drop: true, All: true})
}

// TestPostgresFallbackAnswersSimpleSearchesWhileTheEngineIsDown runs the API
// with api.fallback: postgres against a real PostgreSQL holding the rows and
// an engine behind a fault injector: while the injector drops every
// connection, simple searches are answered from PostgreSQL, exactly as the
// engine answered them; the rest fail fast with 503; /health says degraded;
// once the engine is back, it answers again.
func TestPostgresFallbackAnswersSimpleSearchesWhileTheEngineIsDown(t *testing.T) {
	t.Parallel()
	connect := usersTable(t, 30)
	s := newServer(t, serverOpts{faults: true, opts: []api.Option{api.WithPostgres(connect)}, cfg: func(c *api.Config) {
		hiddenSecret(c)
		c.Fallback = api.FallbackPostgres
		c.BreakerCooldown = 500 * time.Millisecond
	}})
	seedUsers(t, s.es, 30)

	simple := []string{
		// active = even ids; age 30..44 = ids 10..24; by age desc, page 2 of 3.
		`{"index":"users","query_fields":{"status":"active","age":{"gte":30,"lt":45}},"fields":["id","name","age"],"sort_by":{"age":"desc"},"page":2,"page_size":3}`,
		`{"index":"users","query_fields":{"id":[1,2,3,99]},"sort_by":{"id":"asc"}}`,
		`{"index":"users","query_fields":{"name":"user 7"}}`,
		`{"index":"users","query_fields":{"bio":null}}`,
		`{"index":"users","exclude_fields":["bio"],"sort_by":{"status":"asc","age":"desc"},"page_size":7,"page":3}`,
	}
	fromEngine := make([]fallbackReply, len(simple))
	for i, body := range simple {
		r, fr := s.searchReply(t, body)
		if r.code != 200 || fr.Meta.Source != "" {
			t.Fatalf("engine up, %s: %d %s", body, r.code, r.body)
		}
		fromEngine[i] = fr
	}
	if got := fromEngine[0]; got.Meta.Total != 8 || len(got.Data) != 3 || got.Data[0]["id"] != float64(18) {
		t.Fatalf("engine answer to the first query: %+v", got)
	}

	injectOutage(t, s)
	for i, body := range simple {
		r, fr := s.searchReply(t, body)
		if r.code != 200 || fr.Meta.Source != api.FallbackPostgres {
			t.Fatalf("engine down, %s: %d %s, want 200 from postgres", body, r.code, r.body)
		}
		if strings.Contains(string(r.body), "hunter") || strings.Contains(string(r.body), `"secret"`) {
			t.Fatalf("the fallback returned the hidden field: %s", r.body)
		}
		want := fromEngine[i]
		want.Meta.Source = api.FallbackPostgres
		if !reflect.DeepEqual(fr, want) {
			t.Errorf("%s:\npostgres answered %+v\nthe engine had   %+v", body, fr, want)
		}
	}
	if s.faults.Faulted() == 0 {
		t.Fatal("the fault injector saw no request: the engine was never down")
	}
	// The hidden field stays unreachable through the fallback.
	for _, body := range []string{
		`{"index":"users","fields":["secret"]}`,
		`{"index":"users","query_fields":{"secret":"hunter3"}}`,
		`{"index":"users","sort_by":{"secret":"asc"}}`,
	} {
		if r := s.search(t, body); r.code != 400 || strings.Contains(string(r.body), "hunter") {
			t.Errorf("engine down, %s: %d %s, want 400", body, r.code, r.body)
		}
	}
	// What the fallback cannot answer fails at once, with Retry-After.
	for _, body := range []string{
		`{"index":"users","q":"postgres"}`,
		`{"index":"users","facets":["status"]}`,
		`{"index":"users","q":"chess","highlight":true}`,
		`{"index":"users","highlight":true,"query_fields":{"status":"active"}}`,
	} {
		start := time.Now()
		r := s.search(t, body)
		if r.code != 503 || r.header.Get("Retry-After") == "" || r.errCode(t) != api.CodeUnavailable {
			t.Errorf("engine down, %s: %d %v %s, want 503 with Retry-After", body, r.code, r.header, r.body)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("engine down, %s: the 503 took %s", body, el)
		}
	}
	h := waitHealth(t, s, func(h healthReply) bool { return h.Components["elasticsearch"].Status == api.HealthDown })
	if h.code != 200 || h.Status != api.HealthDegraded || !h.Serving || h.Fallback != api.FallbackPostgres || h.Components["postgres"].Status != api.HealthOK {
		t.Fatalf("health while answering from postgres: %d %+v", h.code, h)
	}

	// The engine comes back: answers come from it again.
	s.faults.Clear()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, fr := s.searchReply(t, simple[0])
		if r.code == 200 && fr.Meta.Source == "" {
			if !reflect.DeepEqual(fr, fromEngine[0]) {
				t.Fatalf("engine back: %+v, want %+v", fr, fromEngine[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine is back but answers still come from %q: %d %s", fr.Meta.Source, r.code, r.body)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if r := s.search(t, `{"index":"users","q":"postgres","facets":["status"]}`); r.code != 200 {
		t.Fatalf("full text after the engine came back: %d %s", r.code, r.body)
	}
	waitHealth(t, s, func(h healthReply) bool { return h.code == 200 && h.Status == api.HealthOK && h.Fallback == "" })
}

// TestPostgresFallbackWhenTheEngineWasNeverReachable starts the API while
// the engine is already down, so it never saw the index's mapping: simple
// searches are still answered from PostgreSQL, over the table's columns.
func TestPostgresFallbackWhenTheEngineWasNeverReachable(t *testing.T) {
	t.Parallel()
	connect := usersTable(t, 30)
	s := newServer(t, serverOpts{faults: true, opts: []api.Option{api.WithPostgres(connect)}, cfg: func(c *api.Config) {
		hiddenSecret(c)
		c.Fallback = api.FallbackPostgres
	}})
	injectOutage(t, s)
	r, fr := s.searchReply(t, `{"index":"users","query_fields":{"status":"inactive","age":{"lte":30}},"sort_by":{"id":"desc"},"page_size":2}`)
	if r.code != 200 || fr.Meta.Source != api.FallbackPostgres || fr.Meta.Total != 5 || len(fr.Data) != 2 ||
		fr.Data[0]["id"] != float64(9) || fr.Data[1]["id"] != float64(7) || fr.Data[0]["name"] != "user 9" {
		t.Fatalf("engine never reached: %d %s", r.code, r.body)
	}
	if got := strings.Join(fr.Meta.Selected, ","); got != "age,bio,id,name,status" {
		t.Fatalf("selected fields %s, want every column but the hidden one", got)
	}
	for _, d := range fr.Data {
		if _, ok := d["secret"]; ok {
			t.Fatalf("hidden field returned: %v", d)
		}
	}
	if r := s.search(t, `{"index":"users","query_fields":{"nope":1}}`); r.code != 400 {
		t.Fatalf("unknown column: %d %s", r.code, r.body)
	}
	if r := s.search(t, `{"index":"users","q":"chess"}`); r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("full text with the engine never reached: %d %s", r.code, r.body)
	}
}

// TestEngineDownWithoutFallbackAnswers503Fast: without api.fallback, an
// engine that drops connections makes every search a quick 503 with
// Retry-After, and after the first failure no search reaches the engine
// until the breaker's cooldown is over.
func TestEngineDownWithoutFallbackAnswers503Fast(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{faults: true, cfg: func(c *api.Config) { c.BreakerCooldown = time.Hour }})
	seedUsers(t, s.es, 5)
	if r := s.search(t, `{"index":"users","query_fields":{"status":"active"}}`); r.code != 200 {
		t.Fatalf("engine up: %d %s", r.code, r.body)
	}
	injectOutage(t, s)
	var seen int64
	start := time.Now()
	for i := range 20 {
		r := s.search(t, `{"index":"users","query_fields":{"status":"active"}}`)
		if r.code != 503 || r.header.Get("Retry-After") == "" || r.errCode(t) != api.CodeUnavailable {
			t.Fatalf("search %d with the engine down: %d %v %s", i, r.code, r.header, r.body)
		}
		if i == 0 {
			seen = s.faults.Faulted()
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("20 searches with the engine down took %s", el)
	}
	if seen == 0 || s.faults.Faulted() != seen {
		t.Errorf("requests that reached the dropped engine: %d after the first search, %d after all", seen, s.faults.Faulted())
	}
	h := waitHealth(t, s, func(h healthReply) bool { return h.code == 503 })
	if h.Serving || h.Status != api.HealthDegraded || h.Fallback != "" {
		t.Fatalf("health with the engine down and no fallback: %+v", h)
	}
	// The liveness probe's path says the process serves, without a key.
	if r := s.do(t, "GET", "/health/live", ""); r.code != 200 || !strings.Contains(string(r.body), `"alive"`) {
		t.Fatalf("GET /health/live with the engine down: %d %s", r.code, r.body)
	}
}

type healthReply struct {
	code       int
	Status     string `json:"status"`
	Serving    bool   `json:"serving"`
	Fallback   string `json:"fallback"`
	Components map[string]struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"components"`
}

// waitHealth polls /health (cached for a second) until ok accepts it.
func waitHealth(t *testing.T, s *testServer, ok func(healthReply) bool) healthReply {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := s.do(t, "GET", "/health", "")
		var h healthReply
		if err := json.Unmarshal(r.body, &h); err != nil {
			t.Fatalf("health: %d %s", r.code, r.body)
		}
		h.code = r.code
		if ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never got there: %d %s", r.code, r.body)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// An engine that hangs instead of refusing: the search that waits out the
// request timeout answers 504, and the next ones fail fast with 503 instead
// of each waiting as long.
func TestHungEngineOpensTheBreaker(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{faults: true, cfg: func(c *api.Config) {
		c.RequestTimeout, c.BreakerCooldown = 500*time.Millisecond, time.Hour
	}})
	seedUsers(t, s.es, 5)
	if r := s.search(t, `{"index":"users","query_fields":{"status":"active"}}`); r.code != 200 {
		t.Fatalf("engine up: %d %s", r.code, r.body)
	}
	s.faults.Inject(faultes.Fault{Hold: true, All: true})
	defer s.faults.Release()
	if r := s.search(t, `{"index":"users","query_fields":{"status":"active"}}`); r.code != 504 || r.errCode(t) != api.CodeTimeout {
		t.Fatalf("search against a hung engine: %d %s", r.code, r.body)
	}
	held := s.faults.Held()
	start := time.Now()
	for i := range 5 {
		r := s.search(t, `{"index":"users","query_fields":{"status":"active"}}`)
		if r.code != 503 || r.header.Get("Retry-After") == "" || r.errCode(t) != api.CodeUnavailable {
			t.Fatalf("search %d after the timeout: %d %s", i, r.code, r.body)
		}
	}
	if el := time.Since(start); el > 400*time.Millisecond {
		t.Errorf("5 searches after the timeout took %s: they waited for the engine", el)
	}
	if s.faults.Held() > held {
		t.Errorf("searches after the timeout still reached the engine (%d held, %d before)", s.faults.Held(), held)
	}
}
