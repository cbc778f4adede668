package search

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseMappingAndRender(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, out, errReason string }{
		{`{"properties":{"title":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}}}}`,
			`{"properties":{"title":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}}}}`, ""},
		{`{"dynamic":false,"properties":{"n":{"type":"long","index":true}}}`, `{"dynamic":"false","properties":{"n":{"type":"long","index":true}}}`, ""},
		{`{"properties":{"u":{"type":"object","properties":{"a":{"type":"keyword"}}}}}`, `{"properties":{"u":{"properties":{"a":{"type":"keyword"}}}}}`, ""},
		{`{"properties":{"t":{"type":"foo"}}}`, "", "Failed to parse mapping: No handler for type [foo] declared on field [t]"},
		{`{"properties":{"t":{"type":"nested"}}}`, "", "Failed to parse mapping: eslite does not support field type [nested] declared on field [t]"},
		{`{"properties":{"p":{"type":"scaled_float"}}}`, "", "Failed to parse mapping: Field [scaling_factor] is required"},
		{`{"properties":{"t":{"type":"text","foo":1}}}`, "", "Failed to parse mapping: unknown parameter [foo] on mapper [t] of type [text]"},
		{`{"propertes":{}}`, "", "Failed to parse mapping: Root mapping definition has unsupported parameters:  [propertes : {}]"},
	}
	for _, c := range cases {
		m, err := ParseMapping([]byte(c.in))
		if c.errReason != "" {
			e, ok := err.(*Error)
			if !ok || e.Reason != c.errReason || e.Type != "mapper_parsing_exception" || e.Status != 400 {
				t.Errorf("%s: got %v", c.in, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		got, _ := m.MarshalJSON()
		if string(got) != c.out {
			t.Errorf("%s: got %s", c.in, got)
		}
	}
}

func TestPrepareDynamicAndCoercion(t *testing.T) {
	t.Parallel()
	m, err := ParseMapping([]byte(`{"properties":{"n":{"type":"integer"},"b":{"type":"boolean"},"s":{"type":"object","dynamic":"strict","properties":{"x":{"type":"keyword"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ok := []string{`{"n":"12"}`, `{"n":1.9}`, `{"b":"true"}`, `{"n":null}`, `{"s":{"x":"y"}}`}
	for _, src := range ok {
		if _, _, err := m.Prepare("1", []byte(src)); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
	bad := []struct{ src, typ, reason string }{
		{`{"n":"abc"}`, "document_parsing_exception", "[1:6] failed to parse field [n] of type [integer] in document with id '1'. Preview of field's value: 'abc'"},
		{`{"n":3000000000}`, "document_parsing_exception", "[1:6] failed to parse field [n] of type [integer] in document with id '1'. Preview of field's value: '3000000000'"},
		{`{"b":"yes"}`, "document_parsing_exception", "[1:6] failed to parse field [b] of type [boolean] in document with id '1'. Preview of field's value: 'yes'"},
		{`{"s":{"z":1}}`, "strict_dynamic_mapping_exception", "[1:11] mapping set to strict, dynamic introduction of [z] within [s] is not allowed"},
		{`{"_id":"x"}`, "document_parsing_exception", "[1:2] Field [_id] is a metadata field and cannot be added inside a document. Use the index API request parameters."},
	}
	for _, c := range bad {
		_, _, err := m.Prepare("1", []byte(c.src))
		e, isErr := err.(*Error)
		if !isErr || e.Type != c.typ || e.Reason != c.reason || e.Status != 400 {
			t.Errorf("%s: got %v", c.src, err)
		}
	}
	_, updated, err := m.Prepare("2", []byte(`{"title":"x","when":"2024-01-02T03:04:05Z","f":1.5,"l":[1,2],"o":{"k":true},"nothing":null}`))
	if err != nil || !updated {
		t.Fatal(err, updated)
	}
	for path, want := range map[string]string{"title": "text", "title.keyword": "keyword", "when": "date", "f": "float", "l": "long", "o.k": "boolean"} {
		if got, _ := m.FieldType(path); got != want {
			t.Errorf("%s: %s want %s", path, got, want)
		}
	}
	if _, found := m.FieldType("nothing"); found {
		t.Error("null must not add a field")
	}
	if err := m.Merge(&Mapping{properties: map[string]*field{"f": {typ: typeText}}}); err == nil ||
		err.(*Error).Reason != "mapper [f] cannot be changed from type [float] to [text]" {
		t.Errorf("merge: %v", err)
	}
}

func TestDateMath(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 3, 15, 13, 45, 30, 0, time.UTC)
	df := defaultDateFormat()
	cases := []struct {
		expr    string
		roundUp bool
		want    string
	}{
		{"now", false, "2024-03-15T13:45:30.000Z"},
		{"now-1d/d", false, "2024-03-14T00:00:00.000Z"},
		{"now-1d/d", true, "2024-03-14T23:59:59.999Z"},
		{"2024-01-01||+1M/d", false, "2024-02-01T00:00:00.000Z"},
		{"2024-01-31||/M", true, "2024-01-31T23:59:59.999Z"},
		{"now/w", false, "2024-03-11T00:00:00.000Z"},
		{"1704067200000", false, "2024-01-01T00:00:00.000Z"},
	}
	for _, c := range cases {
		ms, err := resolveDate(c.expr, df, now, c.roundUp, time.UTC)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got := df.format(ms); got != c.want {
			t.Errorf("%s (up=%v): %s want %s", c.expr, c.roundUp, got, c.want)
		}
	}
	for _, bad := range []string{"now+", "now/q", "x||+1d", "2024-13-01"} {
		if _, err := resolveDate(bad, df, now, false, time.UTC); err == nil {
			t.Errorf("%s: want error", bad)
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ body, typ, reason string }{
		{`{"query":{"term":{"a":"b","c":"d"}}}`, "parsing_exception", "[term] query doesn't support multiple fields, found [a] and [c]"},
		{`{"query":{"bool":{"foo":[]}}}`, "parsing_exception", "[bool] query does not support [foo]"},
		{`{"query":`, "x_content_parse_exception", "[1:10] unexpected end of input"},
		{`{"size":-1}`, "illegal_argument_exception", "[size] parameter cannot be negative, found [-1]"},
		{`{"sort":["a"],"search_after":[1,2]}`, "illegal_argument_exception", "search_after has 2 value(s) but sort has 1."},
	}
	for _, c := range cases {
		_, err := ParseRequest([]byte(c.body), nil)
		e, ok := err.(*Error)
		if !ok || e.Type != c.typ || e.Reason != c.reason {
			t.Errorf("%s: got %v", c.body, err)
		}
	}
	r, err := ParseRequest(nil, url.Values{"size": {"3"}, "sort": {"qty:desc"}, "track_total_hits": {"true"}})
	if err != nil || r.size != 3 || len(r.sort) != 1 || !r.sort[0].desc || r.track != -1 {
		t.Fatalf("params: %+v %v", r, err)
	}
}

func TestParseRequestScrollPITAndTotals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		params     url.Values
		errReason  string
		check      func(r *Request) bool
	}{
		{name: "pit adds the _shard_doc tiebreaker", body: `{"pit":{"id":"p"},"sort":[{"a":"asc"}]}`,
			check: func(r *Request) bool { return len(r.sort) == 2 && r.sort[1].field == "_shard_doc" }},
		{name: "pit without sort adds none", body: `{"pit":{"id":"p"}}`,
			check: func(r *Request) bool { return len(r.sort) == 0 }},
		{name: "explicit _shard_doc is kept alone", body: `{"pit":{"id":"p"},"sort":["_shard_doc"]}`,
			check: func(r *Request) bool { return len(r.sort) == 1 }},
		{name: "search_after without the tiebreaker value adds none", body: `{"pit":{"id":"p"},"sort":["a"],"search_after":[1]}`,
			check: func(r *Request) bool { return len(r.sort) == 1 }},
		{name: "search_after with the tiebreaker value", body: `{"pit":{"id":"p"},"sort":["a"],"search_after":[1,5]}`,
			check: func(r *Request) bool { return len(r.sort) == 2 }},
		{name: "_shard_doc without pit", body: `{"sort":["_shard_doc"]}`,
			errReason: "Validation Failed: 1: [_shard_doc] sort field cannot be used without [point in time];"},
		{name: "scroll counts exactly", params: url.Values{"scroll": {"1m"}},
			check: func(r *Request) bool { return r.scroll && r.track == -1 }},
		{name: "scroll problems are numbered", body: `{"from":2,"size":0}`, params: url.Values{"scroll": {"1m"}},
			errReason: "Validation Failed: 1: using [from] is not allowed in a scroll context;2: [size] cannot be [0] in a scroll context;"},
		{name: "total as int turns tracking on", params: url.Values{"rest_total_hits_as_int": {"true"}},
			check: func(r *Request) bool { return r.totalAsInt && r.track == -1 }},
		{name: "total as int keeps tracking off", body: `{"track_total_hits":false}`, params: url.Values{"rest_total_hits_as_int": {""}},
			check: func(r *Request) bool { return r.totalAsInt && r.track == 0 }},
		{name: "total as int refuses a bound", body: `{"track_total_hits":100}`, params: url.Values{"rest_total_hits_as_int": {"true"}},
			errReason: "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got 100"},
		{name: "negative terminate_after", body: `{"terminate_after":-1}`, errReason: "terminateAfter must be > 0"},
		{name: "docvalue_fields", body: `{"docvalue_fields":["a",{"field":"d","format":"yyyy"}]}`,
			check: func(r *Request) bool { return len(r.docvalueFields) == 2 && r.docvalueFields[1].format == "yyyy" }},
		{name: "docvalue_fields without field", body: `{"docvalue_fields":[{"format":"yyyy"}]}`, errReason: "[field_and_format] requires field"},
		{name: "pit without id", body: `{"pit":{"keep_alive":"1m"}}`, errReason: "[1:8] [point_in_time] requires [id]"},
	}
	for _, c := range cases {
		r, err := ParseRequest([]byte(c.body), c.params)
		if c.errReason != "" {
			e, ok := err.(*Error)
			if !ok || e.Reason != c.errReason {
				t.Errorf("%s: got %v, want %q", c.name, err, c.errReason)
			}
			continue
		}
		if err != nil || !c.check(r) {
			t.Errorf("%s: got %+v, %v", c.name, r, err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"query":{"match_all":{}}}`, `{"query":{"bool":{"must":[{"match":{"t":"x"}}]}},"sort":["a"]}`,
		`{"aggs":{"a":{"terms":{"field":"f"}}}}`, `{"_source":{"includes":["a*"]}}`, `{`, `[]`,
		`{"pit":{"id":"x","keep_alive":"1m"},"sort":["a"],"search_after":[1,2]}`,
		`{"docvalue_fields":["a",{"field":"d","format":"yyyy"}],"terminate_after":3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body, nil)
		if err == nil && r == nil {
			t.Fatal("nil request without error")
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("non-Elasticsearch error %T", err)
			}
		}
	})
}

func FuzzParseMapping(f *testing.F) {
	for _, s := range []string{fixtureMapping, `{"dynamic":"strict"}`, `{"properties":{"a":{"type":"date","format":"yyyy-MM-dd"}}}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMapping(raw)
		if err != nil {
			return
		}
		out, _ := m.MarshalJSON()
		m2, err := ParseMapping(out)
		if err != nil {
			t.Fatalf("rendered mapping does not parse: %s: %v", out, err)
		}
		out2, _ := m2.MarshalJSON()
		if string(out) != string(out2) {
			t.Fatalf("not stable: %s vs %s", out, out2)
		}
	})
}

func FuzzDateMath(f *testing.F) {
	for _, s := range []string{"now-1d/d", "2024-01-01||+1M/d", "now+1h", "2024-02-30", "1704067200000"} {
		f.Add(s)
	}
	now := time.Date(2024, 3, 15, 13, 45, 30, 0, time.UTC)
	df := defaultDateFormat()
	f.Fuzz(func(t *testing.T, expr string) {
		lo, err1 := resolveDate(expr, df, now, false, time.UTC)
		hi, err2 := resolveDate(expr, df, now, true, time.UTC)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("rounding changed validity of %q", expr)
		}
		if err1 == nil && hi < lo && !strings.Contains(expr, "-") {
			t.Fatalf("%q: round up %d before round down %d", expr, hi, lo)
		}
	})
}
