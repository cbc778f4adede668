package api_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/walsearch/walsearch/api"
)

func hiddenSecret(c *api.Config) {
	c.Indices = map[string]api.IndexConfig{"users": {HiddenFields: []string{"secret"}}}
}

func TestResponseShapesAreExactlyTheContract(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{cfg: hiddenSecret})
	seedUsers(t, s.es, 25)

	r := s.search(t, `{"index":"users","query_fields":{"status":"active"},"page_size":5}`)
	var sr struct {
		Data []json.RawMessage `json:"data"`
		Meta json.RawMessage   `json:"meta"`
	}
	r.decode(t, &sr)
	if r.code != 200 || keysOf(t, r.body) != "data,meta" ||
		keysOf(t, sr.Meta) != "current_page,has_next,has_previous,page_size,selected_fields,total_pages,total_records" {
		t.Fatalf("POST /search shape: %d %s", r.code, r.body)
	}
	if got := keysOf(t, sr.Data[0]); got != "age,bio,id,name,status" {
		t.Fatalf("document keys = %s", got)
	}

	r = s.do(t, "GET", "/search/users/scroll?size=5", "")
	var sc struct {
		Meta json.RawMessage `json:"meta"`
	}
	r.decode(t, &sc)
	if r.code != 200 || keysOf(t, r.body) != "data,meta" ||
		keysOf(t, sc.Meta) != "has_next,has_previous,next_cursor,page_size,selected_fields,total_records" {
		t.Fatalf("scroll shape: %d %s", r.code, r.body)
	}

	r = s.do(t, "GET", "/indices/users/fields", "")
	var fr struct {
		Index      string            `json:"index"`
		Fields     []string          `json:"fields"`
		FieldTypes map[string]string `json:"field_types"`
	}
	r.decode(t, &fr)
	if r.code != 200 || keysOf(t, r.body) != "field_types,fields,index" || fr.Index != "users" ||
		strings.Join(fr.Fields, ",") != "age,bio,id,name,status" || fr.FieldTypes["name"] != "text" || fr.FieldTypes["status"] != "keyword" || fr.FieldTypes["age"] != "integer" {
		t.Fatalf("fields: %d %s", r.code, r.body)
	}

	r = s.do(t, "GET", "/indices", "")
	if r.code != 200 || string(r.body) != `{"indices":[{"name":"users","schema":"public","table":"users","key":["id"]}]}` {
		t.Fatalf("indices: %d %s", r.code, r.body)
	}

	r = s.do(t, "GET", "/health", "")
	if r.code != 200 || keysOf(t, r.body) != "components,serving,status" {
		t.Fatalf("health: %d %s", r.code, r.body)
	}
}

func TestHiddenFieldsAreUnreachableByEveryParameter(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{cfg: hiddenSecret})
	seedUsers(t, s.es, 10)
	for _, body := range []string{
		`{"index":"users","fields":["secret"]}`,
		`{"index":"users","fields":["secret.keyword"]}`,
		`{"index":"users","fields":["*"]}`,
		`{"index":"users","fields":["secre*"]}`,
		`{"index":"users","exclude_fields":["secret"]}`,
		`{"index":"users","query_fields":{"secret":"hunter1"}}`,
		`{"index":"users","query_fields":{"secret.keyword":"hunter1"}}`,
		`{"index":"users","query_fields":{"secret":{"gte":"a"}}}`,
		`{"index":"users","query_fields":{"secret":null}}`,
		`{"index":"users","sort_by":{"secret":"asc"}}`,
		`{"index":"users","facets":["secret"]}`,
		`{"index":"users","facets":["secret.keyword"]}`,
	} {
		r := s.search(t, body)
		if r.code != 400 || strings.Contains(string(r.body), "hunter") {
			t.Errorf("%s: %d %s, want 400 without the value", body, r.code, r.body)
		}
	}
	// q and highlight never search or show it: no hit for a secret value,
	// and hits for other text carry no secret.
	for _, body := range []string{
		`{"index":"users","q":"hunter1","highlight":true}`,
		`{"index":"users","q":"secret:hunter1"}`,
		`{"index":"users","q":"hunter*"}`,
	} {
		r := s.search(t, body)
		var sr struct {
			Meta struct {
				Total int `json:"total_records"`
			} `json:"meta"`
		}
		r.decode(t, &sr)
		if r.code != 200 || sr.Meta.Total != 0 {
			t.Errorf("%s: %d %s, want no hits", body, r.code, r.body)
		}
	}
	for _, body := range []string{
		`{"index":"users","q":"postgres","highlight":true,"page_size":100}`,
		`{"index":"users","page_size":100}`,
		`{"index":"users","page_size":100,"fields":["name","bio"]}`,
	} {
		r := s.search(t, body)
		if r.code != 200 || strings.Contains(string(r.body), "hunter") || strings.Contains(string(r.body), "secret") {
			t.Errorf("%s: %d %s leaks the hidden field", body, r.code, r.body)
		}
	}
	for _, path := range []string{
		"/search/users/scroll?size=100",
		"/search/users/scroll?fields=secret",
		"/search/users/scroll?sort_by=secret:asc",
		"/search/users/scroll?query_fields=" + url.QueryEscape(`{"secret":"hunter1"}`),
		"/search/users/scroll?q=hunter1",
		"/indices/users/fields",
	} {
		r := s.do(t, "GET", path, "")
		if strings.Contains(string(r.body), "hunter") || (r.code == 200 && strings.Contains(string(r.body), `"secret`)) {
			t.Errorf("%s: %d %s leaks the hidden field", path, r.code, r.body)
		}
	}
}

