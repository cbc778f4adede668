package conformance

import (
	"fmt"
	"net/http"
	"testing"
)

// sortScenarios cover sort on keyword, numeric and date fields, _score and
// _doc, order and missing, and the error for sorting on a text field.
func sortScenarios() []scenario {
	return []scenario{
		{name: "sort/numeric_asc_desc", run: func(t *testing.T, c *client) {
			// Documents without the field sort last in both directions
			// ("missing" defaults to _last).
			n := c.seedProducts(t, "snum")
			r := c.search(t, n, obj{"sort": arr{obj{"price": "asc"}}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "1", "2", "3", "4", "5", "6")
			r.eq("hits.hits.0.sort", arr{10}).eq("hits.hits.4.sort", arr{50})
			// Sorting on a field skips scoring: _score is null.
			r.eq("hits.hits.0._score", nil).eq("hits.max_score", nil)
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{obj{"price": obj{"order": "desc"}}}}), "5", "4", "3", "2", "1", "6")
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{obj{"rating": "desc"}}}), "5", "1", "3", "2", "4", "6")
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{"stock"}}), "2", "4", "1", "3", "5", "6")
		}},
		{name: "sort/missing_first_last", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "smiss")
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{obj{"price": obj{"order": "asc", "missing": "_first"}}}}), "6", "1", "2", "3", "4", "5")
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{obj{"price": obj{"order": "desc", "missing": "_first"}}}}), "6", "5", "4", "3", "2", "1")
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{obj{"price": obj{"order": "desc", "missing": "_last"}}}}), "5", "4", "3", "2", "1", "6")
			// Sort "missing": "_last", "_first" or a custom value "that will
			// be used for missing docs as the sort value" (sort search
			// results reference).
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{obj{"price": obj{"order": "asc", "missing": 25}}}}), "1", "2", "6", "3", "4", "5")
		}},
		{name: "sort/keyword_and_multi_level", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "skw")
			r := c.search(t, n, obj{"sort": arr{obj{"title.keyword": "asc"}}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "2", "1", "3", "4", "5", "6")
			r.eq("hits.hits.0.sort", arr{"Lazy brown dog"})
			r = c.search(t, n, obj{"sort": arr{obj{"category": "asc"}, obj{"price": "desc"}}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "2", "1", "5", "6", "4", "3")
			r.eq("hits.hits.0.sort", arr{"animals", 20})
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{obj{"category": "desc"}, obj{"price": "asc"}}}), "3", "4", "5", "6", "1", "2")
		}},
		{name: "sort/date", run: func(t *testing.T, c *client) {
			// Date sort values are epoch milliseconds.
			n := c.seedProducts(t, "sdate")
			r := c.search(t, n, obj{"sort": arr{obj{"created": "desc"}}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "5", "4", "3", "2", "1", "6")
			r.eq("hits.hits.0.sort", arr{epochMillis(t, "2024-03-15T18:45:00Z")})
			r.eq("hits.hits.4.sort", arr{epochMillis(t, "2024-01-05T10:00:00Z")})
		}},
		{name: "sort/score", run: func(t *testing.T, c *client) {
			// Default order is _score desc; the shorter title matching "fox"
			// scores higher under BM25. "_score" asc reverses it.
			n := c.seedProducts(t, "sscore")
			r := c.search(t, n, q(obj{"match": obj{"title": "fox"}})).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "1", "5")
			if a, b := r.num("hits.hits.0._score"), r.num("hits.hits.1._score"); !(a > b) {
				t.Errorf("scores not descending: %v then %v", a, b)
			}
			if m := r.num("hits.max_score"); m != r.num("hits.hits.0._score") {
				t.Errorf("max_score = %v, want the top hit's score", m)
			}
			wantIDs(t, c.searchIDs(t, n, obj{"query": obj{"match": obj{"title": "fox"}}, "sort": arr{obj{"_score": "asc"}}}), "5", "1")
			wantIDs(t, c.searchIDs(t, n, obj{"query": obj{"match": obj{"title": "fox"}}, "sort": arr{"_score"}}), "1", "5")
			// Sort by a field then _score: the sort values carry both.
			r = c.search(t, n, obj{"query": obj{"match": obj{"title": "fox"}}, "sort": arr{obj{"category": "asc"}, "_score"}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "1", "5")
			r.length("hits.hits.0.sort", 2)
		}},
		{name: "sort/doc_order", run: func(t *testing.T, c *client) {
			// _doc sorts in index order: every document exactly once, with
			// one non-decreasing sort value each.
			n := c.seedProducts(t, "sdoc")
			r := c.search(t, n, obj{"sort": arr{"_doc"}}).wantStatus(http.StatusOK)
			wantIDSet(t, r.ids(), "1", "2", "3", "4", "5", "6")
			prev := -1.0
			for i := range r.list("hits.hits") {
				v := r.num(fmt.Sprintf("hits.hits.%d.sort.0", i))
				if v < prev {
					t.Errorf("_doc sort values decrease at hit %d: %v < %v", i, v, prev)
				}
				prev = v
			}
		}},
		{name: "sort/text_field_error", run: func(t *testing.T, c *client) {
			// Sorting on a text field: 400 search_phase_execution_exception
			// with root cause illegal_argument_exception "Text fields are not
			// optimised for operations that require per-document field data
			// like aggregations and sorting, ...".
			n := c.seedProducts(t, "stext")
			c.search(t, n, obj{"sort": arr{obj{"title": "asc"}}}).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "illegal_argument_exception").
				contains("error.root_cause.0.reason", "Text fields are not optimised")
		}},
		{name: "sort/unmapped_field_error", run: func(t *testing.T, c *client) {
			// "No mapping found for [nope] in order to sort on", unless
			// unmapped_type is given.
			n := c.seedProducts(t, "sunmapped")
			c.search(t, n, obj{"sort": arr{obj{"nope": "asc"}}}).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "query_shard_exception").
				contains("error.root_cause.0.reason", "No mapping found for [nope] in order to sort on")
			r := c.search(t, n, obj{"sort": arr{obj{"nope": obj{"order": "asc", "unmapped_type": "long"}}}}).wantStatus(http.StatusOK)
			r.eq("hits.total.value", 6).length("hits.hits", 6)
		}},
	}
}
