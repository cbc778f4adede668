package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/internal/faultes"
)

// testServer is an API over an in-memory eslite engine, on a real socket.
type testServer struct {
	base string
	es   *esclient.Client
	srv  *api.Server
	// faults is the fault injector between the API and the engine, when
	// serverOpts.faults asked for one.
	faults *faultes.Server
}

type serverOpts struct {
	cfg     func(*api.Config)
	pipe    api.Pipeline
	comps   []api.Component
	wrap    func(http.RoundTripper) http.RoundTripper
	indices []api.ManagedIndex
	opts    []api.Option
	// faults puts the engine behind a fault-injection HTTP server on
	// 127.0.0.1, reached over a real socket, instead of in process.
	faults bool
}

func usersIndex() api.ManagedIndex {
	return api.ManagedIndex{Name: "users", Schema: "public", Table: "users", Key: []string{"id"},
		Columns: []string{"id", "name", "status", "age", "secret", "bio"}}
}

func newServer(t testing.TB, o serverOpts) *testServer {
	t.Helper()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ec := esclient.Config{Transport: eng.RoundTripper()}
	var faults *faultes.Server
	if o.faults {
		faults = faultes.Start(eng)
		t.Cleanup(faults.Close)
		ec = esclient.Config{URL: faults.URL}
	}
	if o.wrap != nil {
		ec.Transport = o.wrap(ec.Transport)
	}
	es, err := esclient.New(ec)
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.RateLimit = 0
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	pipe := o.pipe
	if pipe == nil {
		idx := o.indices
		if idx == nil {
			idx = []api.ManagedIndex{usersIndex()}
		}
		pipe = api.PipelineFuncs{IndicesFunc: func(context.Context) ([]api.ManagedIndex, error) { return idx, nil }}
	}
	srv, err := api.New(cfg, es, pipe, o.comps, o.opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{base: runServer(t, srv), es: es, srv: srv, faults: faults}
}

// bulk indexes ndjson lines and refreshes.
func bulk(t testing.TB, es *esclient.Client, body string) {
	t.Helper()
	res, err := esapi.BulkRequest{Body: strings.NewReader(body), Refresh: "true"}.Do(context.Background(), es)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.IsError() || bytes.Contains(raw, []byte(`"errors":true`)) {
		t.Fatalf("bulk: %s", raw)
	}
}

// seedUsers writes n users with a hidden "secret" and a text "bio".
func seedUsers(t testing.TB, es *esclient.Client, n int) {
	t.Helper()
	res, err := esapi.IndicesCreateRequest{Index: "users", Body: strings.NewReader(`{"mappings":{"properties":{
		"id":{"type":"long"},"name":{"type":"text","fields":{"keyword":{"type":"keyword"}}},
		"status":{"type":"keyword"},"age":{"type":"integer"},"secret":{"type":"text","fields":{"keyword":{"type":"keyword"}}},
		"bio":{"type":"text"}}}}`)}.Do(context.Background(), es)
	if err != nil || res.IsError() {
		t.Fatalf("create users: %v %v", err, res)
	}
	res.Body.Close()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		status := []string{"active", "inactive"}[i%2]
		bio := []string{"loves postgres and search", "writes go every day", "plays chess"}[i%3]
		fmt.Fprintf(&b, `{"index":{"_index":"users","_id":"%d"}}`+"\n", i)
		fmt.Fprintf(&b, `{"id":%d,"name":"user %d","status":"%s","age":%d,"secret":"hunter%d","bio":"%s"}`+"\n", i, i, status, 20+i, i, bio)
	}
	bulk(t, es, b.String())
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r reply) errCode(t testing.TB) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a JSON error: %d %s", r.code, r.body)
	}
	return e.Error.Code
}

func (s *testServer) do(t testing.TB, method, path, body string, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{code: res.StatusCode, header: res.Header, body: raw}
}

func (s *testServer) search(t testing.TB, body string, headers ...string) reply {
	t.Helper()
	return s.do(t, "POST", "/search", body, headers...)
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %s", raw)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

func tryPost(base, body string) ([]byte, error) {
	res, err := http.Post(base+"/search", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("HTTP %d: %s", res.StatusCode, raw)
	}
	return raw, nil
}

// runServer runs srv until the test ends and returns its base URL once it
// listens.
func runServer(t testing.TB, srv *api.Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server Run: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}
	return "http://" + srv.Addr().String()
}
