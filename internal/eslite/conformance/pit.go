package conformance

import (
	"fmt"
	"net/http"
	"sort"
	"testing"
)

// openPIT opens a point in time on index and closes it at cleanup.
func (c *client) openPIT(t testing.TB, index string) string {
	t.Helper()
	r := c.do(t, http.MethodPost, "/"+index+"/_pit?keep_alive=1m", nil).wantStatus(http.StatusOK)
	id := r.str("id")
	t.Cleanup(func() { c.do(t, http.MethodDelete, "/_pit", obj{"id": id}) })
	return id
}

// pitScenarios cover points in time: POST /{index}/_pit, search with "pit"
// and search_after, the _shard_doc tiebreaker and DELETE /_pit.
func pitScenarios() []scenario {
	return []scenario{
		{name: "pit/search_after_walks_the_view_it_opened", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "pitwalk", 17)
			pit := c.openPIT(t, n)
			// Writes after the point in time opened are not seen through it.
			var lines []any
			for i := 100; i < 105; i++ {
				lines = append(lines, obj{"index": obj{"_id": fmt.Sprint(i)}}, obj{"n": i, "grp": "g0"})
			}
			c.bulkOK(t, n, lines...)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/0?refresh=true", nil).wantStatus(http.StatusOK)

			var got []string
			var after any
			for page := 0; page < 20; page++ {
				body := obj{"size": 4, "pit": obj{"id": pit, "keep_alive": "1m"}, "sort": arr{obj{"grp": "asc"}}}
				if after != nil {
					body["search_after"] = after
				}
				r := c.do(t, http.MethodPost, "/_search", body).wantStatus(http.StatusOK)
				r.present("pit_id").eq("hits.total.value", 17)
				hits := r.list("hits.hits")
				if len(hits) == 0 {
					break
				}
				last := len(hits) - 1
				sortVals := r.list(fmt.Sprintf("hits.hits.%d.sort", last))
				// The implicit tiebreaker adds a second sort value.
				if len(sortVals) != 2 {
					t.Fatalf("want 2 sort values (grp and the _shard_doc tiebreaker), got %v", sortVals)
				}
				if _, ok := sortVals[1].(float64); !ok {
					t.Fatalf("want a numeric _shard_doc tiebreaker, got %v", sortVals[1])
				}
				got = append(got, r.ids()...)
				after = sortVals
				pit = r.str("pit_id")
			}
			sort.Strings(got)
			wantIDs(t, got, allIDs(17)...)
		}},
		{name: "pit/explicit_shard_doc_sort", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "pitshard", 9)
			pit := c.openPIT(t, n)
			var got []string
			var after any
			for page := 0; page < 10; page++ {
				body := obj{"size": 4, "pit": obj{"id": pit}, "sort": arr{obj{"_shard_doc": "desc"}}}
				if after != nil {
					body["search_after"] = after
				}
				r := c.do(t, http.MethodPost, "/_search", body).wantStatus(http.StatusOK)
				hits := r.list("hits.hits")
				if len(hits) == 0 {
					break
				}
				got = append(got, r.ids()...)
				after = r.list(fmt.Sprintf("hits.hits.%d.sort", len(hits)-1))
				if len(after.([]any)) != 1 {
					t.Fatalf("an explicit _shard_doc sort adds no tiebreaker; got sort %v", after)
				}
			}
			sort.Strings(got)
			wantIDs(t, got, allIDs(9)...)
		}},
		{name: "pit/close", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "pitclose", 3)
			r := c.do(t, http.MethodPost, "/"+n+"/_pit?keep_alive=1m", nil).wantStatus(http.StatusOK)
			id := r.str("id")
			c.do(t, http.MethodDelete, "/_pit", obj{"id": id}).wantStatus(http.StatusOK).
				eq("succeeded", true).eq("num_freed", 1)
			c.do(t, http.MethodDelete, "/_pit", obj{"id": id}).wantStatus(http.StatusNotFound).
				eq("succeeded", true).eq("num_freed", 0)
			c.do(t, http.MethodPost, "/_search", obj{"pit": obj{"id": id}}).
				wantError(http.StatusNotFound, "search_phase_execution_exception", "search_context_missing_exception")
		}},
		{name: "pit/keep_alive_is_required", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "pitka", 1)
			c.do(t, http.MethodPost, "/"+n+"/_pit", nil).
				wantError(http.StatusBadRequest, "action_request_validation_exception", "action_request_validation_exception").
				contains("error.reason", "[keep_alive] is not specified")
		}},
		{name: "pit/missing_index", run: func(t *testing.T, c *client) {
			n := c.name(t, "pitmiss")
			c.do(t, http.MethodPost, "/"+n+"/_pit?keep_alive=1m", nil).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception")
		}},
		{name: "pit/index_in_path_is_refused", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "pitpath", 1)
			pit := c.openPIT(t, n)
			c.do(t, http.MethodPost, "/"+n+"/_search", obj{"pit": obj{"id": pit}}).
				wantError(http.StatusBadRequest, "action_request_validation_exception", "action_request_validation_exception").
				contains("error.reason", "[indices] cannot be used with point in time")
		}},
		{name: "pit/shard_doc_needs_a_pit", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "pitsd", 1)
			c.search(t, n, obj{"sort": arr{"_shard_doc"}}).
				wantError(http.StatusBadRequest, "action_request_validation_exception", "action_request_validation_exception").
				eq("error.reason", "Validation Failed: 1: [_shard_doc] sort field cannot be used without [point in time];")
		}},
	}
}
