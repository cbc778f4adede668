package api

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseSearchRequest(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
		page int
		size int
	}{
		{`{"index":"users"}`, true, 1, DefaultPageSize},
		{`{"index":"users","size":7}`, true, 1, 7},
		{`{"index":"users","size":7,"page_size":9,"page":3}`, true, 3, 9},
		{`{"index":"users","page":10,"page_size":1000}`, true, 10, 1000},
		{`{"index":"users","page":11,"page_size":1000}`, false, 0, 0},
		{`{"index":"users","page_size":1001}`, false, 0, 0},
		{`{"index":"users","page":-1}`, false, 0, 0},
		{`{"index":"users","page":0}`, false, 0, 0},
		{`{"index":"users","page_size":0}`, false, 0, 0},
		{`{"index":"users","size":0}`, false, 0, 0},
		{`{"index":"users","size":0,"page_size":5}`, false, 0, 0},
		{`{"index":"users","size":1001,"page_size":5}`, false, 0, 0},
		{`{"index":"users","page":null,"page_size":null,"size":null}`, true, 1, DefaultPageSize},
		{`{"index":"users","page":1,"page_size":1}`, true, 1, 1},
		{`{"index":"users","page":10000,"page_size":1}`, true, 10000, 1},
		{`{"index":"users","page":10001,"page_size":1}`, false, 0, 0},
		{`{"index":"users","page":1.5}`, false, 0, 0},
		{`{"index":"users","page":9223372036854775807,"page_size":1000}`, false, 0, 0},
		{`{"index":"users","query_fields":{"a":1,"b":[1,"x",true],"c":{"gte":1,"lt":"2024-01-01"},"d":null}}`, true, 1, 10},
		{`{"index":"users","query_fields":{"a":{"regexp":".*"}}}`, false, 0, 0},
		{`{"index":"users","query_fields":{"a":{"gte":[1]}}}`, false, 0, 0},
		{`{"index":"users","query_fields":{"a":[]}}`, false, 0, 0},
		{`{"index":"users","query_fields":{"a":{}}}`, false, 0, 0},
		{`{"index":"users","sort_by":{"a":"asc","b":"DESC"}}`, true, 1, 10},
		{`{"index":"users","sort_by":{"a":"up"}}`, false, 0, 0},
		{`{"index":"users","sort_by":["a"]}`, false, 0, 0},
		{`{"index":"users","min_lsn":"16/B374D848"}`, true, 1, 10},
		{`{"index":"users","min_lsn":"16-B3"}`, false, 0, 0},
		{`{"index":"users","unknown":1}`, false, 0, 0},
		{`{"index":"users"}x`, false, 0, 0},
		{`[]`, false, 0, 0},
		{``, false, 0, 0},
	} {
		req, err := parseSearchRequest([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.body, err, tc.ok)
			continue
		}
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Errorf("%s: %v is not a 400", tc.body, err)
			}
			continue
		}
		if req.Page != tc.page || req.PageSize != tc.size {
			t.Errorf("%s: page %d size %d", tc.body, req.Page, req.PageSize)
		}
	}
	req, _ := parseSearchRequest([]byte(`{"index":"u","sort_by":{"b":"asc","a":"desc"},"query_fields":{"z":1,"a":[1,2]}}`))
	if req.SortBy[0].Field != "b" || req.SortBy[1].Order != "desc" || req.filters[0].Field != "a" || req.filters[0].Kind != filterAnyOf {
		t.Errorf("order or kinds lost: %+v %+v", req.SortBy, req.filters)
	}
}

// checkParsed asserts what every accepted request must satisfy.
func checkParsed(t *testing.T, req *searchRequest) {
	if req.PageSize < 1 || req.PageSize > MaxPageSize || req.Page < 1 || req.Page*req.PageSize > MaxResultWindow {
		t.Fatalf("limits not enforced: %+v", req)
	}
	for _, f := range req.filters {
		for _, v := range f.Values {
			if !isScalar(v) {
				t.Fatalf("non-scalar value reached a filter: %#v", v)
			}
		}
		for op, v := range f.Range {
			if !isScalar(v) || (op != "gte" && op != "gt" && op != "lte" && op != "lt") {
				t.Fatalf("bad range %s %#v", op, v)
			}
		}
	}
}