func TestOnlyManagedIndicesCanBeReached(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{})
	seedUsers(t, s.es, 3)
	bulk(t, s.es, `{"index":{"_index":"other","_id":"1"}}`+"\n"+`{"x":1}`+"\n"+
		`{"index":{"_index":".internal","_id":"1"}}`+"\n"+`{"x":1}`+"\n")
	for _, idx := range []string{"other", ".internal", "_all", "*", "users*", "users,other", "-users", "_search", "users/_doc/1", "USERS"} {
		body, _ := json.Marshal(map[string]any{"index": idx})
		r := s.search(t, string(body))
		if r.code != 400 && r.code != 404 {
			t.Errorf("POST /search index %q: %d %s", idx, r.code, r.body)
		}
		r = s.do(t, "GET", "/indices/"+url.PathEscape(idx)+"/fields", "")
		if r.code != 400 && r.code != 404 {
			t.Errorf("fields of %q: %d %s", idx, r.code, r.body)
		}
		r = s.do(t, "GET", "/search/"+url.PathEscape(idx)+"/scroll", "")
		if r.code != 400 && r.code != 404 {
			t.Errorf("scroll of %q: %d %s", idx, r.code, r.body)
		}
	}
	// The unmanaged index answers exactly like a missing one.
	a, b := s.search(t, `{"index":"other"}`), s.search(t, `{"index":"nosuch"}`)
	if a.code != b.code || strings.ReplaceAll(string(a.body), "other", "X") != strings.ReplaceAll(string(b.body), "nosuch", "X") {
		t.Errorf("unmanaged and missing differ: %s vs %s", a.body, b.body)
	}
}

func TestCursorsAreTamperEvident(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{})
	seedUsers(t, s.es, 30)
	r := s.do(t, "GET", "/search/users/scroll?size=5&query_fields="+url.QueryEscape(`{"status":"active"}`), "")
	var sr struct {
		Meta struct {
			Next *string `json:"next_cursor"`
		} `json:"meta"`
	}
	r.decode(t, &sr)
	if r.code != 200 || sr.Meta.Next == nil {
		t.Fatalf("first page: %d %s", r.code, r.body)
	}
	tok := *sr.Meta.Next
	if r := s.do(t, "GET", "/search/users/scroll?cursor="+url.QueryEscape(tok), ""); r.code != 200 {
		t.Fatalf("genuine cursor: %d %s", r.code, r.body)
	}
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(tok); i++ {
		if tok[i] == '.' {
			continue
		}
		b := []byte(tok)
		b[i] = alphabet[(strings.IndexByte(alphabet, b[i])+1)%len(alphabet)]
		r := s.do(t, "GET", "/search/users/scroll?cursor="+url.QueryEscape(string(b)), "")
		if r.code != 400 || r.errCode(t) != api.CodeInvalidCursor {
			t.Fatalf("cursor changed at byte %d: %d %s", i, r.code, r.body)
		}
	}
	for _, bad := range []string{"x", ".", "a.b", tok + "x", tok[:len(tok)-1], strings.Repeat("A", 20000)} {
		if r := s.do(t, "GET", "/search/users/scroll?cursor="+url.QueryEscape(bad), ""); r.code != 400 {
			t.Errorf("cursor %.20q: %d %s", bad, r.code, r.body)
		}
	}
	// A cursor is bound to its index, and carries its query.
	if r := s.do(t, "GET", "/search/other/scroll?cursor="+url.QueryEscape(tok), ""); r.code != 400 && r.code != 404 {
		t.Errorf("cursor on another index: %d", r.code)
	}
	if r := s.do(t, "GET", "/search/users/scroll?q=x&cursor="+url.QueryEscape(tok), ""); r.code != 400 {
		t.Errorf("cursor with a new query: %d", r.code)
	}
	// Another server (another key) refuses it.
	other := newServer(t, serverOpts{})
	seedUsers(t, other.es, 1)
	if r := other.do(t, "GET", "/search/users/scroll?cursor="+url.QueryEscape(tok), ""); r.code != 400 {
		t.Errorf("cursor from another server: %d", r.code)
	}
}

