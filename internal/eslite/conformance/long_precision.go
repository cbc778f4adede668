package conformance

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// longPrecisionScenarios cover long values a double cannot tell apart
// (past 2^53, at the ends of the long range): Elasticsearch keeps longs
// exact in queries, sort, search_after, terms aggregation keys and doc
// values (NumberFieldMapper's LONG type parses them without a double).
func longPrecisionScenarios() []scenario {
	return []scenario{
		{name: "long/exact_queries", run: func(t *testing.T, c *client) {
			n := c.seedLongs(t, "lq")
			for _, tc := range []struct {
				query string
				want  []string
			}{
				{`{"term":{"v":9007199254740995}}`, []string{"p3"}},
				{`{"term":{"v":9007199254740996}}`, []string{"p4"}},
				{`{"term":{"v":"9223372036854775806"}}`, []string{"max1"}},
				{`{"match":{"v":-9223372036854775807}}`, []string{"min1"}},
				{`{"terms":{"v":[9007199254740995,"9223372036854775807"]}}`, []string{"p3", "max"}},
				{`{"range":{"v":{"gt":9007199254740995,"lte":9007199254740997}}}`, []string{"p4", "s"}},
				{`{"range":{"v":{"gte":9223372036854775806}}}`, []string{"max1", "max"}},
				{`{"range":{"v":{"gt":9223372036854775806}}}`, []string{"max"}},
				{`{"range":{"v":{"gt":9223372036854775807}}}`, nil},
				{`{"range":{"v":{"lt":-9223372036854775807}}}`, []string{"min"}},
				// Since 8.16 a term beyond the field's type matches nothing
				// (elastic/elasticsearch#112916).
				{`{"term":{"v":9223372036854775808}}`, nil},
			} {
				body := `{"size":20,"query":` + tc.query + `,"sort":[{"v":"asc"}]}`
				got := c.search(t, n, body).wantStatus(http.StatusOK).ids()
				if strings.Join(got, " ") != strings.Join(tc.want, " ") {
					t.Errorf("%s: got %v, want %v", tc.query, got, tc.want)
				}
			}
			// A range bound beyond long fails query creation:
			// "Value [...] is out of range for a long".
			c.search(t, n, `{"query":{"range":{"v":{"gte":9223372036854775808}}}}`).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "query_shard_exception").
				contains("error.root_cause.0.reason", "is out of range for a long")
		}},
		{name: "long/exact_sort_aggs_doc_values", run: func(t *testing.T, c *client) {
			n := c.seedLongs(t, "ls")
			asc := []string{"min", "min1", "p1", "p3", "p4", "s", "max1", "max"}
			values := []string{"-9223372036854775808", "-9223372036854775807", "9007199254740993", "9007199254740995",
				"9007199254740996", "9007199254740997", "9223372036854775806", "9223372036854775807"}
			r := c.search(t, n, `{"size":20,"query":{"exists":{"field":"v"}},"sort":[{"v":"asc"}]}`).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), asc...)
			for i, v := range values {
				if got := exactAt(t, r, "hits.hits."+strconv.Itoa(i)+".sort"); got != "["+v+"]" {
					t.Errorf("hit %d sort = %s, want [%s]", i, got, v)
				}
			}
			desc := make([]string, len(asc))
			for i, id := range asc {
				desc[len(asc)-1-i] = id
			}
			wantIDs(t, c.searchIDs(t, n, `{"size":20,"query":{"exists":{"field":"v"}},"sort":[{"v":"desc"}]}`), desc...)
			wantIDs(t, c.searchIDs(t, n, `{"size":20,"query":{"exists":{"field":"v"}},"sort":[{"v":"asc"}],"search_after":[9007199254740995]}`),
				"p4", "s", "max1", "max")
			wantIDs(t, c.searchIDs(t, n, `{"size":20,"query":{"exists":{"field":"v"}},"sort":[{"v":"desc"}],"search_after":[9007199254740996]}`),
				"p3", "p1", "min1", "min")
			// Every value is its own terms bucket with its exact key; ties
			// in doc_count are ordered by key ascending.
			r = c.search(t, n, `{"size":0,"aggs":{"k":{"terms":{"field":"v","size":20}}}}`).wantStatus(http.StatusOK)
			r.length("aggregations.k.buckets", len(values))
			for i, v := range values {
				if got := exactAt(t, r, "aggregations.k.buckets."+strconv.Itoa(i)+".key"); got != v {
					t.Errorf("bucket %d key = %s, want %s", i, got, v)
				}
			}
			r = c.search(t, n, `{"query":{"ids":{"values":["p3"]}},"docvalue_fields":["v"]}`).wantStatus(http.StatusOK)
			if got := exactAt(t, r, "hits.hits.0.fields.v"); got != "[9007199254740995]" {
				t.Errorf("docvalue_fields v = %s, want [9007199254740995]", got)
			}
		}},
	}
}

// seedLongs creates an index with a long field v holding values a double
// cannot tell apart, one a document ("s" given as a string).
func (c *client) seedLongs(t testing.TB, short string) string {
	t.Helper()
	n := c.createIndex(t, short, obj{"settings": obj{"number_of_shards": 1}, "mappings": obj{"properties": obj{"v": obj{"type": "long"}}}})
	c.bulkOK(t, n,
		`{"index":{"_id":"min"}}`, `{"v":-9223372036854775808}`,
		`{"index":{"_id":"min1"}}`, `{"v":-9223372036854775807}`,
		`{"index":{"_id":"p1"}}`, `{"v":9007199254740993}`,
		`{"index":{"_id":"p3"}}`, `{"v":9007199254740995}`,
		`{"index":{"_id":"p4"}}`, `{"v":9007199254740996}`,
		`{"index":{"_id":"s"}}`, `{"v":"9007199254740997"}`,
		`{"index":{"_id":"max1"}}`, `{"v":9223372036854775806}`,
		`{"index":{"_id":"max"}}`, `{"v":9223372036854775807}`,
		`{"index":{"_id":"none"}}`, `{}`,
	)
	return n
}

// exactAt is the JSON text of the value at path, decoded without turning
// numbers into doubles (the response's body has them as float64).
func exactAt(t testing.TB, r *response, path string) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.raw))
	dec.UseNumber()
	var body any
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
	v, ok := lookup(body, path)
	if !ok {
		t.Fatalf("%s missing in %s", path, r)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %s: %v", path, err)
	}
	return string(out)
}
