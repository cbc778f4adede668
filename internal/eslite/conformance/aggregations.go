package conformance

import (
	"net/http"
	"testing"
)

// aggregationScenarios cover terms, range, min/max/avg/sum, value_count and
// date_histogram aggregations with exact bucket counts.
func aggregationScenarios() []scenario {
	return []scenario{
		{name: "aggs/terms", run: func(t *testing.T, c *client) {
			// Buckets ordered by doc_count desc, then key asc; a single shard
			// gives doc_count_error_upper_bound 0.
			n := c.seedProducts(t, "aterms")
			r := c.search(t, n, obj{"size": 0, "aggs": obj{"t": obj{"terms": obj{"field": "tags"}}}}).wantStatus(http.StatusOK)
			r.eq("aggregations.t.buckets", arr{
				obj{"key": "fast", "doc_count": 2},
				obj{"key": "classic", "doc_count": 1},
				obj{"key": "pet", "doc_count": 1},
				obj{"key": "wild", "doc_count": 1},
			})
			r.eq("aggregations.t.sum_other_doc_count", 0).eq("aggregations.t.doc_count_error_upper_bound", 0)
			r.length("hits.hits", 0).eq("hits.total.value", 6)
		}},
		{name: "aggs/terms_size_and_other", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "atermsz")
			r := c.search(t, n, obj{"size": 0, "aggs": obj{"t": obj{"terms": obj{"field": "tags", "size": 2}}}}).wantStatus(http.StatusOK)
			r.eq("aggregations.t.buckets", arr{obj{"key": "fast", "doc_count": 2}, obj{"key": "classic", "doc_count": 1}})
			r.eq("aggregations.t.sum_other_doc_count", 2)
			// Ties on doc_count fall back to key order; the query scopes the agg.
			r = c.search(t, n, obj{"size": 0, "query": obj{"range": obj{"price": obj{"gte": 20}}},
				"aggs": obj{"c": obj{"terms": obj{"field": "category"}}}}).wantStatus(http.StatusOK)
			r.eq("aggregations.c.buckets", arr{
				obj{"key": "vehicles", "doc_count": 2},
				obj{"key": "animals", "doc_count": 1},
				obj{"key": "books", "doc_count": 1},
			})
		}},
		{name: "aggs/terms_on_numbers", run: func(t *testing.T, c *client) {
			// Numeric terms buckets carry numeric keys.
			n := c.seedProducts(t, "atermnum")
			r := c.search(t, n, obj{"size": 0, "query": obj{"terms": obj{"category": arr{"animals", "vehicles"}}},
				"aggs": obj{"a": obj{"terms": obj{"field": "available"}}, "s": obj{"terms": obj{"field": "stock", "order": obj{"_key": "asc"}}}}}).
				wantStatus(http.StatusOK)
			// Boolean keys are 1/0 with key_as_string "true"/"false".
			r.eq("aggregations.a.buckets", arr{
				obj{"key": 1, "key_as_string": "true", "doc_count": 3},
				obj{"key": 0, "key_as_string": "false", "doc_count": 1},
			})
			r.eq("aggregations.s.buckets", arr{
				obj{"key": 0, "doc_count": 1}, obj{"key": 1, "doc_count": 1}, obj{"key": 3, "doc_count": 1}, obj{"key": 7, "doc_count": 1},
			})
		}},
		{name: "aggs/terms_on_text_field_error", run: func(t *testing.T, c *client) {
			// Same fielddata restriction as sorting on text, raised on the
			// shards: 400 search_phase_execution_exception ("all shards
			// failed") with root cause illegal_argument_exception, as 8.x
			// clusters answer (e.g. 10up/ElasticPress#3582).
			n := c.seedProducts(t, "atermtext")
			c.search(t, n, obj{"size": 0, "aggs": obj{"t": obj{"terms": obj{"field": "title"}}}}).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "illegal_argument_exception").
				contains("error.root_cause.0.reason", "Text fields are not optimised")
		}},
		{name: "aggs/range", run: func(t *testing.T, c *client) {
			// Range buckets include from and exclude to; keys are
			// "*-20.0", "20.0-40.0", "40.0-*".
			n := c.seedProducts(t, "arange")
			r := c.search(t, n, obj{"size": 0, "aggs": obj{"r": obj{"range": obj{"field": "price", "ranges": arr{
				obj{"to": 20}, obj{"from": 20, "to": 40}, obj{"from": 40},
			}}}}}).wantStatus(http.StatusOK)
			r.eq("aggregations.r.buckets", arr{
				obj{"key": "*-20.0", "to": 20.0, "doc_count": 1},
				obj{"key": "20.0-40.0", "from": 20.0, "to": 40.0, "doc_count": 2},
				obj{"key": "40.0-*", "from": 40.0, "doc_count": 2},
			})
			// Keyed ranges with custom keys.
			r = c.search(t, n, obj{"size": 0, "aggs": obj{"r": obj{"range": obj{"field": "price", "ranges": arr{
				obj{"key": "cheap", "to": 25}, obj{"key": "dear", "from": 25},
			}}}}}).wantStatus(http.StatusOK)
			r.eq("aggregations.r.buckets.0.key", "cheap").eq("aggregations.r.buckets.0.doc_count", 2)
			r.eq("aggregations.r.buckets.1.key", "dear").eq("aggregations.r.buckets.1.doc_count", 3)
		}},
		{name: "aggs/metrics", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "ametrics")
			r := c.search(t, n, obj{"size": 0, "aggs": obj{
				"min":   obj{"min": obj{"field": "price"}},
				"max":   obj{"max": obj{"field": "price"}},
				"avg":   obj{"avg": obj{"field": "price"}},
				"sum":   obj{"sum": obj{"field": "price"}},
				"count": obj{"value_count": obj{"field": "price"}},
				"tags":  obj{"value_count": obj{"field": "tags"}},
				"avgr":  obj{"avg": obj{"field": "rating"}},
			}}).wantStatus(http.StatusOK)
			r.eq("aggregations.min.value", 10).eq("aggregations.max.value", 50)
			r.eq("aggregations.avg.value", 30).eq("aggregations.sum.value", 150)
			r.eq("aggregations.count.value", 5)
			// value_count counts values, not documents: five tags on four docs.
			r.eq("aggregations.tags.value", 5)
			r.eq("aggregations.avgr.value", 3.8)
		}},
		{name: "aggs/metrics_on_no_documents", run: func(t *testing.T, c *client) {
			// With nothing to aggregate min/max/avg are null, sum and
			// value_count are 0.
			n := c.seedProducts(t, "aempty")
			r := c.search(t, n, obj{"size": 0, "query": obj{"term": obj{"category": "nothing"}}, "aggs": obj{
				"min":   obj{"min": obj{"field": "price"}},
				"max":   obj{"max": obj{"field": "price"}},
				"avg":   obj{"avg": obj{"field": "price"}},
				"sum":   obj{"sum": obj{"field": "price"}},
				"count": obj{"value_count": obj{"field": "price"}},
				"t":     obj{"terms": obj{"field": "category"}},
			}}).wantStatus(http.StatusOK)
			r.eq("aggregations.min.value", nil).eq("aggregations.max.value", nil).eq("aggregations.avg.value", nil)
			r.eq("aggregations.sum.value", 0).eq("aggregations.count.value", 0)
			r.eq("aggregations.t.buckets", arr{})
		}},
		{name: "aggs/date_histogram_month", run: func(t *testing.T, c *client) {
			// calendar_interval month: keys are epoch millis of the bucket
			// start, key_as_string in the field's format.
			n := c.seedProducts(t, "adh")
			r := c.search(t, n, obj{"size": 0, "aggs": obj{"h": obj{"date_histogram": obj{"field": "created", "calendar_interval": "month"}}}}).
				wantStatus(http.StatusOK)
			r.eq("aggregations.h.buckets", arr{
				obj{"key_as_string": "2024-01-01T00:00:00.000Z", "key": epochMillis(t, "2024-01-01T00:00:00Z"), "doc_count": 2},
				obj{"key_as_string": "2024-02-01T00:00:00.000Z", "key": epochMillis(t, "2024-02-01T00:00:00Z"), "doc_count": 1},
				obj{"key_as_string": "2024-03-01T00:00:00.000Z", "key": epochMillis(t, "2024-03-01T00:00:00Z"), "doc_count": 2},
			})
		}},
		{name: "aggs/date_histogram_empty_buckets_and_format", run: func(t *testing.T, c *client) {
			// Empty buckets between the first and last are returned
			// (min_doc_count 0 is the default); "format" shapes key_as_string.
			n := c.seedProducts(t, "adhfmt")
			r := c.search(t, n, obj{"size": 0, "query": obj{"terms": obj{"category": arr{"animals", "books"}}},
				"aggs": obj{"h": obj{"date_histogram": obj{"field": "created", "calendar_interval": "1M", "format": "yyyy-MM"}}}}).
				wantStatus(http.StatusOK)
			r.eq("aggregations.h.buckets", arr{
				obj{"key_as_string": "2024-01", "key": epochMillis(t, "2024-01-01T00:00:00Z"), "doc_count": 2},
				obj{"key_as_string": "2024-02", "key": epochMillis(t, "2024-02-01T00:00:00Z"), "doc_count": 0},
				obj{"key_as_string": "2024-03", "key": epochMillis(t, "2024-03-01T00:00:00Z"), "doc_count": 1},
			})
			r = c.search(t, n, obj{"size": 0, "query": obj{"terms": obj{"category": arr{"animals", "books"}}},
				"aggs": obj{"h": obj{"date_histogram": obj{"field": "created", "calendar_interval": "month", "min_doc_count": 1}}}}).
				wantStatus(http.StatusOK)
			r.length("aggregations.h.buckets", 2)
		}},
		{name: "aggs/date_histogram_fixed_interval", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "adhfixed", obj{"mappings": obj{"properties": obj{"at": obj{"type": "date"}}}})
			c.bulkOK(t, n,
				obj{"index": obj{"_id": "1"}}, obj{"at": "2024-05-01T01:00:00Z"},
				obj{"index": obj{"_id": "2"}}, obj{"at": "2024-05-01T23:59:59Z"},
				obj{"index": obj{"_id": "3"}}, obj{"at": "2024-05-03T00:00:00Z"},
			)
			r := c.search(t, n, obj{"size": 0, "aggs": obj{"d": obj{"date_histogram": obj{"field": "at", "fixed_interval": "1d"}}}}).
				wantStatus(http.StatusOK)
			r.eq("aggregations.d.buckets", arr{
				obj{"key_as_string": "2024-05-01T00:00:00.000Z", "key": epochMillis(t, "2024-05-01T00:00:00Z"), "doc_count": 2},
				obj{"key_as_string": "2024-05-02T00:00:00.000Z", "key": epochMillis(t, "2024-05-02T00:00:00Z"), "doc_count": 0},
				obj{"key_as_string": "2024-05-03T00:00:00.000Z", "key": epochMillis(t, "2024-05-03T00:00:00Z"), "doc_count": 1},
			})
		}},
		{name: "aggs/sub_aggregations", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "asub")
			r := c.search(t, n, obj{"size": 0, "aggs": obj{"c": obj{
				"terms": obj{"field": "category", "order": obj{"_key": "asc"}},
				"aggs":  obj{"p": obj{"sum": obj{"field": "price"}}},
			}}}).wantStatus(http.StatusOK)
			r.eq("aggregations.c.buckets.0.key", "animals").eq("aggregations.c.buckets.0.p.value", 30)
			r.eq("aggregations.c.buckets.1.key", "books").eq("aggregations.c.buckets.1.p.value", 50)
			r.eq("aggregations.c.buckets.2.key", "vehicles").eq("aggregations.c.buckets.2.p.value", 70)
		}},
		{name: "aggs/unknown_aggregation_type", run: func(t *testing.T, c *client) {
			// "Unknown aggregation type [no_such_agg] did you mean ...?"
			// Parsing the request fails with 400 before any shard runs.
			n := c.seedProducts(t, "aunk")
			r := c.search(t, n, obj{"size": 0, "aggs": obj{"x": obj{"no_such_agg": obj{"field": "price"}}}})
			r.wantStatus(http.StatusBadRequest).eq("status", http.StatusBadRequest)
		}},
	}
}
