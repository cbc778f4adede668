package conformance

import (
	"net/http"
	"testing"
)

// msearchScenarios cover _msearch.
func msearchScenarios() []scenario {
	return []scenario{
		{name: "msearch/searches_answer_one_by_one", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "msrch")
			missing := c.name(t, "msmiss")
			r := c.bulk(t, "/_msearch",
				obj{"index": n}, obj{"query": obj{"term": obj{"category": "books"}}, "sort": arr{obj{"price": "asc"}}},
				obj{"index": missing}, obj{"query": obj{"match_all": obj{}}},
				obj{"index": n}, obj{"size": 0, "aggs": obj{"cats": obj{"terms": obj{"field": "category"}}}},
			).wantStatus(http.StatusOK)
			r.present("took").length("responses", 3)
			r.eq("responses.0.status", 200).eq("responses.0.hits.total.value", 2).eq("responses.0.hits.hits.0._id", "5")
			r.eq("responses.1.status", 404).eq("responses.1.error.type", "index_not_found_exception").
				eq("responses.1.error.root_cause.0.type", "index_not_found_exception")
			r.eq("responses.2.status", 200).eq("responses.2.hits.total.value", 6).length("responses.2.aggregations.cats.buckets", 3)
		}},
		{name: "msearch/index_from_path_and_empty_header", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "mspath")
			r := c.bulk(t, "/"+n+"/_msearch?rest_total_hits_as_int=true",
				obj{}, obj{"query": obj{"ids": obj{"values": arr{"1", "2"}}}},
				"", obj{"query": obj{"ids": obj{"values": arr{"3"}}}},
			).wantStatus(http.StatusOK)
			r.length("responses", 2).eq("responses.0.hits.total", 2).eq("responses.1.hits.total", 1)
		}},
		{name: "msearch/get_is_allowed", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "msget")
			body := "{\"index\":\"" + n + "\"}\n{\"size\":1}\n"
			r := c.doContentType(t, http.MethodGet, "/_msearch", body, "application/x-ndjson").wantStatus(http.StatusOK)
			r.eq("responses.0.status", 200).length("responses.0.hits.hits", 1)
		}},
		{name: "msearch/unknown_header_key", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "mshdr")
			c.bulk(t, "/_msearch", obj{"index": n, "bogus": 1}, obj{}).
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception").
				eq("error.reason", "key [bogus] is not supported in the metadata section")
		}},
	}
}

// updateByQueryScenarios cover _update_by_query without a script.
func updateByQueryScenarios() []scenario {
	return []scenario{
		{name: "update_by_query/reindexes_matches_in_place", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "ubq")
			r := c.do(t, http.MethodPost, "/"+n+"/_update_by_query?refresh=true", q(obj{"term": obj{"category": "books"}})).
				wantStatus(http.StatusOK)
			r.eq("total", 2).eq("updated", 2).eq("deleted", 0).eq("version_conflicts", 0).eq("noops", 0).
				eq("batches", 1).eq("timed_out", false).eq("failures", arr{}).absent("created")
			c.do(t, http.MethodGet, "/"+n+"/_doc/5", nil).wantStatus(http.StatusOK).eq("_version", 2).eq("_source", products()["5"])
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_version", 1)
		}},
		{name: "update_by_query/picks_up_a_new_field_mapping", run: func(t *testing.T, c *client) {
			// The classic use: documents indexed before a field was mapped
			// become searchable on it after an update by query.
			n := c.createIndex(t, "ubqmap", obj{"mappings": obj{"dynamic": false, "properties": obj{"a": obj{"type": "keyword"}}}})
			c.bulkOK(t, n, obj{"index": obj{"_id": "1"}}, obj{"a": "x", "extra": "late"},
				obj{"index": obj{"_id": "2"}}, obj{"a": "y", "extra": "other"})
			if got := c.count(t, n, q(obj{"term": obj{"extra": "late"}})); got != 0 {
				t.Fatalf("unmapped field matched %d documents before the mapping", got)
			}
			c.do(t, http.MethodPut, "/"+n+"/_mapping", obj{"properties": obj{"extra": obj{"type": "keyword"}}}).wantStatus(http.StatusOK)
			c.do(t, http.MethodPost, "/"+n+"/_update_by_query?refresh=true&conflicts=proceed", nil).wantStatus(http.StatusOK).
				eq("total", 2).eq("updated", 2)
			if got := c.count(t, n, q(obj{"term": obj{"extra": "late"}})); got != 1 {
				t.Fatalf("after _update_by_query the new field matched %d documents, want 1", got)
			}
		}},
		{name: "update_by_query/max_docs", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "ubqmax")
			c.do(t, http.MethodPost, "/"+n+"/_update_by_query?max_docs=2", nil).wantStatus(http.StatusOK).
				eq("total", 2).eq("updated", 2)
		}},
		{name: "update_by_query/missing_index", run: func(t *testing.T, c *client) {
			n := c.name(t, "ubqmiss")
			c.do(t, http.MethodPost, "/"+n+"/_update_by_query", nil).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception")
		}},
	}
}
