package eslite

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// longDocs are values of a long field that a float64 cannot tell apart
// (2^53 + 1, + 3, + 4, + 5 and the ends of the long range), one a document;
// "s" is given as a string, "none" has no value.
var longDocs = []struct{ id, v string }{
	{"min", "-9223372036854775808"},
	{"min1", "-9223372036854775807"},
	{"p1", "9007199254740993"},
	{"p3", "9007199254740995"},
	{"p4", "9007199254740996"},
	{"s", `"9007199254740997"`},
	{"max1", "9223372036854775806"},
	{"max", "9223372036854775807"},
	{"none", ""},
}

// longIDsAsc is longDocs with a value, in ascending order of it.
var longIDsAsc = []string{"min", "min1", "p1", "p3", "p4", "s", "max1", "max"}

// seedLongs creates index "big" with a long field v and small integer
// fields, and indexes longDocs.
func seedLongs(t *testing.T, e *Engine) {
	t.Helper()
	do(t, e, "PUT", "/big", `{"mappings":{"properties":{"v":{"type":"long"},"i":{"type":"integer"},"sh":{"type":"short"},"b":{"type":"byte"}}}}`).must(t, 200)
	var b strings.Builder
	for _, d := range longDocs {
		b.WriteString(`{"index":{"_id":"` + d.id + `"}}` + "\n")
		if d.v == "" {
			b.WriteString(`{"i":1}` + "\n")
			continue
		}
		b.WriteString(`{"v":` + d.v + `}` + "\n")
	}
	b.WriteString(`{"index":{"_id":"small"}}` + "\n" + `{"i":2147483647,"sh":-32768,"b":127}` + "\n")
	b.WriteString(`{"index":{"_id":"small1"}}` + "\n" + `{"i":2147483646,"sh":-32767,"b":-128}` + "\n")
	r := do(t, e, "POST", "/big/_bulk?refresh=true", b.String()).must(t, 200)
	if r.get("errors") != false {
		t.Fatalf("bulk failed: %s", r.raw)
	}
}

