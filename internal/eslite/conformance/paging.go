package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// pagingScenarios cover from/size, index.max_result_window and search_after.
func pagingScenarios() []scenario {
	return []scenario{
		{name: "paging/from_size", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "pfs")
			sorted := func(extra obj) []string {
				body := obj{"sort": arr{obj{"price": "asc"}}}
				for k, v := range extra {
					body[k] = v
				}
				return c.searchIDs(t, n, body)
			}
			wantIDs(t, sorted(obj{"from": 1, "size": 2}), "2", "3")
			wantIDs(t, sorted(obj{"from": 4, "size": 10}), "5", "6")
			wantIDs(t, sorted(obj{"from": 6}))
			wantIDs(t, sorted(obj{"size": 0}))
			// from and size also work as URL parameters.
			r := c.do(t, http.MethodPost, "/"+n+"/_search?from=2&size=1", obj{"sort": arr{obj{"price": "asc"}}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "3")
			r.eq("hits.total.value", 6)
		}},
		{name: "paging/default_size_is_10", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "psize", nil)
			var lines []any
			for i := 0; i < 15; i++ {
				lines = append(lines, obj{"index": obj{"_id": fmt.Sprint(i)}}, obj{"i": i})
			}
			c.bulkOK(t, n, lines...)
			c.search(t, n, nil).wantStatus(http.StatusOK).eq("hits.total.value", 15).length("hits.hits", 10)
		}},
		{name: "paging/max_result_window", run: func(t *testing.T, c *client) {
			// rest-api-spec search/30_limits.yml: "Result window is too large,
			// from + size must be less than or equal to: [10000] but was
			// [10010]. ..." — a shard failure, so 400
			// search_phase_execution_exception with an
			// illegal_argument_exception root cause.
			n := c.seedProducts(t, "pwin")
			c.search(t, n, obj{"from": 10000}).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "illegal_argument_exception").
				contains("error.root_cause.0.reason", "Result window is too large, from + size must be less than or equal to: [10000] but was [10010]")
			c.search(t, n, obj{"from": 9990, "size": 11}).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "illegal_argument_exception")
			// Exactly at the limit is fine.
			c.search(t, n, obj{"from": 9990, "size": 10}).wantStatus(http.StatusOK).length("hits.hits", 0)
		}},
		{name: "paging/max_result_window_setting", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "pwinset", obj{"settings": obj{"index": obj{"max_result_window": 5}}})
			c.search(t, n, obj{"from": 3, "size": 2}).wantStatus(http.StatusOK)
			c.search(t, n, obj{"from": 3, "size": 3}).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "illegal_argument_exception").
				contains("error.root_cause.0.reason", "less than or equal to: [5] but was [6]")
		}},
		{name: "paging/negative_from", run: func(t *testing.T, c *client) {
			// rest-api-spec search/30_limits.yml: "[from] parameter cannot be negative".
			n := c.seedProducts(t, "pneg")
			r := c.do(t, http.MethodPost, "/"+n+"/_search?from=-2", nil)
			r.wantStatus(http.StatusBadRequest)
			if s := string(r.raw); !strings.Contains(s, "[from] parameter cannot be negative") {
				t.Errorf("want \"[from] parameter cannot be negative\" in %s", r)
			}
		}},
		{name: "paging/search_after_walks_everything", run: func(t *testing.T, c *client) {
			// search_after with the last hit's sort values pages through the
			// whole result set without gaps or repeats.
			n := c.createIndex(t, "pafter", obj{"mappings": obj{"properties": obj{
				"grp": obj{"type": "keyword"}, "n": obj{"type": "long"}, "id": obj{"type": "keyword"},
			}}})
			const total = 25
			var lines []any
			for i := 0; i < total; i++ {
				lines = append(lines, obj{"index": obj{"_id": fmt.Sprint(i)}}, obj{"grp": fmt.Sprint("g", i%3), "n": i, "id": fmt.Sprintf("%03d", i)})
			}
			c.bulkOK(t, n, lines...)
			var want []string
			for g := 0; g < 3; g++ {
				for i := total - 1; i >= 0; i-- {
					if i%3 == g {
						want = append(want, fmt.Sprint(i))
					}
				}
			}
			var got []string
			var after any
			for page := 0; page < 20; page++ {
				body := obj{"size": 4, "sort": arr{obj{"grp": "asc"}, obj{"n": "desc"}}}
				if after != nil {
					body["search_after"] = after
				}
				r := c.search(t, n, body).wantStatus(http.StatusOK)
				r.eq("hits.total.value", total)
				hits := r.list("hits.hits")
				if len(hits) == 0 {
					break
				}
				got = append(got, r.ids()...)
				after, _ = r.lookup(fmt.Sprintf("hits.hits.%d.sort", len(hits)-1))
			}
			wantIDs(t, got, want...)
		}},
		{name: "paging/search_after_with_tiebreaker_keyword", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "paftkw")
			r := c.search(t, n, obj{"size": 2, "sort": arr{obj{"category": "asc"}, obj{"title.keyword": "asc"}}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "2", "1")
			after, _ := r.lookup("hits.hits.1.sort")
			wantIDs(t, c.searchIDs(t, n, obj{"size": 2, "sort": arr{obj{"category": "asc"}, obj{"title.keyword": "asc"}}, "search_after": after}), "5", "6")
			wantIDs(t, c.searchIDs(t, n, obj{"size": 10, "sort": arr{obj{"category": "asc"}, obj{"title.keyword": "asc"}}, "search_after": arr{"books", "Untitled draft"}}), "3", "4")
		}},
	}
}
