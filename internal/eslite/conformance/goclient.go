package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// goClientScenarios drive the target through the official Go client's
// request types and transport, unchanged, as Walsearch itself does.
func goClientScenarios() []scenario {
	return []scenario{
		{name: "goclient/info", run: func(t *testing.T, c *client) {
			tp := c.transport(t)
			res, err := esapi.InfoRequest{}.Do(context.Background(), tp)
			body := readClientResponse(t, res, err, http.StatusOK)
			if v, _ := lookup(body, "version.number"); v == nil || !strings.HasPrefix(v.(string), "8.") {
				t.Errorf("version.number = %v, want 8.x", v)
			}
		}},
		{name: "goclient/indices_exists", run: func(t *testing.T, c *client) {
			// HEAD with a nil body.
			n := c.createIndex(t, "gcexists", nil)
			missing := c.name(t, "gcexistsmiss")
			tp := c.transport(t)
			res, err := esapi.IndicesExistsRequest{Index: []string{n}}.Do(context.Background(), tp)
			readClientResponse(t, res, err, http.StatusOK)
			res, err = esapi.IndicesExistsRequest{Index: []string{missing}}.Do(context.Background(), tp)
			readClientResponse(t, res, err, http.StatusNotFound)
		}},
		{name: "goclient/bulk_and_search", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "gcbulk", nil)
			tp := c.transport(t)
			ndjson := `{"index":{"_id":"1","version":3,"version_type":"external_gte"}}` + "\n" + `{"title":"hello go client"}` + "\n" +
				`{"index":{"_id":"2"}}` + "\n" + `{"title":"another one"}` + "\n"
			res, err := esapi.BulkRequest{Index: n, Body: strings.NewReader(ndjson), Refresh: "true"}.Do(context.Background(), tp)
			body := readClientResponse(t, res, err, http.StatusOK)
			if v, _ := lookup(body, "errors"); v != false {
				t.Fatalf("bulk errors = %v: %s", v, jsonString(body))
			}
			if v, _ := lookup(body, "items.0.index._version"); v != 3.0 {
				t.Errorf("items.0.index._version = %v, want 3", v)
			}
			res, err = esapi.SearchRequest{
				Index: []string{n},
				Body:  strings.NewReader(`{"query":{"match":{"title":"hello"}}}`),
			}.Do(context.Background(), tp)
			body = readClientResponse(t, res, err, http.StatusOK)
			if v, _ := lookup(body, "hits.total.value"); v != 1.0 {
				t.Errorf("hits.total.value = %v, want 1: %s", v, jsonString(body))
			}
			if v, _ := lookup(body, "hits.hits.0._id"); v != "1" {
				t.Errorf("hits.hits.0._id = %v, want 1", v)
			}
		}},
		{name: "goclient/error_is_decodable", run: func(t *testing.T, c *client) {
			// The client reports errors through the response; IsError and
			// the error envelope must work as with Elasticsearch.
			missing := c.name(t, "gcerr")
			res, err := esapi.SearchRequest{Index: []string{missing}}.Do(context.Background(), c.transport(t))
			body := readClientResponse(t, res, err, http.StatusNotFound)
			if v, _ := lookup(body, "error.type"); v != "index_not_found_exception" {
				t.Errorf("error.type = %v, want index_not_found_exception", v)
			}
		}},
	}
}

// transport builds the official client's transport from the target.
func (c *client) transport(t testing.TB) *elastictransport.Client {
	t.Helper()
	tp, err := elastictransport.New(elastictransport.Config{
		URLs:         []*url.URL{c.target.URL},
		Username:     c.target.Username,
		Password:     c.target.Password,
		Transport:    c.http.Transport,
		DisableRetry: true,
	})
	if err != nil {
		t.Fatalf("build elastictransport client: %v", err)
	}
	return tp
}

// readClientResponse checks status and the product header, and decodes the
// JSON body (nil for an empty one).
func readClientResponse(t testing.TB, res *esapi.Response, err error, status int) any {
	t.Helper()
	if err != nil {
		t.Fatalf("esapi request: %v", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read esapi response: %v", err)
	}
	if res.StatusCode != status {
		t.Fatalf("status = %d, want %d: %s", res.StatusCode, status, raw)
	}
	if res.IsError() != (status >= 300) {
		t.Errorf("IsError() = %v for status %d", res.IsError(), status)
	}
	if status < 300 && res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Errorf("missing X-Elastic-Product: Elasticsearch")
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return nil
	}
	var body any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("decode esapi response: %v: %s", err, raw)
	}
	return body
}
