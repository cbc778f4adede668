package conformance

import (
	"fmt"
	"net/http"
	"sort"
	"testing"
)

// seedCounted creates an index holding n documents {"n": i} with ids
// "0".."n-1", refreshed.
func (c *client) seedCounted(t testing.TB, short string, n int) string {
	t.Helper()
	idx := c.createIndex(t, short, obj{"mappings": obj{"properties": obj{"n": obj{"type": "long"}, "grp": obj{"type": "keyword"}}}})
	var lines []any
	for i := 0; i < n; i++ {
		lines = append(lines, obj{"index": obj{"_id": fmt.Sprint(i)}}, obj{"n": i, "grp": fmt.Sprint("g", i%3)})
	}
	c.bulkOK(t, idx, lines...)
	return idx
}

// allIDs returns "0".."n-1" sorted as strings.
func allIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	sort.Strings(out)
	return out
}

// scrollAll opens a scroll with body and follows it to the end, returning
// every id in order and the last scroll id.
func (c *client) scrollAll(t testing.TB, index string, body obj, wantTotal int) ([]string, string) {
	t.Helper()
	r := c.do(t, http.MethodPost, "/"+index+"/_search?scroll=1m", body).wantStatus(http.StatusOK)
	r.eq("hits.total.value", wantTotal).eq("hits.total.relation", "eq")
	id := r.str("_scroll_id")
	got := r.ids()
	for page := 0; page < 1000; page++ {
		r = c.do(t, http.MethodPost, "/_search/scroll", obj{"scroll": "1m", "scroll_id": id}).wantStatus(http.StatusOK)
		r.eq("hits.total.value", wantTotal)
		id = r.str("_scroll_id")
		if len(r.list("hits.hits")) == 0 {
			return got, id
		}
		got = append(got, r.ids()...)
	}
	t.Fatalf("scroll of %s did not end after 1000 pages", index)
	return nil, ""
}

