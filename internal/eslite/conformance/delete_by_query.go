package conformance

import (
	"net/http"
	"testing"
)

// deleteByQueryScenarios cover POST /{index}/_delete_by_query.
func deleteByQueryScenarios() []scenario {
	return []scenario{
		{name: "delete_by_query/term", run: func(t *testing.T, c *client) {
			// Response: total, deleted, version_conflicts, noops, failures,
			// timed_out.
			n := c.seedProducts(t, "dbq")
			r := c.do(t, http.MethodPost, "/"+n+"/_delete_by_query?refresh=true", q(obj{"term": obj{"category": "animals"}})).
				wantStatus(http.StatusOK)
			r.eq("total", 2).eq("deleted", 2).eq("version_conflicts", 0).eq("noops", 0).eq("failures", arr{}).eq("timed_out", false)
			wantIDSet(t, c.searchIDs(t, n, nil), "3", "4", "5", "6")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound)
		}},
		{name: "delete_by_query/nothing_matches", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "dbqnone")
			c.do(t, http.MethodPost, "/"+n+"/_delete_by_query", q(obj{"term": obj{"category": "nothing"}})).
				wantStatus(http.StatusOK).eq("total", 0).eq("deleted", 0)
			if got := c.count(t, n, nil); got != 6 {
				t.Errorf("count = %d, want 6", got)
			}
		}},
		{name: "delete_by_query/match_all_then_reuse", run: func(t *testing.T, c *client) {
			// Without refresh=true the deletes become searchable at the next
			// refresh; GET is realtime at once.
			n := c.seedProducts(t, "dbqall")
			c.do(t, http.MethodPost, "/"+n+"/_delete_by_query", q(obj{"match_all": obj{}})).
				wantStatus(http.StatusOK).eq("deleted", 6)
			c.do(t, http.MethodGet, "/"+n+"/_doc/3", nil).wantStatus(http.StatusNotFound)
			c.refresh(t, n)
			if got := c.count(t, n, nil); got != 0 {
				t.Errorf("count = %d, want 0", got)
			}
			// The index and its mapping stay.
			c.do(t, http.MethodPut, "/"+n+"/_doc/9?refresh=true", obj{"price": 1}).wantStatus(http.StatusCreated).eq("_version", 1)
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"price": obj{"lt": 5}}})), "9")
		}},
		{name: "delete_by_query/missing_index", run: func(t *testing.T, c *client) {
			n := c.name(t, "dbqmiss")
			c.do(t, http.MethodPost, "/"+n+"/_delete_by_query", q(obj{"match_all": obj{}})).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception")
		}},
		{name: "delete_by_query/bad_query", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "dbqbad")
			c.do(t, http.MethodPost, "/"+n+"/_delete_by_query", q(obj{"no_such_query": obj{}})).
				wantError(http.StatusBadRequest, "parsing_exception", "parsing_exception")
			if got := c.count(t, n, nil); got != 6 {
				t.Errorf("count = %d, want 6", got)
			}
		}},
	}
}