func FuzzParseSearchRequest(f *testing.F) {
	for _, s := range []string{
		`{"index":"users"}`,
		`{"index":"users","query_fields":{"a":1,"b":[1,"x"],"c":{"gte":1},"d":null},"sort_by":{"a":"asc"},"page":2,"page_size":50}`,
		`{"index":"users","q":"a +b -c \"d e\" (f|g)","highlight":true,"facets":["x"],"min_lsn":"0/1"}`,
		`{"index":"users","query_fields":{"a":{"script":{"source":"x"}}}}`,
		`{"index":"*","page":1e9}`,
		`{"index":"users","page":0,"page_size":0,"size":0}`,
		`{"index":"users","page":null,"size":1000}`,
		`{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseSearchRequest(body)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Message == "" {
				t.Fatalf("error %v is not a 400 with a message", err)
			}
			return
		}
		checkParsed(t, req)
		// Whatever was accepted builds a query over a view that knows every field.
		v := &indexView{name: "x", fields: map[string]fieldInfo{}, key: []string{"id"}, searchFields: []string{"t"}}
		v.fields["id"] = fieldInfo{Type: "long", Exact: "id"}
		v.fields["t"] = fieldInfo{Type: "text"}
		for _, fl := range req.filters {
			v.fields[fl.Field] = fieldInfo{Type: "keyword", Exact: fl.Field}
		}
		q, err := buildQuery(v, querySpec{Filters: req.filters, Q: req.Q})
		if err != nil {
			return
		}
		raw, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"script", "query_string", "regexp", "wildcard", "fuzzy", "prefix"} {
			if hasKey(q, key) {
				t.Fatalf("query uses %s: %s", key, raw)
			}
		}
	})
}

// hasKey reports whether a query built of maps and slices has key anywhere
// as an object key (values, which hold user data, are not keys).
func hasKey(v any, key string) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == key || hasKey(e, key) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasKey(e, key) {
				return true
			}
		}
	}
	return false
}

func FuzzDecodeCursor(f *testing.F) {
	cc, err := newCursorCodec("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	good, _ := cc.encode(&cursor{Index: "users", Size: 10, After: []json.RawMessage{json.RawMessage(`1`)}})
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add("")
	f.Add(".")
	f.Add("eyJ2IjoxfQ.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		cur, err := cc.decode(tok)
		if err != nil {
			if err != errBadCursor {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Only tokens this codec made decode; re-encoding gives them back.
		again, err := cc.encode(cur)
		if err != nil {
			t.Fatal(err)
		}
		if again != tok {
			t.Fatalf("a second spelling decoded: %q vs %q", tok, again)
		}
	})
}

func TestParseScrollQuerySize(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		ok   bool
		size int
	}{
		{"", true, DefaultPageSize},
		{"size=1", true, 1},
		{"size=1000", true, 1000},
		{"size=0", false, 0},
		{"size=", false, 0},
		{"size=-1", false, 0},
		{"size=1001", false, 0},
		{"size=ten", false, 0},
		{"cursor=abc.def&size=0", false, 0},
	} {
		r, err := parseScrollQuery(tc.raw)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err = %v, want ok=%v", tc.raw, err, tc.ok)
			continue
		}
		if err == nil && r.Size != tc.size {
			t.Errorf("%q: size %d, want %d", tc.raw, r.Size, tc.size)
		}
	}
}

func FuzzParseScrollQuery(f *testing.F) {
	for _, s := range []string{
		"size=10&fields=a,b",
		"cursor=abc.def&size=5",
		`query_fields={"a":1}&sort_by=a:asc,b:desc&q=x`,
		`sort_by={"a":"desc"}&exclude_fields=x`,
		"size=0", "size=", "bogus=1", "%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := parseScrollQuery(raw)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if r.Size < 1 || r.Size > MaxPageSize {
			t.Fatalf("size %d accepted", r.Size)
		}
		if r.Cursor != "" && (r.Q != "" || len(r.filters) > 0 || len(r.SortBy) > 0) {
			t.Fatalf("a query beside a cursor was accepted: %q", raw)
		}
	})
}
