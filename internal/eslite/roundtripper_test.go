package eslite

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
)

func TestRoundTripperNilBodies(t *testing.T) {
	e := openTest(t, "")
	do(t, e, "PUT", "/n/_doc/1", `{"a":1}`).must(t, 201)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 200},
		{"GET", "/n/_doc/1", 200},
		{"GET", "/n/_search", 200},
		{"POST", "/n/_refresh", 200},
		{"GET", "/_cluster/health", 200},
		{"PUT", "/n/_doc/2", 400},
		{"POST", "/_bulk", 400},
		{"HEAD", "/n", 200},
		{"HEAD", "/missing", 404},
	} {
		req := &http.Request{Method: tc.method, URL: mustURL(t, "http://any.host"+tc.path)}
		resp, err := e.RoundTripper().RoundTrip(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d (%s)", tc.method, tc.path, resp.StatusCode, tc.status, body)
		}
		if got := resp.Header.Get("X-Elastic-Product"); got != "Elasticsearch" {
			t.Errorf("%s %s: X-Elastic-Product = %q", tc.method, tc.path, got)
		}
		if tc.method == "HEAD" && len(body) != 0 {
			t.Errorf("HEAD %s returned a body: %s", tc.path, body)
		}
	}
}

func TestRoundTripperCancelledContext(t *testing.T) {
	e := openTest(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://x/", nil)
	if _, err := e.RoundTripper().RoundTrip(req); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestRouting(t *testing.T) {
	e := openTest(t, "")
	r := do(t, e, "GET", "/_nope/x/y", "").must(t, 400)
	if r.get("error") != "no handler found for uri [/_nope/x/y] and method [GET]" {
		t.Errorf("unknown endpoint: %s", r.raw)
	}
	r = do(t, e, "GET", "/x/_update/1", "").must(t, 405)
	if r.get("error") != "Incorrect HTTP method for uri [/x/_update/1] and method [GET], allowed: [POST]" {
		t.Errorf("wrong method: %s", r.raw)
	}
	for name, reason := range map[string]string{
		"Upper":  "Invalid index name [Upper], must be lowercase",
		"_x":     "Invalid index name [_x], must not start with '_', '-', or '+'",
		"a%23b":  "Invalid index name [a#b], must not contain '#'",
		"a%2Ab":  `Invalid index name [a*b], must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?]`,
		"..":     "Invalid index name [..], must not be '.' or '..'",
		"-minus": "Invalid index name [-minus], must not start with '_', '-', or '+'",
	} {
		r := do(t, e, "PUT", "/"+name, "")
		if name == "_x" {
			continue // a leading underscore routes to the system endpoints
		}
		r.must(t, 400)
		if r.get("error.type") != "invalid_index_name_exception" || r.get("error.reason") != reason {
			t.Errorf("PUT /%s: %s", name, r.raw)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
