package conformance

import (
	"net/http"
	"testing"
)

// searchQueryScenarios cover the query DSL over the products fixture, and
// the errors of malformed queries and missing indices.
func searchQueryScenarios() []scenario {
	return []scenario{
		{name: "query/match_all", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "qall")
			r := c.search(t, n, q(obj{"match_all": obj{}})).wantStatus(http.StatusOK)
			r.eq("hits.total", obj{"value": 6, "relation": "eq"}).eq("timed_out", false).present("took").eq("_shards.failed", 0)
			r.eq("hits.max_score", 1.0).eq("hits.hits.0._score", 1.0).eq("hits.hits.0._index", n)
			wantIDSet(t, r.ids(), "1", "2", "3", "4", "5", "6")
			// No body at all is a match_all too.
			c.do(t, http.MethodGet, "/"+n+"/_search", nil).wantStatus(http.StatusOK).eq("hits.total.value", 6)
		}},
		{name: "query/match_operator", run: func(t *testing.T, c *client) {
			// match defaults to operator "or"; "and" needs every term. The
			// document holding both terms in the shortest title ranks first.
			n := c.seedProducts(t, "qmatch")
			or := c.searchIDs(t, n, q(obj{"match": obj{"title": "quick fox"}}))
			wantIDSet(t, or, "1", "3", "5")
			if len(or) > 0 && or[0] != "1" {
				t.Errorf("top hit = %s, want 1 (both terms)", or[0])
			}
			wantIDs(t, c.searchIDs(t, n, q(obj{"match": obj{"title": obj{"query": "quick fox", "operator": "and"}}})), "1")
			// Analysis lowercases the query like the field.
			wantIDSet(t, c.searchIDs(t, n, q(obj{"match": obj{"title": "QUICK"}})), "1", "3")
			wantIDs(t, c.searchIDs(t, n, q(obj{"match": obj{"title": "zebra"}})))
			wantIDs(t, c.searchIDs(t, n, q(obj{"match": obj{"no_such_field": "quick"}})))
		}},
		{name: "query/match_on_keyword_and_numbers", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "qmatchk")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"match": obj{"category": "books"}})), "5", "6")
			wantIDs(t, c.searchIDs(t, n, q(obj{"match": obj{"price": 20}})), "2")
			wantIDs(t, c.searchIDs(t, n, q(obj{"match": obj{"title.keyword": "Slow blue truck"}})), "4")
		}},
		{name: "query/multi_match_boost", run: func(t *testing.T, c *client) {
			// multi_match "fields": ["title^3", "body"]: the boosted field's
			// match ranks first; moving the boost reverses the order.
			n := c.createIndex(t, "qmm", obj{"mappings": obj{"properties": obj{
				"title": obj{"type": "text"}, "body": obj{"type": "text"},
			}}})
			c.bulkOK(t, n,
				obj{"index": obj{"_id": "t"}}, obj{"title": "alpha beta", "body": "gamma delta"},
				obj{"index": obj{"_id": "b"}}, obj{"title": "gamma delta", "body": "alpha beta"},
				obj{"index": obj{"_id": "x"}}, obj{"title": "epsilon", "body": "zeta"},
			)
			wantIDs(t, c.searchIDs(t, n, q(obj{"multi_match": obj{"query": "alpha", "fields": arr{"title^3", "body"}}})), "t", "b")
			wantIDs(t, c.searchIDs(t, n, q(obj{"multi_match": obj{"query": "alpha", "fields": arr{"title", "body^3"}}})), "b", "t")
			wantIDs(t, c.searchIDs(t, n, q(obj{"multi_match": obj{"query": "alpha zeta", "fields": arr{"body"}, "operator": "and"}})))
		}},
		{name: "query/term_and_terms", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "qterm")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"term": obj{"category": "animals"}})), "1", "2")
			// Keyword terms are exact and case-sensitive.
			wantIDs(t, c.searchIDs(t, n, q(obj{"term": obj{"category": "Animals"}})))
			wantIDSet(t, c.searchIDs(t, n, q(obj{"term": obj{"category": obj{"value": "vehicles"}}})), "3", "4")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"term": obj{"tags": "fast"}})), "1", "3")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"terms": obj{"category": arr{"animals", "books"}}})), "1", "2", "5", "6")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"terms": obj{"price": arr{10, 50, 99}}})), "1", "5")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"term": obj{"available": false}})), "2", "5")
		}},
		{name: "query/term_on_text_field_sees_tokens", run: func(t *testing.T, c *client) {
			// term is not analyzed: on a text field it matches the indexed
			// tokens (lowercased by the standard analyzer), not the original.
			n := c.seedProducts(t, "qtermtext")
			wantIDs(t, c.searchIDs(t, n, q(obj{"term": obj{"title": "Quick"}})))
			wantIDSet(t, c.searchIDs(t, n, q(obj{"term": obj{"title": "quick"}})), "1", "3")
			wantIDs(t, c.searchIDs(t, n, q(obj{"term": obj{"title": "quick brown fox"}})))
			wantIDs(t, c.searchIDs(t, n, q(obj{"term": obj{"title.keyword": "Quick brown fox"}})), "1")
		}},
		{name: "query/range_numbers", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "qrange")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"price": obj{"gte": 20, "lt": 40}}})), "2", "3")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"price": obj{"gt": 20, "lte": 40}}})), "3", "4")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"rating": obj{"gte": 4.5}}})), "1", "5")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"stock": obj{"lte": 1}}})), "2", "4")
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"price": obj{"gt": 50}}})))
		}},
		{name: "query/bool", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "qbool")
			wantIDs(t, c.searchIDs(t, n, q(obj{"bool": obj{
				"must":     arr{obj{"match": obj{"title": "quick"}}},
				"filter":   arr{obj{"term": obj{"available": true}}},
				"must_not": arr{obj{"term": obj{"category": "vehicles"}}},
			}})), "1")
			// A single clause may be given as an object instead of an array.
			wantIDSet(t, c.searchIDs(t, n, q(obj{"bool": obj{
				"filter":   obj{"range": obj{"price": obj{"gte": 20}}},
				"must_not": obj{"term": obj{"category": "books"}},
			}})), "2", "3", "4")
			// should alone: at least one must match.
			wantIDSet(t, c.searchIDs(t, n, q(obj{"bool": obj{"should": arr{
				obj{"term": obj{"category": "books"}}, obj{"term": obj{"tags": "pet"}},
			}}})), "2", "5", "6")
			// With must present, should only scores: it does not filter.
			wantIDSet(t, c.searchIDs(t, n, q(obj{"bool": obj{
				"must":   arr{obj{"term": obj{"category": "animals"}}},
				"should": arr{obj{"term": obj{"tags": "nothing-like-this"}}},
			}})), "1", "2")
			// must_not alone matches every other document.
			wantIDSet(t, c.searchIDs(t, n, q(obj{"bool": obj{"must_not": arr{obj{"exists": obj{"field": "price"}}}}})), "6")
		}},
		{name: "query/bool_minimum_should_match", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "qmsm")
			should := arr{
				obj{"term": obj{"tags": "fast"}},
				obj{"term": obj{"category": "animals"}},
				obj{"range": obj{"price": obj{"lte": 20}}},
			}
			wantIDSet(t, c.searchIDs(t, n, q(obj{"bool": obj{"should": should, "minimum_should_match": 2}})), "1", "2")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"bool": obj{"should": should, "minimum_should_match": 3}})), "1")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"bool": obj{"should": should, "minimum_should_match": "1"}})), "1", "2", "3")
			// With a filter present, should clauses become optional unless
			// minimum_should_match says otherwise.
			wantIDSet(t, c.searchIDs(t, n, q(obj{"bool": obj{
				"filter": arr{obj{"term": obj{"available": true}}},
				"should": should, "minimum_should_match": 1,
			}})), "1", "3")
		}},
		{name: "query/bool_filter_scores_zero", run: func(t *testing.T, c *client) {
			// Query and filter context: a bool with only filter clauses
			// scores every hit 0.
			n := c.seedProducts(t, "qfilter")
			r := c.search(t, n, q(obj{"bool": obj{"filter": arr{obj{"term": obj{"category": "books"}}}}})).wantStatus(http.StatusOK)
			r.eq("hits.total.value", 2).eq("hits.hits.0._score", 0.0).eq("hits.hits.1._score", 0.0)
		}},
		{name: "query/exists", run: func(t *testing.T, c *client) {
			// exists skips missing fields, null and empty arrays.
			n := c.seedProducts(t, "qexists")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"exists": obj{"field": "price"}})), "1", "2", "3", "4", "5")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"exists": obj{"field": "tags"}})), "1", "2", "3", "5")
			c.do(t, http.MethodPut, "/"+n+"/_doc/7?refresh=true", obj{"title": "nulls", "price": nil, "tags": arr{}}).wantStatus(http.StatusCreated)
			wantIDSet(t, c.searchIDs(t, n, q(obj{"exists": obj{"field": "price"}})), "1", "2", "3", "4", "5")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"exists": obj{"field": "tags"}})), "1", "2", "3", "5")
			wantIDs(t, c.searchIDs(t, n, q(obj{"exists": obj{"field": "no_such_field"}})))
		}},
		{name: "query/prefix", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "qprefix")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"prefix": obj{"category": "veh"}})), "3", "4")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"prefix": obj{"category": obj{"value": "b"}}})), "5", "6")
			// On a text field the prefix applies to indexed tokens.
			wantIDSet(t, c.searchIDs(t, n, q(obj{"prefix": obj{"title": "qui"}})), "1", "3")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"prefix": obj{"title.keyword": "Quick"}})), "1", "3")
			wantIDs(t, c.searchIDs(t, n, q(obj{"prefix": obj{"title.keyword": "quick"}})))
		}},
		{name: "query/ids", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "qids")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"ids": obj{"values": arr{"1", "4", "nope"}}})), "1", "4")
			wantIDs(t, c.searchIDs(t, n, q(obj{"ids": obj{"values": arr{}}})))
		}},
		{name: "query/simple_query_string", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "qsqs")
			sqs := func(query string, extra obj) []string {
				body := obj{"query": query, "fields": arr{"title"}}
				for k, v := range extra {
					body[k] = v
				}
				return c.searchIDs(t, n, q(obj{"simple_query_string": body}))
			}
			// Simple query string syntax: "+ signifies AND operation",
			// "| signifies OR operation", "- negates a single token";
			// default_operator applies only where no operator is given.
			wantIDSet(t, sqs("quick | slow", nil), "1", "3", "4")
			wantIDSet(t, sqs("quick + fox", nil), "1")
			wantIDSet(t, sqs("fox -hound", obj{"default_operator": "and"}), "1")
			wantIDSet(t, sqs(`"brown fox"`, nil), "1")
			wantIDSet(t, sqs("qui*", nil), "1", "3")
			wantIDSet(t, sqs("brown dog", obj{"default_operator": "and"}), "2")
			// Invalid syntax never fails the request.
			c.search(t, n, q(obj{"simple_query_string": obj{"query": `"unbalanced (`, "fields": arr{"title"}}})).wantStatus(http.StatusOK)
		}},
		{name: "query/count", run: func(t *testing.T, c *client) {
			// _count answers {"count":N,"_shards":{…}}.
			n := c.seedProducts(t, "qcount")
			c.do(t, http.MethodGet, "/"+n+"/_count", nil).wantStatus(http.StatusOK).eq("count", 6).eq("_shards.failed", 0)
			if got := c.count(t, n, q(obj{"term": obj{"category": "books"}})); got != 2 {
				t.Errorf("count = %d, want 2", got)
			}
			c.do(t, http.MethodPost, "/"+c.name(t, "qcountmiss")+"/_count", nil).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception")
		}},
		{name: "query/search_all_indices", run: func(t *testing.T, c *client) {
			// POST /_search searches every index; _index tells them apart. A
			// marker unique to this index keeps other indices out of the hits.
			n := c.createIndex(t, "qglobal", obj{"mappings": obj{"properties": obj{"marker": obj{"type": "keyword"}}}})
			c.bulkOK(t, n,
				obj{"index": obj{"_id": "a"}}, obj{"marker": n},
				obj{"index": obj{"_id": "b"}}, obj{"marker": n},
				obj{"index": obj{"_id": "c"}}, obj{"marker": "other"},
			)
			r := c.do(t, http.MethodPost, "/_search", q(obj{"term": obj{"marker": n}})).wantStatus(http.StatusOK)
			wantIDSet(t, r.ids(), "a", "b")
			r.eq("hits.hits.0._index", n).eq("hits.hits.1._index", n)
		}},
		{name: "query/index_patterns_and_lists", run: func(t *testing.T, c *client) {
			a := c.seedProducts(t, "qpat")
			b := c.createIndex(t, "qpat2", nil)
			c.do(t, http.MethodPut, "/"+b+"/_doc/x?refresh=true", obj{"category": "books"}).wantStatus(http.StatusCreated)
			wantIDSet(t, c.searchIDs(t, a+","+b, q(obj{"term": obj{"category": "books"}})), "5", "6", "x")
			// A wildcard matching nothing is an empty result, not an error
			// (allow_no_indices defaults to true).
			c.search(t, c.aliasName(t, "nomatch")+"-*", nil).wantStatus(http.StatusOK).eq("hits.total.value", 0)
		}},
		{name: "query/unknown_query_type", run: func(t *testing.T, c *client) {
			// "unknown query [no_such_query]", 400 parsing_exception.
			n := c.seedProducts(t, "qunk")
			c.search(t, n, q(obj{"no_such_query": obj{"f": "v"}})).
				wantError(http.StatusBadRequest, "parsing_exception", "parsing_exception").
				eq("error.reason", "unknown query [no_such_query]")
		}},
		{name: "query/malformed_query", run: func(t *testing.T, c *client) {
			// Two queries in one object: "[match_all] malformed query,
			// expected [END_OBJECT] but found [FIELD_NAME]", parsing_exception.
			n := c.seedProducts(t, "qmal")
			c.search(t, n, `{"query":{"match_all":{},"term":{"category":"books"}}}`).
				wantError(http.StatusBadRequest, "parsing_exception", "parsing_exception")
			// A top-level key that does not exist in the search body.
			c.search(t, n, obj{"no_such_key": 1}).
				wantError(http.StatusBadRequest, "parsing_exception", "parsing_exception")
		}},
		{name: "query/search_missing_index", run: func(t *testing.T, c *client) {
			n := c.name(t, "qmiss")
			c.search(t, n, q(obj{"match_all": obj{}})).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception").
				eq("error.reason", "no such index ["+n+"]").eq("error.index", n)
		}},
		{name: "query/arrays_match_any_element", run: func(t *testing.T, c *client) {
			// A multi-valued field matches when any of its values does.
			n := c.createIndex(t, "qarr", obj{"mappings": obj{"properties": obj{"n": obj{"type": "long"}, "k": obj{"type": "keyword"}}}})
			c.bulkOK(t, n,
				obj{"index": obj{"_id": "a"}}, obj{"n": arr{1, 50}, "k": arr{"x", "y"}},
				obj{"index": obj{"_id": "b"}}, obj{"n": arr{10, 20}, "k": arr{"z"}},
			)
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"n": obj{"gte": 40}}})), "a")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"n": obj{"gte": 5, "lte": 25}}})), "b")
			wantIDs(t, c.searchIDs(t, n, q(obj{"term": obj{"k": "y"}})), "a")
			// Ascending sort uses the smallest value of each document (mode min).
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{obj{"n": "asc"}}}), "a", "b")
			// Descending uses the largest (mode max).
			wantIDs(t, c.searchIDs(t, n, obj{"sort": arr{obj{"n": "desc"}}}), "a", "b")
		}},
	}
}