// hitIDs are the ids of a search response's hits, in order.
func hitIDs(t *testing.T, r reply) []string {
	t.Helper()
	hits, _ := r.get("hits.hits").([]any)
	ids := make([]string, 0, len(hits))
	for _, h := range hits {
		id, _ := h.(map[string]any)["_id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// rawField is the JSON text at path (dotted, as reply.get) of a response,
// re-encoded from json.Number so that no digit is lost on the way.
func rawField(t *testing.T, r reply, path string) string {
	t.Helper()
	var cur any = r.body
	for _, p := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			i := 0
			for _, ch := range p {
				i = i*10 + int(ch-'0')
			}
			if i >= len(c) {
				t.Fatalf("%s: no element %d in %s", path, i, r.raw)
			}
			cur = c[i]
		}
	}
	out, err := json.Marshal(cur)
	if err != nil {
		t.Fatalf("encode %s: %v", path, err)
	}
	return string(out)
}

// TestLongPrecision checks that a long field compares every digit, over the
// whole long range, in every place a value is read: term, match and terms
// queries, range bounds, sort and search_after, terms aggregation keys and
// doc values. Values are given as JSON numbers and as strings, as
// Elasticsearch takes both.
func TestLongPrecision(t *testing.T) {
	e := openTest(t, "")
	seedLongs(t, e)

	queries := []struct {
		name  string
		query string
		want  []string // ids in ascending value order
	}{
		{"term 2^53+3", `{"term":{"v":9007199254740995}}`, []string{"p3"}},
		{"term 2^53+4", `{"term":{"v":9007199254740996}}`, []string{"p4"}},
		{"term 2^53+1", `{"term":{"v":9007199254740993}}`, []string{"p1"}},
		{"term 2^53+3 as string", `{"term":{"v":"9007199254740995"}}`, []string{"p3"}},
		{"term value object", `{"term":{"v":{"value":9007199254740995}}}`, []string{"p3"}},
		{"term indexed as string", `{"term":{"v":9007199254740997}}`, []string{"s"}},
		{"term max-1", `{"term":{"v":9223372036854775806}}`, []string{"max1"}},
		{"term max-1 as string", `{"term":{"v":"9223372036854775806"}}`, []string{"max1"}},
		{"term max", `{"term":{"v":9223372036854775807}}`, []string{"max"}},
		{"term min", `{"term":{"v":-9223372036854775808}}`, []string{"min"}},
		{"term min+1", `{"term":{"v":-9223372036854775807}}`, []string{"min1"}},
		{"match 2^53+3", `{"match":{"v":9007199254740995}}`, []string{"p3"}},
		{"match max-1 as string", `{"match":{"v":"9223372036854775806"}}`, []string{"max1"}},
		{"terms", `{"terms":{"v":[9007199254740995,"9223372036854775806",-9223372036854775807]}}`, []string{"min1", "p3", "max1"}},
		// Elasticsearch 8.16 and later: a term beyond the type matches nothing.
		{"term beyond max", `{"term":{"v":9223372036854775808}}`, nil},
		{"term beyond min", `{"term":{"v":"-9223372036854775809"}}`, nil},
		{"term 2^64", `{"term":{"v":18446744073709551616}}`, nil},
		{"range gt lte past 2^53", `{"range":{"v":{"gt":9007199254740995,"lte":9007199254740997}}}`, []string{"p4", "s"}},
		{"range gte lt past 2^53", `{"range":{"v":{"gte":9007199254740993,"lt":"9007199254740995"}}}`, []string{"p1"}},
		{"range gte max-1", `{"range":{"v":{"gte":9223372036854775806}}}`, []string{"max1", "max"}},
		{"range gt max-1", `{"range":{"v":{"gt":9223372036854775806}}}`, []string{"max"}},
		{"range gt max", `{"range":{"v":{"gt":9223372036854775807}}}`, nil},
		{"range gte max", `{"range":{"v":{"gte":"9223372036854775807"}}}`, []string{"max"}},
		{"range lt max", `{"range":{"v":{"gt":9007199254740996,"lt":9223372036854775807}}}`, []string{"s", "max1"}},
		{"range lte min", `{"range":{"v":{"lte":-9223372036854775808}}}`, []string{"min"}},
		{"range lt min+1", `{"range":{"v":{"lt":-9223372036854775807}}}`, []string{"min"}},
		{"range lt min", `{"range":{"v":{"lt":-9223372036854775808}}}`, nil},
		{"range lte min+1", `{"range":{"v":{"lte":"-9223372036854775807"}}}`, []string{"min", "min1"}},
		{"integer term at max", `{"term":{"i":2147483647}}`, []string{"small"}},
		{"integer term beyond", `{"term":{"i":2147483648}}`, nil},
		{"integer range gt max-1", `{"range":{"i":{"gt":2147483646}}}`, []string{"small"}},
		{"integer range decimal bounds", `{"range":{"i":{"gt":2147483645.5,"lt":2147483646.5}}}`, []string{"small1"}},
		{"short range", `{"range":{"sh":{"lt":-32767}}}`, []string{"small"}},
		{"byte term beyond", `{"term":{"b":300}}`, nil},
		{"byte range", `{"range":{"b":{"gte":-128,"lt":0}}}`, []string{"small1"}},
	}
	for _, tc := range queries {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"size":20,"query":` + tc.query + `,"sort":[{"v":"asc"},{"i":"desc"}]}`
			got := hitIDs(t, do(t, e, "POST", "/big/_search", body).must(t, 200))
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("%s: got %v, want %v", tc.query, got, tc.want)
			}
		})
	}

	// A value beyond the type fails a range or terms query with 400, as
	// Elasticsearch's NumberFieldMapper does ("out of range for a long").
	failures := []struct{ query, reason string }{
		{`{"range":{"v":{"gte":9223372036854775808}}}`, "Value [9223372036854775808] is out of range for a long"},
		{`{"range":{"v":{"lt":"-9223372036854775809"}}}`, "Value [-9223372036854775809] is out of range for a long"},
		{`{"terms":{"v":[1,9223372036854775808]}}`, "Value [9223372036854775808] is out of range for a long"},
		{`{"range":{"i":{"lte":2147483648}}}`, "Value [2147483648] is out of range for an integer"},
		{`{"range":{"b":{"lte":"1e10"}}}`, "Value [1e10] is out of range for an integer"},
	}
	for _, tc := range failures {
		t.Run("400 "+tc.query, func(t *testing.T) {
			r := do(t, e, "POST", "/big/_search", `{"query":`+tc.query+`}`).must(t, http.StatusBadRequest)
			if got := r.get("error.root_cause.0.type"); got != "query_shard_exception" {
				t.Errorf("root cause %v, want query_shard_exception: %s", got, r.raw)
			}
			if !bytes.Contains(r.raw, []byte(tc.reason)) {
				t.Errorf("reason does not say %q: %s", tc.reason, r.raw)
			}
		})
	}

	t.Run("sort", func(t *testing.T) {
		asc := do(t, e, "POST", "/big/_search", `{"size":20,"query":{"exists":{"field":"v"}},"sort":[{"v":"asc"}]}`).must(t, 200)
		if got := hitIDs(t, asc); strings.Join(got, " ") != strings.Join(longIDsAsc, " ") {
			t.Errorf("asc: got %v, want %v", got, longIDsAsc)
		}
		for i, d := range sortedLongDocs() {
			if got := rawField(t, asc, "hits.hits."+strconv.Itoa(i)+".sort"); got != "["+d+"]" {
				t.Errorf("hit %d sort %s, want [%s]", i, got, d)
			}
		}
		desc := do(t, e, "POST", "/big/_search", `{"size":20,"query":{"exists":{"field":"v"}},"sort":[{"v":{"order":"desc"}}]}`).must(t, 200)
		want := reversed(longIDsAsc)
		if got := hitIDs(t, desc); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("desc: got %v, want %v", got, want)
		}
	})

	t.Run("search_after", func(t *testing.T) {
		cases := []struct {
			sort, after string
			want        []string
		}{
			{`"asc"`, `[9007199254740995]`, []string{"p4", "s", "max1", "max"}},
			{`"asc"`, `["9007199254740995"]`, []string{"p4", "s", "max1", "max"}},
			{`"asc"`, `[9223372036854775806]`, []string{"max"}},
			{`"asc"`, `[-9223372036854775808]`, []string{"min1", "p1", "p3", "p4", "s", "max1", "max"}},
			{`"desc"`, `[9007199254740996]`, []string{"p3", "p1", "min1", "min"}},
			{`"desc"`, `[-9223372036854775807]`, []string{"min"}},
		}
		for _, tc := range cases {
			body := `{"size":20,"query":{"exists":{"field":"v"}},"sort":[{"v":` + tc.sort + `}],"search_after":` + tc.after + `}`
			got := hitIDs(t, do(t, e, "POST", "/big/_search", body).must(t, 200))
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("%s after %s: got %v, want %v", tc.sort, tc.after, got, tc.want)
			}
		}
	})

	t.Run("missing sorts at the long bounds", func(t *testing.T) {
		// The document without v sorts by a custom missing value as exactly
		// as by its own.
		body := `{"size":20,"sort":[{"v":{"order":"asc","missing":9007199254740994}},{"i":"asc"}],"query":{"bool":{"should":[{"exists":{"field":"v"}},{"ids":{"values":["none"]}}]}}}`
		got := hitIDs(t, do(t, e, "POST", "/big/_search", body).must(t, 200))
		want := []string{"min", "min1", "p1", "none", "p3", "p4", "s", "max1", "max"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("terms aggregation keys", func(t *testing.T) {
		r := do(t, e, "POST", "/big/_search", `{"size":0,"aggs":{"k":{"terms":{"field":"v","size":20}}}}`).must(t, 200)
		buckets, _ := r.get("aggregations.k.buckets").([]any)
		if len(buckets) != len(longIDsAsc) {
			t.Fatalf("%d buckets, want %d distinct keys: %s", len(buckets), len(longIDsAsc), r.raw)
		}
		// Every bucket counts one document; ties are in ascending key order.
		for i, d := range sortedLongDocs() {
			if got := rawField(t, r, "aggregations.k.buckets."+strconv.Itoa(i)+".key"); got != d {
				t.Errorf("bucket %d key %s, want %s", i, got, d)
			}
		}
	})

	t.Run("doc values and source", func(t *testing.T) {
		r := do(t, e, "POST", "/big/_search", `{"query":{"ids":{"values":["p3"]}},"docvalue_fields":["v"]}`).must(t, 200)
		if got := rawField(t, r, "hits.hits.0.fields.v"); got != "[9007199254740995]" {
			t.Errorf("docvalue_fields v = %s, want [9007199254740995]", got)
		}
		if got := rawField(t, r, "hits.hits.0._source.v"); got != "9007199254740995" {
			t.Errorf("_source v = %s, want 9007199254740995", got)
		}
		r = do(t, e, "POST", "/big/_search", `{"query":{"ids":{"values":["max1"]}},"docvalue_fields":["v"]}`).must(t, 200)
		if got := rawField(t, r, "hits.hits.0.fields.v"); got != "[9223372036854775806]" {
			t.Errorf("docvalue_fields v = %s, want [9223372036854775806]", got)
		}
	})

	t.Run("indexing beyond long fails", func(t *testing.T) {
		// 2^63 rounds to the same double as Long.MAX_VALUE; it is still not
		// a long.
		for _, v := range []string{"9223372036854775808", `"9223372036854775808"`, "-9223372036854775809"} {
			r := do(t, e, "PUT", "/big/_doc/bad?refresh=true", `{"v":`+v+`}`).must(t, http.StatusBadRequest)
			if !bytes.Contains(r.raw, []byte("out of range")) {
				t.Errorf("%s: %s", v, r.raw)
			}
		}
	})
}

// sortedLongDocs are the JSON numbers of longDocs in ascending order.
func sortedLongDocs() []string {
	byID := map[string]string{}
	for _, d := range longDocs {
		byID[d.id] = strings.Trim(d.v, `"`)
	}
	out := make([]string, len(longIDsAsc))
	for i, id := range longIDsAsc {
		out[i] = byID[id]
	}
	return out
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}
