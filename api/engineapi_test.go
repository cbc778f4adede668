package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
)

func TestEngineAPIServesReadsOnly(t *testing.T) {
	t.Parallel()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	es, err := esclient.New(esclient.Config{Transport: eng.RoundTripper()})
	if err != nil {
		t.Fatal(err)
	}
	bulk(t, es, `{"index":{"_index":"users","_id":"1"}}
{"id":1,"name":"Ann","secret":"s1"}
`)
	const admin, limited = "admin-key-0123456789", "limited-key-0123456789"
	s := newServer(t, serverOpts{cfg: func(c *api.Config) {
		c.Engine = eng
		c.Keys = []api.Key{{Key: admin}, {Key: limited, Indices: []string{"users"}}}
	}})
	for _, c := range []struct {
		method, path, body, key string
		want                    int
		has                     string
	}{
		{"GET", "/_engine/", "", admin, 200, `"tagline"`},
		{"POST", "/_engine/users/_mget", `{"ids":["1"]}`, admin, 200, `"secret":"s1"`},
		{"POST", "/_engine/users/_search", `{"query":{"match_all":{}}}`, admin, 200, `"_id":"1"`},
		{"POST", "/_engine/users/_mget", `{"ids":["1"]}`, limited, 403, "every index"},
		{"POST", "/_engine/users/_mget", `{"ids":["1"]}`, "", 401, ""},
		{"PUT", "/_engine/users/_doc/2", `{"id":2}`, admin, 403, "only reads"},
		{"POST", "/_engine/_bulk", `{"delete":{"_index":"users","_id":"1"}}` + "\n", admin, 403, "only reads"},
		{"DELETE", "/_engine/users", "", admin, 403, "only reads"},
		{"POST", "/_engine/users/_delete_by_query", `{"query":{"match_all":{}}}`, admin, 403, "only reads"},
	} {
		var headers []string
		if c.key != "" {
			headers = []string{"X-API-Key", c.key}
		}
		r := s.do(t, c.method, c.path, c.body, headers...)
		if r.code != c.want || !strings.Contains(string(r.body), c.has) {
			t.Errorf("%s %s (key %q): %d %s, want %d with %q", c.method, c.path, c.key, r.code, r.body, c.want, c.has)
		}
	}
	if r := s.do(t, "GET", "/_engine/users/_doc/1", "", "X-API-Key", admin); r.code != http.StatusForbidden {
		t.Errorf("GET _doc: %d, want 403 (not one of the reads served)", r.code)
	}
}

func TestEngineAPIOffWithoutEngine(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{})
	if r := s.do(t, "GET", "/_engine/", ""); r.code != http.StatusNotFound {
		t.Errorf("GET /_engine/ without an embedded engine: %d, want 404", r.code)
	}
}
