package conformance

import (
	"net/http"
	"strings"
	"testing"
)

// adminScenarios cover index create, exists, delete and refresh, and the
// errors Elasticsearch gives for invalid and duplicate names.
func adminScenarios() []scenario {
	return []scenario{
		{name: "admin/create_index", run: func(t *testing.T, c *client) {
			// create index API response: acknowledged, shards_acknowledged, index.
			n := c.name(t, "create")
			c.do(t, http.MethodPut, "/"+n, obj{
				"settings": obj{"number_of_shards": 1, "number_of_replicas": 0},
				"mappings": obj{"properties": obj{"k": obj{"type": "keyword"}}},
			}).wantStatus(http.StatusOK).
				eq("acknowledged", true).
				eq("shards_acknowledged", true).
				eq("index", n)
		}},
		{name: "admin/create_existing_index", run: func(t *testing.T, c *client) {
			// resource_already_exists_exception, 400, carrying the index name.
			n := c.createIndex(t, "dup", nil)
			c.do(t, http.MethodPut, "/"+n, nil).
				wantError(http.StatusBadRequest, "resource_already_exists_exception", "resource_already_exists_exception").
				eq("error.index", n).
				contains("error.reason", "already exists")
		}},
		{name: "admin/invalid_index_names", run: func(t *testing.T, c *client) {
			// MetadataCreateIndexService.validateIndexOrAliasName: lowercase
			// only, must not start with '_', '-' or '+', no '*', '?', '"', '<',
			// '>', '|', ' ', ',', '#', ':', and not "." or "..". 400
			// invalid_index_name_exception.
			suffix := strings.TrimPrefix(c.aliasName(t, "bad"), "conf-")
			for _, bad := range []struct{ name, reason string }{
				{"conf-UPPER-" + suffix, "must be lowercase"},
				{"_conf-" + suffix, "must not start with"},
				{"-conf-" + suffix, "must not start with"},
				{"+conf-" + suffix, "must not start with"},
				{"conf-a*b-" + suffix, "must not contain"},
				{"conf-a?b-" + suffix, "must not contain"},
			} {
				r := c.do(t, http.MethodPut, "/"+strings.ReplaceAll(bad.name, "?", "%3F"), nil)
				if r.status == http.StatusOK {
					c.dropIndex(t, bad.name)
				}
				r.wantError(http.StatusBadRequest, "invalid_index_name_exception", "invalid_index_name_exception").
					contains("error.reason", bad.reason)
			}
		}},
		{name: "admin/head_index", run: func(t *testing.T, c *client) {
			// HEAD /{index}: 200 when it exists, 404 when not, no body.
			n := c.createIndex(t, "head", nil)
			r := c.do(t, http.MethodHead, "/"+n, nil).wantStatus(http.StatusOK)
			if len(r.raw) != 0 {
				t.Errorf("HEAD answered with a body: %q", r.raw)
			}
			missing := c.name(t, "headmiss")
			r = c.do(t, http.MethodHead, "/"+missing, nil).wantStatus(http.StatusNotFound)
			if len(r.raw) != 0 {
				t.Errorf("HEAD answered with a body: %q", r.raw)
			}
		}},
		{name: "admin/delete_index", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "del", nil)
			c.do(t, http.MethodDelete, "/"+n, nil).wantStatus(http.StatusOK).eq("acknowledged", true)
			c.do(t, http.MethodHead, "/"+n, nil).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodDelete, "/"+n, nil).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception").
				eq("error.index", n)
		}},
		{name: "admin/index_not_found_body", run: func(t *testing.T, c *client) {
			// {"error":{"root_cause":[{"type":"index_not_found_exception",
			// "reason":"no such index [x]",...}],...,"index":"x"},"status":404}
			n := c.name(t, "nf")
			c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception").
				eq("error.reason", "no such index ["+n+"]").
				eq("error.index", n).
				eq("error.root_cause.0.index", n)
		}},
		{name: "admin/recreate_after_delete_is_empty", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "recreate", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=true", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n, nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodPut, "/"+n, nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound).eq("found", false)
			if got := c.count(t, n, nil); got != 0 {
				t.Errorf("count after re-create = %d, want 0", got)
			}
		}},
		{name: "admin/refresh_index", run: func(t *testing.T, c *client) {
			// refresh API answers with the _shards header and no failures.
			n := c.createIndex(t, "refresh", nil)
			c.do(t, http.MethodPost, "/"+n+"/_refresh", nil).wantStatus(http.StatusOK).eq("_shards.failed", 0)
			missing := c.name(t, "refreshmiss")
			c.do(t, http.MethodPost, "/"+missing+"/_refresh", nil).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception")
		}},
		{name: "admin/invalid_create_body", run: func(t *testing.T, c *client) {
			// Unknown top-level keys in the create body are rejected with 400
			// (parse_exception in 8.x: "unknown key [foo] for create index").
			n := c.name(t, "badbody")
			r := c.do(t, http.MethodPut, "/"+n, obj{"foo": obj{}})
			r.wantStatus(http.StatusBadRequest)
			r.eq("status", http.StatusBadRequest)
			c.do(t, http.MethodHead, "/"+n, nil).wantStatus(http.StatusNotFound)
		}},
	}
}
