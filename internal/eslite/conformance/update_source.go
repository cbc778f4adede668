package conformance

import (
	"net/http"
	"testing"
)

// updateSourceScenarios cover _source on updates (the response's "get")
// and require_alias on writes.
func updateSourceScenarios() []scenario {
	return []scenario{
		{name: "update_source/url_parameter", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "upsrc", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1, "b": obj{"c": 2}}).wantStatus(http.StatusCreated)
			r := c.do(t, http.MethodPost, "/"+n+"/_update/1?_source=true", obj{"doc": obj{"d": 3}}).wantStatus(http.StatusOK)
			r.eq("result", "updated").eq("get.found", true).eq("get._source", obj{"a": 1, "b": obj{"c": 2}, "d": 3}).
				eq("get._seq_no", r.num("_seq_no")).eq("get._primary_term", 1)
			c.do(t, http.MethodPost, "/"+n+"/_update/1?_source_includes=b.*", obj{"doc": obj{"d": 4}}).wantStatus(http.StatusOK).
				eq("get._source", obj{"b": obj{"c": 2}})
			c.do(t, http.MethodPost, "/"+n+"/_update/1?_source=false", obj{"doc": obj{"d": 5}}).wantStatus(http.StatusOK).absent("get")
			c.do(t, http.MethodPost, "/"+n+"/_update/1", obj{"doc": obj{"d": 6}}).wantStatus(http.StatusOK).absent("get")
			// A noop still answers with the document.
			c.do(t, http.MethodPost, "/"+n+"/_update/1?_source=d", obj{"doc": obj{"d": 6}}).wantStatus(http.StatusOK).
				eq("result", "noop").eq("get._source", obj{"d": 6})
		}},
		{name: "update_source/body_and_upsert", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "upsrcb", nil)
			c.do(t, http.MethodPost, "/"+n+"/_update/9", obj{"doc": obj{"x": 1}, "doc_as_upsert": true, "_source": arr{"x"}}).
				wantStatus(http.StatusCreated).eq("result", "created").eq("get._source", obj{"x": 1}).eq("get.found", true)
			c.do(t, http.MethodPost, "/"+n+"/_update/9", obj{"doc": obj{"y": 2}, "_source": obj{"excludes": arr{"x"}}}).
				wantStatus(http.StatusOK).eq("get._source", obj{"y": 2})
		}},
		{name: "update_source/bulk", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "upsrcbulk", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+n+"/_doc/2", obj{"a": 2}).wantStatus(http.StatusCreated)
			r := c.bulk(t, "/"+n+"/_bulk",
				obj{"update": obj{"_id": "1", "_source": true}}, obj{"doc": obj{"b": 1}},
				obj{"update": obj{"_id": "2"}}, obj{"doc": obj{"b": 2}, "_source": "b"},
				obj{"update": obj{"_id": "1"}}, obj{"doc": obj{"b": 3}},
			).wantStatus(http.StatusOK).eq("errors", false)
			r.eq("items.0.update.get._source", obj{"a": 1, "b": 1}).eq("items.0.update.get.found", true)
			r.eq("items.1.update.get._source", obj{"b": 2})
			r.absent("items.2.update.get")
		}},
		{name: "require_alias/single_document_write", run: func(t *testing.T, c *client) {
			n := c.name(t, "reqal")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?require_alias=true", obj{"a": 1}).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception").
				eq("error.reason", "no such index ["+n+"] and [require_alias] request flag is [true] and ["+n+"] is not an alias")
			// Nothing was created.
			c.do(t, http.MethodGet, "/"+n, nil).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodPost, "/"+n+"/_doc?require_alias=true", obj{"a": 1}).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodPut, "/"+n+"/_create/1?require_alias=true", obj{"a": 1}).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodPost, "/"+n+"/_update/1?require_alias=true", obj{"doc": obj{"a": 1}, "doc_as_upsert": true}).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodGet, "/"+n, nil).wantStatus(http.StatusNotFound)
			// A concrete index is not an alias either; an alias is fine.
			c.do(t, http.MethodPut, "/"+n, nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?require_alias=true", obj{"a": 1}).wantStatus(http.StatusNotFound)
			al := c.aliasName(t, "reqal")
			c.do(t, http.MethodPut, "/"+n+"/_alias/"+al, nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodPut, "/"+al+"/_doc/1?require_alias=true", obj{"a": 1}).wantStatus(http.StatusCreated).eq("_index", n)
		}},
		{name: "require_alias/bulk_item_overrides_request", run: func(t *testing.T, c *client) {
			n := c.name(t, "reqalb")
			m := c.name(t, "reqalb")
			r := c.bulk(t, "/_bulk?require_alias=true",
				obj{"index": obj{"_index": n, "_id": "1", "require_alias": false}}, obj{"a": 1},
				obj{"index": obj{"_index": m, "_id": "1"}}, obj{"a": 1},
			).wantStatus(http.StatusOK).eq("errors", true)
			r.eq("items.0.index.status", 201).eq("items.1.index.status", 404).eq("items.1.index.error.type", "index_not_found_exception")
			c.do(t, http.MethodGet, "/"+n, nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodGet, "/"+m, nil).wantStatus(http.StatusNotFound)
		}},
		{name: "documents/get_with_version", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "getver", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 2}).wantStatus(http.StatusOK)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1?version=2", nil).wantStatus(http.StatusOK).eq("_source", obj{"a": 2})
			c.do(t, http.MethodGet, "/"+n+"/_doc/1?version=1", nil).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception").
				eq("error.reason", "[1]: version conflict, current version [2] is different than the one provided [1]").
				eq("error.index", n)
			c.do(t, http.MethodGet, "/"+n+"/_source/1?version=7", nil).wantStatus(http.StatusConflict)
			// A missing document is still just not found.
			c.do(t, http.MethodGet, "/"+n+"/_doc/2?version=1", nil).wantStatus(http.StatusNotFound).eq("found", false)
		}},
		{name: "cluster/health_level_indices", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "hlvl", obj{"settings": obj{"number_of_shards": 2, "number_of_replicas": 0}})
			r := c.do(t, http.MethodGet, "/_cluster/health/"+n+"?level=indices", nil).wantStatus(http.StatusOK)
			r.eq("indices."+n+".status", "green").eq("indices."+n+".number_of_shards", 2).
				eq("indices."+n+".number_of_replicas", 0).eq("indices."+n+".active_primary_shards", 2).
				eq("indices."+n+".active_shards", 2).eq("indices."+n+".unassigned_shards", 0).absent("indices." + n + ".shards")
			c.do(t, http.MethodGet, "/_cluster/health/"+n, nil).wantStatus(http.StatusOK).absent("indices")
			c.do(t, http.MethodGet, "/_cluster/health/"+n+"?level=shards", nil).wantStatus(http.StatusOK).
				eq("indices."+n+".shards.0.primary_active", true)
		}},
	}
}
