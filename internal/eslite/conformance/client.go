package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// requestTimeout bounds every single request so a hung target fails the
// scenario instead of the whole test binary.
const requestTimeout = 60 * time.Second

// client sends REST requests to one target and checks the parts of every
// response that Elasticsearch always guarantees.
type client struct {
	target Target
	http   *http.Client
}

func newClient(target Target) *client {
	rt := target.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &client{target: target, http: &http.Client{Transport: rt}}
}

// url joins a path with an optional query ("/idx/_search?size=1") to the
// target's base URL.
func (c *client) url(t testing.TB, pathAndQuery string) *url.URL {
	t.Helper()
	ref, err := url.Parse(pathAndQuery)
	if err != nil {
		t.Fatalf("parse request path %q: %v", pathAndQuery, err)
	}
	u := *c.target.URL
	base := strings.TrimRight(u.EscapedPath(), "/")
	u.Path = strings.TrimRight(u.Path, "/") + ref.Path
	// Keep escapes such as %2F in document ids exactly as written.
	u.RawPath = base + ref.EscapedPath()
	u.RawQuery = ref.RawQuery
	return &u
}

// do sends one request. body may be nil, a string or []byte (sent as is),
// or any value (sent as JSON). Every 2xx answer must carry
// X-Elastic-Product: Elasticsearch, which the official clients check.
func (c *client) do(t testing.TB, method, path string, body any) *response {
	t.Helper()
	return c.doContentType(t, method, path, body, "application/json")
}

func (c *client) doContentType(t testing.TB, method, path string, body any, contentType string) *response {
	t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode request body for %s %s: %v", method, path, err)
		}
		reader = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.url(t, path).String(), reader)
	if err != nil {
		t.Fatalf("build request %s %s: %v", method, path, err)
	}
	if reader != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.target.Username != "" || c.target.Password != "" {
		req.SetBasicAuth(c.target.Username, c.target.Password)
	}
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read response of %s %s: %v", method, path, err)
	}
	r := &response{t: t, method: method, path: path, status: res.StatusCode, header: res.Header, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			r.body = nil
		}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		if got := res.Header.Get("X-Elastic-Product"); got != "Elasticsearch" {
			t.Errorf("%s %s: status %d without header X-Elastic-Product: Elasticsearch (got %q)", method, path, res.StatusCode, got)
		}
	}
	return r
}

// name returns a fresh index (or alias) name for this test and deletes the
// index at cleanup. It does not create anything.
func (c *client) name(t testing.TB, short string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random index suffix: %v", err)
	}
	n := fmt.Sprintf("conf-%s-%s", short, hex.EncodeToString(b[:]))
	t.Cleanup(func() { c.dropIndex(t, n) })
	return n
}

// aliasName returns a fresh alias name; aliases go away with their indices.
func (c *client) aliasName(t testing.TB, short string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random alias suffix: %v", err)
	}
	return fmt.Sprintf("conf-%s-%s", short, hex.EncodeToString(b[:]))
}

// dropIndex deletes one index by its exact name if it exists.
func (c *client) dropIndex(t testing.TB, name string) {
	t.Helper()
	r := c.do(t, http.MethodDelete, "/"+name, nil)
	if r.status != http.StatusOK && r.status != http.StatusNotFound {
		t.Errorf("cleanup: DELETE /%s: status %d: %s", name, r.status, r.raw)
	}
}

// createIndex creates a fresh index with body (settings, mappings; nil for
// none) and returns its name.
func (c *client) createIndex(t testing.TB, short string, body any) string {
	t.Helper()
	n := c.name(t, short)
	c.do(t, http.MethodPut, "/"+n, body).wantStatus(http.StatusOK)
	return n
}

// bulk sends NDJSON lines (each a JSON value or a raw string) to path and
// returns the response; the body ends with the newline _bulk requires.
func (c *client) bulk(t testing.TB, path string, lines ...any) *response {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range lines {
		switch v := l.(type) {
		case string:
			buf.WriteString(v)
		default:
			raw, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("encode bulk line: %v", err)
			}
			buf.Write(raw)
		}
		buf.WriteByte('\n')
	}
	return c.doContentType(t, http.MethodPost, path, buf.Bytes(), "application/x-ndjson")
}

// bulkOK sends lines with refresh=true and fails unless every item succeeded.
func (c *client) bulkOK(t testing.TB, index string, lines ...any) {
	t.Helper()
	r := c.bulk(t, "/"+index+"/_bulk?refresh=true", lines...)
	r.wantStatus(http.StatusOK)
	r.eq("errors", false)
}

// search runs a search on index (a name, pattern, alias or comma list).
func (c *client) search(t testing.TB, index string, body any) *response {
	t.Helper()
	return c.do(t, http.MethodPost, "/"+index+"/_search", body)
}

// searchIDs runs a search that must succeed and returns the hit ids in order.
func (c *client) searchIDs(t testing.TB, index string, body any) []string {
	t.Helper()
	return c.search(t, index, body).wantStatus(http.StatusOK).ids()
}

// refresh makes every write to index visible to search.
func (c *client) refresh(t testing.TB, index string) {
	t.Helper()
	c.do(t, http.MethodPost, "/"+index+"/_refresh", nil).wantStatus(http.StatusOK)
}

// count returns the number of documents a _count with body finds.
func (c *client) count(t testing.TB, index string, body any) int {
	t.Helper()
	return c.do(t, http.MethodPost, "/"+index+"/_count", body).wantStatus(http.StatusOK).int("count")
}

// restart restarts the target keeping its data.
func (c *client) restart(t testing.TB) {
	t.Helper()
	if c.target.Restart == nil {
		t.Skipf("target %q cannot be restarted by the suite", c.target.Name)
	}
	c.target.Restart(t)
}

// eventually polls check until it returns "" or the deadline passes; check
// returns what is still wrong. Time-based behaviour is observed this way,
// never by sleeping for a guessed duration.
func eventually(t testing.TB, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not true after %s: %s", within, msg)
		}
		<-tick.C
	}
}