// scrollScenarios cover the scroll API: POST /_search?scroll=,
// /_search/scroll and DELETE /_search/scroll.
func scrollScenarios() []scenario {
	return []scenario{
		{name: "scroll/walks_everything_in_doc_order", run: func(t *testing.T, c *client) {
			// The way Python's helpers.scan scrolls: sort by _doc.
			n := c.seedCounted(t, "scrdoc", 23)
			got, id := c.scrollAll(t, n, obj{"size": 5, "sort": arr{"_doc"}}, 23)
			sort.Strings(got)
			wantIDs(t, got, allIDs(23)...)
			// Clear scroll: freed once, then 404 with num_freed 0.
			c.do(t, http.MethodDelete, "/_search/scroll", obj{"scroll_id": id}).wantStatus(http.StatusOK).
				eq("succeeded", true).eq("num_freed", 1)
			c.do(t, http.MethodDelete, "/_search/scroll", obj{"scroll_id": arr{id}}).wantStatus(http.StatusNotFound).
				eq("succeeded", true).eq("num_freed", 0)
			// A freed scroll fails like an expired one.
			c.do(t, http.MethodPost, "/_search/scroll", obj{"scroll": "1m", "scroll_id": id}).
				wantError(http.StatusNotFound, "search_phase_execution_exception", "search_context_missing_exception").
				contains("error.root_cause.0.reason", "No search context found for id")
		}},
		{name: "scroll/sorted_pages_in_order", run: func(t *testing.T, c *client) {
			// Scroll pages keep the sort across pages, ties included.
			n := c.seedCounted(t, "scrsort", 20)
			got, _ := c.scrollAll(t, n, obj{"size": 3, "sort": arr{obj{"grp": "desc"}, obj{"n": "asc"}}}, 20)
			var want []string
			for g := 2; g >= 0; g-- {
				for i := 0; i < 20; i++ {
					if i%3 == g {
						want = append(want, fmt.Sprint(i))
					}
				}
			}
			wantIDs(t, got, want...)
		}},
		{name: "scroll/default_sort_sees_the_view_it_opened", run: func(t *testing.T, c *client) {
			// The JavaScript client's scrollSearch helper: no sort. Writes
			// after the scroll opened are not seen by it.
			n := c.seedCounted(t, "scrview", 12)
			r := c.do(t, http.MethodPost, "/"+n+"/_search?scroll=1m", obj{"size": 5, "query": obj{"range": obj{"n": obj{"gte": 0}}}}).
				wantStatus(http.StatusOK).eq("hits.total.value", 12)
			id := r.str("_scroll_id")
			got := r.ids()
			var lines []any
			for i := 100; i < 110; i++ {
				lines = append(lines, obj{"index": obj{"_id": fmt.Sprint(i)}}, obj{"n": i})
			}
			c.bulkOK(t, n, lines...)
			for {
				r = c.do(t, http.MethodGet, "/_search/scroll?scroll=1m&scroll_id="+id, nil).wantStatus(http.StatusOK)
				r.eq("hits.total.value", 12)
				if len(r.list("hits.hits")) == 0 {
					break
				}
				got = append(got, r.ids()...)
				if len(got) > 12 {
					t.Fatalf("scroll returned more than the 12 documents it opened on: %v", got)
				}
			}
			sort.Strings(got)
			wantIDs(t, got, allIDs(12)...)
			c.do(t, http.MethodDelete, "/_search/scroll/"+id, nil).wantStatus(http.StatusOK).eq("num_freed", 1)
		}},
		{name: "scroll/aggregations_only_on_the_first_page", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "scragg", 5)
			r := c.do(t, http.MethodPost, "/"+n+"/_search?scroll=1m", obj{"size": 2, "aggs": obj{"g": obj{"terms": obj{"field": "grp"}}}}).
				wantStatus(http.StatusOK).length("aggregations.g.buckets", 3)
			id := r.str("_scroll_id")
			c.do(t, http.MethodPost, "/_search/scroll", obj{"scroll": "1m", "scroll_id": id}).wantStatus(http.StatusOK).
				length("hits.hits", 2).absent("aggregations")
			c.do(t, http.MethodDelete, "/_search/scroll", obj{"scroll_id": id}).wantStatus(http.StatusOK)
		}},
		{name: "scroll/several_indices", run: func(t *testing.T, c *client) {
			// One scroll over two indices, unsorted and in _doc order:
			// every document of both once.
			a := c.seedCounted(t, "scrmulta", 8)
			b := c.seedCounted(t, "scrmultb", 11)
			for _, body := range []obj{{"size": 3}, {"size": 4, "sort": arr{"_doc"}}, {"size": 5, "query": obj{"term": obj{"grp": "g1"}}}} {
				want := 19
				if _, ok := body["query"]; ok {
					want = 3 + 4 // ids 1,4,7 of a; 1,4,7,10 of b
				}
				r := c.do(t, http.MethodPost, "/"+a+","+b+"/_search?scroll=1m", body).wantStatus(http.StatusOK).eq("hits.total.value", want)
				id := r.str("_scroll_id")
				seen := map[string]bool{}
				add := func(r *response) {
					for i := range r.list("hits.hits") {
						key := r.str(fmt.Sprintf("hits.hits.%d._index", i)) + "/" + r.str(fmt.Sprintf("hits.hits.%d._id", i))
						if seen[key] {
							t.Fatalf("%v: %s returned twice", body, key)
						}
						seen[key] = true
					}
				}
				add(r)
				for page := 0; page < 100 && len(r.list("hits.hits")) > 0; page++ {
					r = c.do(t, http.MethodPost, "/_search/scroll", obj{"scroll": "1m", "scroll_id": id}).wantStatus(http.StatusOK)
					r.eq("hits.total.value", want)
					add(r)
				}
				if len(seen) != want {
					t.Fatalf("%v: scroll returned %d documents, want %d", body, len(seen), want)
				}
				c.do(t, http.MethodDelete, "/_search/scroll", obj{"scroll_id": id}).wantStatus(http.StatusOK)
			}
		}},
		{name: "scroll/rest_total_hits_as_int", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "scrint", 4)
			r := c.do(t, http.MethodPost, "/"+n+"/_search?scroll=1m&rest_total_hits_as_int=true", obj{"size": 2}).
				wantStatus(http.StatusOK).eq("hits.total", 4)
			id := r.str("_scroll_id")
			c.do(t, http.MethodPost, "/_search/scroll?rest_total_hits_as_int=true", obj{"scroll": "1m", "scroll_id": id}).
				wantStatus(http.StatusOK).eq("hits.total", 4).length("hits.hits", 2)
			c.do(t, http.MethodDelete, "/_search/scroll", obj{"scroll_id": id}).wantStatus(http.StatusOK)
		}},
		{name: "scroll/validation", run: func(t *testing.T, c *client) {
			// SearchRequest.validate in a scroll context.
			n := c.seedCounted(t, "scrval", 2)
			c.do(t, http.MethodPost, "/"+n+"/_search?scroll=1m", obj{"from": 1}).
				wantError(http.StatusBadRequest, "action_request_validation_exception", "action_request_validation_exception").
				eq("error.reason", "Validation Failed: 1: using [from] is not allowed in a scroll context;")
			c.do(t, http.MethodPost, "/"+n+"/_search?scroll=1m", obj{"size": 0}).
				wantError(http.StatusBadRequest, "action_request_validation_exception", "action_request_validation_exception").
				eq("error.reason", "Validation Failed: 1: [size] cannot be [0] in a scroll context;")
			c.do(t, http.MethodPost, "/"+n+"/_search?scroll=1m", obj{"track_total_hits": false}).
				wantError(http.StatusBadRequest, "action_request_validation_exception", "action_request_validation_exception").
				eq("error.reason", "Validation Failed: 1: disabling [track_total_hits] is not allowed in a scroll context;")
		}},
		{name: "scroll/batch_size_bounded_by_max_result_window", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "scrwin", obj{"settings": obj{"index": obj{"max_result_window": 5}}})
			c.do(t, http.MethodPost, "/"+n+"/_search?scroll=1m", obj{"size": 6}).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "illegal_argument_exception").
				contains("error.root_cause.0.reason", "Batch size is too large, size must be less than or equal to: [5] but was [6]")
			c.do(t, http.MethodPost, "/"+n+"/_search?scroll=1m", obj{"size": 5}).wantStatus(http.StatusOK)
		}},
		{name: "scroll/bad_keep_alive", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "scrka", 1)
			c.do(t, http.MethodPost, "/"+n+"/_search?scroll=soon", nil).
				wantError(http.StatusBadRequest, "parse_exception", "parse_exception").
				eq("error.reason", "failed to parse setting [scroll] with value [soon] as a time value: unit is missing or unrecognized")
		}},
		{name: "scroll/bad_scroll_id", run: func(t *testing.T, c *client) {
			c.do(t, http.MethodPost, "/_search/scroll", obj{"scroll": "1m", "scroll_id": "not-a-scroll-id"}).
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception").
				eq("error.reason", "Cannot parse scroll id")
			c.do(t, http.MethodDelete, "/_search/scroll", obj{"scroll_id": "not-a-scroll-id"}).
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception").
				eq("error.reason", "Cannot parse scroll id")
		}},
		{name: "scroll/missing_scroll_id", run: func(t *testing.T, c *client) {
			c.do(t, http.MethodPost, "/_search/scroll", obj{"scroll": "1m"}).
				wantError(http.StatusBadRequest, "action_request_validation_exception", "action_request_validation_exception").
				eq("error.reason", "Validation Failed: 1: scrollId is missing;")
		}},
		{name: "scroll/deleted_index_frees_the_scroll", run: func(t *testing.T, c *client) {
			n := c.seedCounted(t, "scrdel", 6)
			r := c.do(t, http.MethodPost, "/"+n+"/_search?scroll=1m", obj{"size": 2}).wantStatus(http.StatusOK)
			id := r.str("_scroll_id")
			c.do(t, http.MethodDelete, "/"+n, nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodPost, "/_search/scroll", obj{"scroll": "1m", "scroll_id": id}).
				wantError(http.StatusNotFound, "search_phase_execution_exception", "search_context_missing_exception")
		}},
	}
}
