package conformance

import (
	"net/http"
	"testing"
)

// responseShapeScenarios cover what a search returns besides the hit ids:
// _source filtering, track_total_hits and highlighting.
func responseShapeScenarios() []scenario {
	return []scenario{
		{name: "source/disabled", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "srcoff")
			r := c.search(t, n, obj{"query": obj{"ids": obj{"values": arr{"1"}}}, "_source": false}).wantStatus(http.StatusOK)
			r.eq("hits.hits.0._id", "1").absent("hits.hits.0._source")
		}},
		{name: "source/list_and_string", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "srclist")
			c.search(t, n, obj{"query": obj{"ids": obj{"values": arr{"1"}}}, "_source": arr{"title", "price"}}).wantStatus(http.StatusOK).
				eq("hits.hits.0._source", obj{"title": "Quick brown fox", "price": 10})
			c.search(t, n, obj{"query": obj{"ids": obj{"values": arr{"1"}}}, "_source": "category"}).wantStatus(http.StatusOK).
				eq("hits.hits.0._source", obj{"category": "animals"})
			// A field the document lacks leaves an empty object.
			c.search(t, n, obj{"query": obj{"ids": obj{"values": arr{"6"}}}, "_source": arr{"price"}}).wantStatus(http.StatusOK).
				eq("hits.hits.0._source", obj{})
		}},
		{name: "source/includes_excludes_wildcards", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "srcwild", nil)
			doc := obj{
				"name": "x",
				"meta": obj{"public": 1, "secret_a": 2, "secret_b": 3, "inner": obj{"deep": 4}},
				"misc": obj{"keep": true},
			}
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=true", doc).wantStatus(http.StatusCreated)
			src := func(filter any) *response {
				return c.search(t, n, obj{"_source": filter}).wantStatus(http.StatusOK)
			}
			src(obj{"includes": arr{"meta.*"}, "excludes": arr{"meta.secret*"}}).
				eq("hits.hits.0._source", obj{"meta": obj{"public": 1, "inner": obj{"deep": 4}}})
			src(obj{"excludes": arr{"meta"}}).
				eq("hits.hits.0._source", obj{"name": "x", "misc": obj{"keep": true}})
			src(obj{"includes": arr{"na*", "misc"}}).
				eq("hits.hits.0._source", obj{"name": "x", "misc": obj{"keep": true}})
			src(arr{"*.deep"}).
				eq("hits.hits.0._source", obj{"meta": obj{"inner": obj{"deep": 4}}})
			src(true).eq("hits.hits.0._source", doc)
		}},
		{name: "total_hits/track_total_hits", run: func(t *testing.T, c *client) {
			// rest-api-spec search/220_total_hits_object.yml: false drops
			// hits.total; an integer N below the count reports N with
			// relation "gte"; at or above the count it is exact.
			n := c.seedProducts(t, "tth")
			search := func(tth any) *response {
				return c.search(t, n, obj{"track_total_hits": tth, "query": obj{"exists": obj{"field": "price"}}}).wantStatus(http.StatusOK)
			}
			search(false).absent("hits.total").length("hits.hits", 5)
			search(true).eq("hits.total", obj{"value": 5, "relation": "eq"})
			search(3).eq("hits.total", obj{"value": 3, "relation": "gte"}).length("hits.hits", 5)
			search(5).eq("hits.total", obj{"value": 5, "relation": "eq"})
			search(100).eq("hits.total", obj{"value": 5, "relation": "eq"})
			c.search(t, n, obj{"size": 0, "track_total_hits": 4, "query": obj{"exists": obj{"field": "price"}}}).wantStatus(http.StatusOK).
				eq("hits.total", obj{"value": 4, "relation": "gte"})
			r := c.do(t, http.MethodPost, "/"+n+"/_search?track_total_hits=false", nil).wantStatus(http.StatusOK)
			r.absent("hits.total")
		}},
		{name: "total_hits/default_counts_up_to_10000", run: func(t *testing.T, c *client) {
			// By default totals are exact up to 10,000.
			n := c.seedProducts(t, "tthdef")
			c.search(t, n, nil).wantStatus(http.StatusOK).eq("hits.total", obj{"value": 6, "relation": "eq"})
		}},
		{name: "highlight/default_tags", run: func(t *testing.T, c *client) {
			// Highlighting wraps matched terms in <em></em> by default; a
			// short field comes back whole as one fragment.
			n := c.seedProducts(t, "hl")
			r := c.search(t, n, obj{"query": obj{"match": obj{"title": "fox"}}, "highlight": obj{"fields": obj{"title": obj{}}}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "1", "5")
			r.eq("hits.hits.0.highlight.title", arr{"Quick brown <em>fox</em>"})
			r.eq("hits.hits.1.highlight.title", arr{"The <em>fox</em> and the hound"})
		}},
		{name: "highlight/custom_tags_and_terms", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "hltags")
			r := c.search(t, n, obj{
				"query":     obj{"match": obj{"title": obj{"query": "quick fox", "operator": "and"}}},
				"highlight": obj{"pre_tags": arr{"<b>"}, "post_tags": arr{"</b>"}, "fields": obj{"title": obj{}}},
			}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "1")
			r.eq("hits.hits.0.highlight.title", arr{"<b>Quick</b> brown <b>fox</b>"})
		}},
		{name: "highlight/only_matching_fields", run: func(t *testing.T, c *client) {
			// Fields without a match get no highlight entry.
			n := c.seedProducts(t, "hlonly")
			r := c.search(t, n, obj{
				"query":     obj{"match": obj{"body": "fox"}},
				"highlight": obj{"fields": obj{"title": obj{}, "body": obj{}}},
			}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "1")
			r.eq("hits.hits.0.highlight.body", arr{"a <em>fox</em> that jumps"}).absent("hits.hits.0.highlight.title")
		}},
	}
}