func TestScrollVisitsEveryDocumentOnceInOrder(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{})
	seedUsers(t, s.es, 2345)
	seen := map[float64]bool{}
	path := "/search/users/scroll?size=100&fields=id,age&sort_by=status:desc&query_fields=" + url.QueryEscape(`{"age":{"gte":30}}`)
	pages := 0
	for {
		r := s.do(t, "GET", path, "")
		var sr struct {
			Data []map[string]float64 `json:"data"`
			Meta struct {
				Total   int     `json:"total_records"`
				HasNext bool    `json:"has_next"`
				HasPrev bool    `json:"has_previous"`
				Next    *string `json:"next_cursor"`
			} `json:"meta"`
		}
		r.decode(t, &sr)
		if r.code != 200 || sr.Meta.Total != 2345-9 || sr.Meta.HasPrev != (pages > 0) {
			t.Fatalf("page %d: %d %s", pages, r.code, r.body)
		}
		pages++
		for _, d := range sr.Data {
			if seen[d["id"]] || d["age"] < 30 {
				t.Fatalf("repeat or filtered-out document %v", d)
			}
			seen[d["id"]] = true
		}
		if !sr.Meta.HasNext {
			if sr.Meta.Next != nil {
				t.Fatal("next_cursor on the last page")
			}
			break
		}
		path = "/search/users/scroll?cursor=" + url.QueryEscape(*sr.Meta.Next)
	}
	if len(seen) != 2345-9 {
		t.Fatalf("visited %d documents, want %d", len(seen), 2345-9)
	}
}

func TestFullTextFacetsAndHighlights(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{cfg: hiddenSecret})
	seedUsers(t, s.es, 30)
	r := s.search(t, `{"index":"users","q":"postgres search","highlight":true,"facets":["status"],"query_fields":{"age":{"lt":40}},"page_size":50}`)
	var sr struct {
		Data []struct {
			ID        float64             `json:"id"`
			Bio       string              `json:"bio"`
			Highlight map[string][]string `json:"_highlight"`
		} `json:"data"`
		Meta struct {
			Total  int                    `json:"total_records"`
			Facets map[string][]api.Facet `json:"facets"`
		} `json:"meta"`
	}
	r.decode(t, &sr)
	// bio "loves postgres and search" is every third user (i%3 == 0); age < 40 means id < 20.
	if r.code != 200 || sr.Meta.Total != 6 || len(sr.Data) != 6 {
		t.Fatalf("q with a filter: %d %s", r.code, r.body)
	}
	for _, d := range sr.Data {
		if int(d.ID)%3 != 0 || len(d.Highlight["bio"]) == 0 || !strings.Contains(d.Highlight["bio"][0], "<em>postgres</em>") {
			t.Fatalf("hit %+v", d)
		}
	}
	var n int64
	for _, f := range sr.Meta.Facets["status"] {
		n += f.Count
	}
	if n != 6 || len(sr.Meta.Facets["status"]) != 2 {
		t.Fatalf("facets %+v", sr.Meta.Facets)
	}
	// Operators that could expand without bound are plain text.
	for _, q := range []string{"post*", "postgre~2", `/.*/`, "a OR b AND NOT c", `"unclosed`, "((((", "name:user"} {
		body, _ := json.Marshal(map[string]any{"index": "users", "q": q})
		if r := s.search(t, string(body)); r.code != 200 {
			t.Errorf("q %q: %d %s", q, r.code, r.body)
		}
	}
}
