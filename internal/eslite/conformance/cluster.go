package conformance

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// clusterScenarios cover the root endpoint, cluster health and _cat/indices.
func clusterScenarios() []scenario {
	return []scenario{
		{name: "cluster/info_reports_version_8", run: func(t *testing.T, c *client) {
			// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/rest-api-root.html
			r := c.do(t, http.MethodGet, "/", nil).wantStatus(http.StatusOK)
			if v := r.str("version.number"); !strings.HasPrefix(v, "8.") {
				t.Errorf("version.number = %q, want 8.x", v)
			}
			r.eq("tagline", "You Know, for Search")
			r.str("cluster_name")
			r.str("name")
			r.str("version.lucene_version")
		}},
		{name: "cluster/health", run: func(t *testing.T, c *client) {
			// cluster health API: status is green, yellow or red; a single
			// node with replicas configured is yellow, never red.
			r := c.do(t, http.MethodGet, "/_cluster/health", nil).wantStatus(http.StatusOK)
			if s := r.str("status"); s != "green" && s != "yellow" {
				t.Errorf("status = %q, want green or yellow", s)
			}
			r.eq("timed_out", false)
			r.str("cluster_name")
			if n := r.int("number_of_nodes"); n < 1 {
				t.Errorf("number_of_nodes = %d, want >= 1", n)
			}
		}},
		{name: "cluster/cat_indices_json", run: func(t *testing.T, c *client) {
			// cat indices API with format=json: an array of objects whose
			// values are strings, e.g. "docs.count": "2".
			idx := c.createIndex(t, "cat", nil)
			c.bulkOK(t, idx, obj{"index": obj{"_id": "1"}}, obj{"a": 1}, obj{"index": obj{"_id": "2"}}, obj{"a": 2})
			r := c.do(t, http.MethodGet, "/_cat/indices?format=json", nil).wantStatus(http.StatusOK)
			var rows []map[string]any
			if err := json.Unmarshal(r.raw, &rows); err != nil {
				t.Fatalf("_cat/indices?format=json is not an array of objects: %v; %s", err, r)
			}
			var row map[string]any
			for _, candidate := range rows {
				if candidate["index"] == idx {
					row = candidate
				}
			}
			if row == nil {
				t.Fatalf("index %s not listed; %s", idx, r)
			}
			if row["docs.count"] != "2" {
				t.Errorf("docs.count = %#v, want \"2\"", row["docs.count"])
			}
			if row["status"] != "open" {
				t.Errorf("status = %#v, want \"open\"", row["status"])
			}
			if h := row["health"]; h != "green" && h != "yellow" {
				t.Errorf("health = %#v, want green or yellow", h)
			}
		}},
		{name: "cluster/unknown_endpoint_is_an_error", run: func(t *testing.T, c *client) {
			// An unknown endpoint under an index name is never a success.
			idx := c.createIndex(t, "unk", nil)
			r := c.do(t, http.MethodGet, "/"+idx+"/_no_such_endpoint", nil)
			if r.status < 400 {
				t.Errorf("want an error status, got %s", r)
			}
		}},
	}
}
