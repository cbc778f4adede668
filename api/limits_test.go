package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
)

const keyAll, keyUsers = "all-indices-key-0123456789", "users-only-key-0123456789"

func withKeys(c *api.Config) {
	c.Keys = []api.Key{{Key: keyAll}, {Key: keyUsers, Indices: []string{"users"}}}
	c.Listen = "0.0.0.0:0" // allowed: keys are configured
}

func TestAPIKeysAndIndexRestrictions(t *testing.T) {
	t.Parallel()
	orders := api.ManagedIndex{Name: "orders", Schema: "public", Table: "orders", Key: []string{"id"}}
	s := newServer(t, serverOpts{cfg: withKeys, indices: []api.ManagedIndex{usersIndex(), orders}})
	seedUsers(t, s.es, 3)
	bulk(t, s.es, `{"index":{"_index":"orders","_id":"1"}}`+"\n"+`{"id":1}`+"\n")
	q := `{"index":"orders"}`
	for _, tc := range []struct {
		headers []string
		code    int
	}{
		{nil, 401},
		{[]string{"Authorization", "Bearer wrong-key-0123456789"}, 401},
		{[]string{"Authorization", "Basic " + keyAll}, 401},
		{[]string{"Authorization", "Bearer " + keyAll}, 200},
		{[]string{"X-API-Key", keyAll}, 200},
		{[]string{"X-API-Key", keyUsers}, 404},
	} {
		r := s.search(t, q, tc.headers...)
		if r.code != tc.code {
			t.Errorf("%v: %d %s, want %d", tc.headers, r.code, r.body, tc.code)
		}
		if r.code == 401 && (r.header.Get("WWW-Authenticate") == "" || r.errCode(t) != api.CodeUnauthorized || strings.Contains(string(r.body), keyAll)) {
			t.Errorf("401 without a challenge or leaking: %v %s", r.header, r.body)
		}
	}
	if r := s.do(t, "GET", "/indices", "", "X-API-Key", keyUsers); r.code != 200 || strings.Contains(string(r.body), "orders") {
		t.Errorf("/indices for a users-only key: %s", r.body)
	}
	if r := s.do(t, "GET", "/status", "", "X-API-Key", keyUsers); r.code != 200 || strings.Contains(string(r.body), "orders") {
		t.Errorf("/status for a users-only key: %s", r.body)
	}
	for _, p := range []string{"/health", "/openapi.json"} {
		if r := s.do(t, "GET", p, ""); r.code != 200 {
			t.Errorf("%s without a key: %d", p, r.code)
		}
	}
	for _, p := range []string{"/metrics", "/status", "/indices", "/indices/users/fields", "/search/users/scroll"} {
		if r := s.do(t, "GET", p, ""); r.code != 401 {
			t.Errorf("%s without a key: %d", p, r.code)
		}
	}
}

func TestNoKeysMeansLoopbackOnly(t *testing.T) {
	t.Parallel()
	cfg := api.DefaultConfig()
	for _, listen := range []string{"0.0.0.0:8080", ":8080", "10.1.2.3:80", "[::]:80"} {
		cfg.Listen = listen
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "no API key") {
			t.Errorf("%s without keys: %v", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:8080", "localhost:1", "[::1]:80"} {
		cfg.Listen = listen
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", listen, err)
		}
	}
	cfg.Listen, cfg.Keys = "0.0.0.0:1", []api.Key{{Key: "short"}}
	if err := cfg.Validate(); err == nil {
		t.Error("a short key was accepted")
	}
}

