package conformance

import (
	"net/http"
	"testing"
)

// fetchScenarios cover what a search returns besides hits' _source:
// docvalue_fields, rest_total_hits_as_int and terminate_after.
func fetchScenarios() []scenario {
	return []scenario{
		{name: "fetch/docvalue_fields", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "dvf")
			r := c.search(t, n, obj{
				"size": 1, "sort": arr{obj{"price": "asc"}}, "_source": false,
				"docvalue_fields": arr{"category", "tags", "price", "rating", "available", "created", "title.keyword",
					obj{"field": "created", "format": "yyyy-MM-dd"}},
			}).wantStatus(http.StatusOK)
			r.absent("hits.hits.0._source")
			r.eq("hits.hits.0.fields", obj{
				"category": arr{"animals"}, "tags": arr{"fast", "wild"}, "price": arr{10}, "rating": arr{4.5},
				"available": arr{true}, "created": arr{"2024-01-05"}, "title.keyword": arr{"Quick brown fox"},
			})
		}},
		{name: "fetch/docvalue_fields_default_date_format_and_missing_values", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "dvfdate")
			r := c.search(t, n, obj{"query": obj{"ids": obj{"values": arr{"1", "6"}}}, "sort": arr{obj{"title.keyword": "asc"}},
				"docvalue_fields": arr{"created", "price", "unmapped_field"}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "1", "6")
			r.eq("hits.hits.0.fields", obj{"created": arr{"2024-01-05T10:00:00.000Z"}, "price": arr{10}})
			// A hit without any of the fields has no "fields" at all.
			r.absent("hits.hits.1.fields")
		}},
		{name: "fetch/docvalue_fields_wildcard", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "dvfwild")
			r := c.search(t, n, obj{"query": obj{"ids": obj{"values": arr{"3"}}}, "docvalue_fields": arr{"pri*", "sto*"}}).
				wantStatus(http.StatusOK)
			r.eq("hits.hits.0.fields", obj{"price": arr{30}, "stock": arr{7}})
		}},
		{name: "fetch/docvalue_fields_on_text_fails", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "dvftext")
			c.search(t, n, obj{"docvalue_fields": arr{"body"}}).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "illegal_argument_exception").
				contains("error.root_cause.0.reason", "Text fields are not optimised")
		}},
		{name: "fetch/rest_total_hits_as_int", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "tint")
			c.do(t, http.MethodPost, "/"+n+"/_search?rest_total_hits_as_int=true", nil).wantStatus(http.StatusOK).eq("hits.total", 6)
			c.do(t, http.MethodPost, "/"+n+"/_search?rest_total_hits_as_int=true&track_total_hits=true", nil).wantStatus(http.StatusOK).eq("hits.total", 6)
			c.do(t, http.MethodPost, "/"+n+"/_search?rest_total_hits_as_int=true", obj{"track_total_hits": false}).wantStatus(http.StatusOK).eq("hits.total", -1)
			c.do(t, http.MethodPost, "/"+n+"/_search?rest_total_hits_as_int=true", obj{"track_total_hits": 2}).
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception").
				eq("error.reason", "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got 2")
			c.do(t, http.MethodGet, "/"+n+"/_search?rest_total_hits_as_int=true&track_total_hits=3", nil).
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception").
				eq("error.reason", "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got 3")
		}},
		{name: "fetch/terminate_after", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "term")
			r := c.search(t, n, obj{"terminate_after": 2}).wantStatus(http.StatusOK).eq("terminated_early", true)
			if got := len(r.list("hits.hits")); got != 2 {
				t.Errorf("terminate_after 2 returned %d hits, want 2", got)
			}
			c.search(t, n, obj{"terminate_after": 100}).wantStatus(http.StatusOK).eq("terminated_early", false).eq("hits.total.value", 6)
		}},
		{name: "fetch/terminate_after_validated_before_the_index", run: func(t *testing.T, c *client) {
			n := c.name(t, "termneg")
			c.search(t, n, obj{"terminate_after": -1}).
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception").
				eq("error.reason", "terminateAfter must be > 0")
		}},
	}
}