func TestRequestLimits(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{cfg: func(c *api.Config) { c.BodyLimit = 4096 }})
	seedUsers(t, s.es, 3)
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"index":"users","page_size":1001}`, 400},
		{`{"index":"users","page_size":0,"size":1001}`, 400},
		{`{"index":"users","page":11,"page_size":1000}`, 400},
		{`{"index":"users","page":10001,"page_size":1}`, 400},
		{`{"index":"users","page":-1}`, 400},
		{`{"index":"users","page":10,"page_size":1000}`, 200},
		{`{"index":"users","bogus":1}`, 400},
		{`{"index":"users"} {"index":"x"}`, 400},
		{`{"index":"users","query_fields":{"age":{"regexp":".*"}}}`, 400},
		{`{"index":"users","query_fields":{"age":{"gte":{"script":"x"}}}}`, 400},
		{`{"index":"users","query_fields":{"age":[{"a":1}]}}`, 400},
		{`{"index":"users","sort_by":{"age":"sideways"}}`, 400},
		{`{"index":"users","sort_by":{"name":"asc"}}`, 200},
		{`{"index":"users","sort_by":{"bio":"asc"}}`, 400},
		{`{"index":"users","min_lsn":"nope"}`, 400},
		{`{"index":"users","q":"` + strings.Repeat("a", 2000) + `"}`, 400},
		{`{"index":"users","facets":["bio"]}`, 400},
		{`not json`, 400},
		{`{"index":"users","q":"` + strings.Repeat("a ", 3000) + `"}`, 413},
	} {
		r := s.search(t, tc.body)
		if r.code != tc.code {
			t.Errorf("%.80s: %d %s, want %d", tc.body, r.code, r.body, tc.code)
			continue
		}
		if tc.code != 200 {
			r.errCode(t)
		}
	}
	r := s.search(t, `{"index":"users","page":11,"page_size":1000}`)
	if !strings.Contains(string(r.body), "/scroll") {
		t.Errorf("deep page error does not point to scroll: %s", r.body)
	}
}

func TestRateLimitPerClient(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{cfg: func(c *api.Config) {
		withKeys(c)
		c.RateLimit, c.RateBurst = 1, 3
	}})
	seedUsers(t, s.es, 1)
	codes := map[int]int{}
	for range 6 {
		codes[s.do(t, "GET", "/indices", "", "X-API-Key", keyAll).code]++
	}
	if codes[200] < 3 || codes[429] < 2 {
		t.Fatalf("codes %v, want 3 (burst) ok then 429s", codes)
	}
	r := s.do(t, "GET", "/indices", "", "X-API-Key", keyAll)
	if r.code != 429 || r.header.Get("Retry-After") == "" || r.errCode(t) != api.CodeRateLimited {
		t.Fatalf("over the limit: %d %v", r.code, r.header)
	}
	// Another key has its own budget.
	if r := s.do(t, "GET", "/indices", "", "X-API-Key", keyUsers); r.code != 200 {
		t.Fatalf("second key throttled by the first: %d", r.code)
	}
}

// flakyTransport fails every request while down is set.
type flakyTransport struct {
	next  http.RoundTripper
	down  atomic.Bool
	calls atomic.Int64
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, errors.New("connection refused")
	}
	return f.next.RoundTrip(r)
}

func TestEngineOutageAnswers503FastAndHealthDegrades(t *testing.T) {
	t.Parallel()
	ft := &flakyTransport{}
	s := newServer(t, serverOpts{wrap: func(n http.RoundTripper) http.RoundTripper { ft.next = n; return ft },
		cfg: func(c *api.Config) { c.BreakerCooldown = time.Hour }})
	seedUsers(t, s.es, 3)
	if r := s.search(t, `{"index":"users"}`); r.code != 200 {
		t.Fatalf("before the outage: %d %s", r.code, r.body)
	}
	ft.down.Store(true)
	// Searches on a cached mapping reach the engine, fail, and open the breaker.
	r := s.search(t, `{"index":"users"}`)
	if r.code != 503 || r.header.Get("Retry-After") == "" || r.errCode(t) != api.CodeUnavailable || strings.Contains(string(r.body), "refused") {
		t.Fatalf("first search in the outage: %d %v %s", r.code, r.header, r.body)
	}
	calls := ft.calls.Load()
	start := time.Now()
	for range 20 {
		if r := s.search(t, `{"index":"users"}`); r.code != 503 {
			t.Fatalf("search in the outage: %d", r.code)
		}
	}
	if ft.calls.Load() != calls {
		t.Errorf("the open breaker still sent %d requests to the engine", ft.calls.Load()-calls)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("20 searches in the outage took %s", el)
	}
	h := s.do(t, "GET", "/health", "")
	if h.code != 503 || !strings.Contains(string(h.body), `"status":"degraded"`) || !strings.Contains(string(h.body), `"serving":false`) {
		t.Fatalf("health in the outage: %d %s", h.code, h.body)
	}
}

func TestReadYourWritesWaitsForTheWatermark(t *testing.T) {
	t.Parallel()
	var applied atomic.Uint64
	pipe := api.PipelineFuncs{
		IndicesFunc:    func(context.Context) ([]api.ManagedIndex, error) { return []api.ManagedIndex{usersIndex()}, nil },
		AppliedLSNFunc: func() bus.LSN { return bus.LSN(applied.Load()) },
	}
	s := newServer(t, serverOpts{pipe: pipe, cfg: func(c *api.Config) { c.MinLSNTimeout = 300 * time.Millisecond }})
	seedUsers(t, s.es, 3)
	applied.Store(0x100)
	// Behind: a 504 with the lag, after the timeout.
	start := time.Now()
	r := s.search(t, `{"index":"users","min_lsn":"0/200"}`)
	if r.code != 504 || r.errCode(t) != api.CodeLSNTimeout || !strings.Contains(string(r.body), "256 bytes behind") || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("behind: %d %s after %s", r.code, r.body, time.Since(start))
	}
	// A write the engine has not made visible yet, and the watermark
	// arriving while the request waits: the answer includes the write.
	bulk := `{"index":{"_index":"users","_id":"99"}}` + "\n" + `{"id":99,"name":"late","status":"new"}` + "\n"
	done := make(chan reply, 1)
	go func() { done <- s.search(t, `{"index":"users","query_fields":{"id":99}}`, api.MinLSNHeader, "0/300") }()
	writeNoRefresh(t, s, bulk)
	applied.Store(0x300)
	r = <-done
	if r.code != 200 || !strings.Contains(string(r.body), `"late"`) {
		t.Fatalf("after the watermark: %d %s", r.code, r.body)
	}
}

// writeNoRefresh indexes with refreshes switched off, so the documents stay
// invisible to search until someone refreshes.
func writeNoRefresh(t *testing.T, s *testServer, body string) {
	t.Helper()
	res, err := esapi.IndicesPutSettingsRequest{Index: []string{"users"}, Body: strings.NewReader(`{"index":{"refresh_interval":"-1"}}`)}.Do(context.Background(), s.es)
	if err != nil || res.IsError() {
		t.Fatalf("settings: %v %v", err, res)
	}
	res.Body.Close()
	res, err = esapi.BulkRequest{Body: strings.NewReader(body)}.Do(context.Background(), s.es)
	if err != nil || res.IsError() {
		t.Fatalf("bulk: %v %v", err, res)
	}
	res.Body.Close()
	if r := s.search(t, `{"index":"users","query_fields":{"id":99}}`); !strings.Contains(string(r.body), `"total_records":0`) {
		t.Fatalf("the write is visible before any refresh: %s", r.body)
	}
}

func TestStatusDeadLettersByTableFollowTheKey(t *testing.T) {
	t.Parallel()
	orders := api.ManagedIndex{Name: "orders", Schema: "public", Table: "orders", Key: []string{"id"}}
	pipe := api.PipelineFuncs{
		IndicesFunc: func(context.Context) ([]api.ManagedIndex, error) {
			return []api.ManagedIndex{usersIndex(), orders}, nil
		},
		StatusFunc: func(context.Context) (api.PipelineStatus, error) {
			return api.PipelineStatus{SlotLagBytes: -1, DeadLetters: 7,
				DeadLettersByTable: map[string]uint64{"public.users": 2, "public.orders": 4, "public.gone": 1}}, nil
		},
	}
	s := newServer(t, serverOpts{cfg: withKeys, pipe: pipe})
	for key, want := range map[string]string{
		keyAll:   `"dlq_by_table":{"public.gone":1,"public.orders":4,"public.users":2}`,
		keyUsers: `"dlq_by_table":{"public.users":2}`,
	} {
		r := s.do(t, "GET", "/status", "", "X-API-Key", key)
		if r.code != 200 || !strings.Contains(string(r.body), want) ||
			!strings.Contains(string(r.body), `"table":"users","index":"users","snapshot":"unknown","snapshot_rows":0,"documents":-1,`) ||
			!strings.Contains(string(r.body), `"dlq_count":2}`) {
			t.Errorf("status for %.5s…: %d %s, want %s and users' line with dlq_count 2", key, r.code, r.body, want)
		}
		if key == keyUsers && strings.Contains(string(r.body), "orders") {
			t.Errorf("a users-only key sees orders: %s", r.body)
		}
	}
}

// TestPagingOutOfRangeIsRefusedWithTheRange checks that 0 is out of range
// like -1 is, not replaced by the default, and that the 400 says the range.
func TestPagingOutOfRangeIsRefusedWithTheRange(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{})
	seedUsers(t, s.es, 3)
	for _, tc := range []struct {
		method, path, body string
		msg                string
	}{
		{"POST", "/search", `{"index":"users","page_size":0}`, "page_size: want 1 to 1000, got 0"},
		{"POST", "/search", `{"index":"users","size":0}`, "size: want 1 to 1000, got 0"},
		{"POST", "/search", `{"index":"users","page":0}`, "page: want 1 to 1000 (with page_size 10), got 0"},
		{"POST", "/search", `{"index":"users","page":-1,"page_size":100}`, "page: want 1 to 100 (with page_size 100), got -1"},
		{"POST", "/search", `{"index":"users","page":101,"page_size":100}`, "page: want 1 to 100 (with page_size 100), got 101"},
		{"GET", "/search/users/scroll?size=0", "", "size: want 1 to 1000"},
		{"GET", "/search/users/scroll?size=", "", "size: want 1 to 1000"},
	} {
		r := s.do(t, tc.method, tc.path, tc.body)
		if r.code != 400 || r.errCode(t) != api.CodeBadRequest || !strings.Contains(string(r.body), tc.msg) {
			t.Errorf("%s %s: %d %s, want 400 with %q", tc.path, tc.body, r.code, r.body, tc.msg)
		}
	}
	for _, body := range []string{`{"index":"users","page":1,"page_size":1}`, `{"index":"users","size":1000}`, `{"index":"users","page":null}`} {
		if r := s.search(t, body); r.code != 200 {
			t.Errorf("%s: %d %s", body, r.code, r.body)
		}
	}
}

// TestLimitedKeySeesOnlyItsIndicesFigures checks /status and /metrics for a
// key limited to users while orders has dead letters: the key sees the
// dead letters of users only, no figure that adds up every table, and no
// /metrics (which holds every table's); a key for all indices sees all.
func TestLimitedKeySeesOnlyItsIndicesFigures(t *testing.T) {
	t.Parallel()
	orders := api.ManagedIndex{Name: "orders", Schema: "public", Table: "orders", Key: []string{"id"}}
	pipe := api.PipelineFuncs{
		IndicesFunc: func(context.Context) ([]api.ManagedIndex, error) {
			return []api.ManagedIndex{usersIndex(), orders}, nil
		},
		StatusFunc: func(context.Context) (api.PipelineStatus, error) {
			return api.PipelineStatus{
				Sink:        api.SinkStatus{Indexed: 500, DeadLetters: 7},
				DeadLetters: 10, DeadLettersByTable: map[string]uint64{"public.users": 2, "public.orders": 7},
				Backlog: map[string]uint64{"sink": 40, "transform": 3}, SlotLagBytes: -1,
			}, nil
		},
	}
	s := newServer(t, serverOpts{cfg: withKeys, pipe: pipe})
	type status struct {
		Tables     []struct{ Index string } `json:"tables"`
		DLQCount   uint64                   `json:"dlq_count"`
		DLQByTable map[string]uint64        `json:"dlq_by_table"`
		Sink       *struct {
			Dead uint64 `json:"dead_lettered"`
		} `json:"sink"`
		BusBacklog map[string]uint64 `json:"bus_backlog"`
	}
	r := s.do(t, "GET", "/status", "", "X-API-Key", keyUsers)
	var limited status
	r.decode(t, &limited)
	if r.code != 200 || len(limited.Tables) != 1 || limited.DLQCount != 2 || len(limited.DLQByTable) != 1 ||
		limited.DLQByTable["public.users"] != 2 || limited.Sink != nil || limited.BusBacklog != nil {
		t.Errorf("/status for a users-only key: %d %s", r.code, r.body)
	}
	r = s.do(t, "GET", "/metrics", "", "X-API-Key", keyUsers)
	if r.code != 403 || r.errCode(t) != api.CodeForbidden || strings.Contains(string(r.body), "orders") {
		t.Errorf("/metrics for a users-only key: %d %.300s", r.code, r.body)
	}
	r = s.do(t, "GET", "/status", "", "X-API-Key", keyAll)
	var all status
	r.decode(t, &all)
	if r.code != 200 || len(all.Tables) != 2 || all.DLQCount != 10 || len(all.DLQByTable) != 2 ||
		all.Sink == nil || all.Sink.Dead != 7 || all.BusBacklog["sink"] != 40 {
		t.Errorf("/status for a key for all indices: %d %s", r.code, r.body)
	}
	r = s.do(t, "GET", "/metrics", "", "X-API-Key", keyAll)
	if r.code != 200 || !strings.Contains(string(r.body), `walsearch_dlq_table_messages{table="public.orders"} 7`) ||
		!strings.Contains(string(r.body), "walsearch_dlq_messages 10") {
		t.Errorf("/metrics for a key for all indices: %d %.300s", r.code, r.body)
	}
}
