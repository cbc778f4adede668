package search

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

const fixtureMapping = `{"properties":{"title":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}},
"tag":{"type":"keyword"},"price":{"type":"double"},"qty":{"type":"long"},"date":{"type":"date"},"ok":{"type":"boolean"}}}`

var fixtureDocs = []string{
	`{"title":"Quick brown fox","tag":"animal","price":10.5,"qty":3,"date":"2024-01-01","ok":true}`,
	`{"title":"Lazy dog sleeps","tag":"animal","price":5,"qty":7,"date":"2024-01-15T10:00:00Z","ok":false}`,
	`{"title":"Brown bread recipe","tag":"food","price":2.25,"qty":20,"date":"2024-02-03"}`,
	`{"title":"Fox news","tag":"media","qty":1,"date":"2023-12-31T23:59:59Z"}`,
}

func fixture(t *testing.T) Target {
	t.Helper()
	m, err := ParseMapping([]byte(fixtureMapping))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex("", m.Clone())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	var ops []Op
	for i, src := range fixtureDocs {
		d, _, err := m.Prepare(fmt.Sprint(i+1), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, Op{ID: d.ID, Doc: d})
	}
	if err := ix.Apply(ops, 4); err != nil {
		t.Fatal(err)
	}
	ix.SetMapping(m)
	return Target{Name: "items", Index: ix, Mapping: m}
}

type searchOut struct {
	Hits struct {
		Total *struct {
			Value    int    `json:"value"`
			Relation string `json:"relation"`
		} `json:"total"`
		MaxScore *float64 `json:"max_score"`
		Hits     []struct {
			ID        string              `json:"_id"`
			Score     *float64            `json:"_score"`
			Source    json.RawMessage     `json:"_source"`
			Sort      []any               `json:"sort"`
			Highlight map[string][]string `json:"highlight"`
		} `json:"hits"`
	} `json:"hits"`
	Aggs map[string]json.RawMessage `json:"aggregations"`
}

func run(t *testing.T, tg Target, body string) searchOut {
	t.Helper()
	req, err := ParseRequest([]byte(body), nil)
	if err != nil {
		t.Fatalf("parse %s: %v", body, err)
	}
	now := func() time.Time { return time.Date(2024, 1, 16, 12, 0, 0, 0, time.UTC) }
	resp, err := Search(context.Background(), []Target{tg}, req, Options{Now: now})
	if err != nil {
		t.Fatalf("search %s: %v", body, err)
	}
	raw, _ := json.Marshal(resp)
	var out searchOut
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return out
}

func ids(o searchOut) string {
	var s []string
	for _, h := range o.Hits.Hits {
		s = append(s, h.ID)
	}
	return strings.Join(s, ",")
}

func TestQueriesMatch(t *testing.T) {
	t.Parallel()
	tg := fixture(t)
	cases := []struct{ body, want string }{
		{`{"query":{"match_all":{}},"sort":["qty"]}`, "4,1,2,3"},
		{`{"query":{"match":{"title":"FOX"}},"sort":[{"qty":"asc"}]}`, "4,1"},
		{`{"query":{"match":{"title":{"query":"brown fox","operator":"and"}}}}`, "1"},
		{`{"query":{"term":{"tag":"animal"}},"sort":[{"qty":"desc"}]}`, "2,1"},
		{`{"query":{"term":{"title":"Quick"}}}`, ""},
		{`{"query":{"term":{"title":"quick"}}}`, "1"},
		{`{"query":{"terms":{"tag":["food","media"]}},"sort":["qty"]}`, "4,3"},
		{`{"query":{"range":{"price":{"gte":5,"lt":10.5}}}}`, "2"},
		{`{"query":{"range":{"date":{"gte":"now-1d/d"}}},"sort":["qty"]}`, "2,3"},
		{`{"query":{"range":{"date":{"lt":"2024-01-01||/M"}}}}`, "4"},
		{`{"query":{"range":{"date":{"lte":"2024-01-01||/d"}}},"sort":["date"]}`, "4,1"},
		{`{"query":{"bool":{"filter":[{"term":{"tag":"animal"}},{"range":{"qty":{"gt":3}}}]}}}`, "2"},
		{`{"query":{"bool":{"must_not":{"exists":{"field":"price"}}}}}`, "4"},
		{`{"query":{"bool":{"should":[{"term":{"tag":"food"}},{"term":{"tag":"media"}},{"term":{"qty":1}}],"minimum_should_match":2}}}`, "4"},
		{`{"query":{"prefix":{"tag":"ani"}},"sort":["qty"]}`, "1,2"},
		{`{"query":{"ids":{"values":["3","9"]}}}`, "3"},
		{`{"query":{"term":{"ok":true}}}`, "1"},
		{`{"query":{"simple_query_string":{"query":"brown +-bread","fields":["title"]}}}`, "1"},
		{`{"query":{"simple_query_string":{"query":"\"lazy dog\" | recip*","fields":["title"]}},"sort":["qty"]}`, "2,3"},
		{`{"query":{"multi_match":{"query":"media","fields":["title","tag^2"]}}}`, "4"},
		{`{"query":{"match_all":{}},"sort":[{"price":{"order":"desc","missing":"_first"}}]}`, "4,1,2,3"},
		{`{"query":{"match_all":{}},"sort":[{"price":"asc"}],"search_after":[5]}`, "1,4"},
		// A custom missing value is the sort value of documents without the field.
		{`{"query":{"match_all":{}},"sort":[{"price":{"order":"asc","missing":6}}]}`, "3,2,4,1"},
		{`{"query":{"match_all":{}},"sort":[{"price":{"order":"desc","missing":"6"}}]}`, "1,4,2,3"},
		{`{"query":{"match_all":{}},"sort":[{"ok":{"missing":true}},"qty"]}`, "2,4,1,3"},
		{`{"query":{"match_all":{}},"sort":["qty"],"from":1,"size":2}`, "1,2"},
	}
	for _, c := range cases {
		if got := ids(run(t, tg, c.body)); got != c.want {
			t.Errorf("%s: got [%s] want [%s]", c.body, got, c.want)
		}
	}
}

func TestResponseShape(t *testing.T) {
	t.Parallel()
	tg := fixture(t)
	o := run(t, tg, `{"query":{"bool":{"filter":{"term":{"tag":"animal"}}}},"_source":["title"],"track_total_hits":1,"sort":["_score"]}`)
	if o.Hits.Total == nil || o.Hits.Total.Value != 1 || o.Hits.Total.Relation != "gte" {
		t.Fatalf("total: %+v", o.Hits.Total)
	}
	if *o.Hits.Hits[0].Score != 0 || string(o.Hits.Hits[0].Source) != `{"title":"Quick brown fox"}` &&
		string(o.Hits.Hits[0].Source) != `{"title":"Lazy dog sleeps"}` {
		t.Fatalf("hit: %+v %s", o.Hits.Hits[0], o.Hits.Hits[0].Source)
	}
	o = run(t, tg, `{"query":{"match_all":{}},"sort":[{"date":"asc"}],"size":1,"track_total_hits":false}`)
	if o.Hits.Total != nil || o.Hits.MaxScore != nil || o.Hits.Hits[0].Sort[0].(float64) != 1704067199000 {
		t.Fatalf("sorted: %+v", o.Hits)
	}
	o = run(t, tg, `{"query":{"match":{"title":"fox"}},"highlight":{"fields":{"title":{}}}}`)
	for _, h := range o.Hits.Hits {
		if len(h.Highlight["title"]) != 1 || !strings.Contains(h.Highlight["title"][0], "<em>") {
			t.Fatalf("highlight: %+v", h.Highlight)
		}
	}
	o = run(t, tg, `{"size":0,"aggs":{"tags":{"terms":{"field":"tag"},"aggs":{"p":{"max":{"field":"price"}}}},"avg":{"avg":{"field":"qty"}},
		"none":{"min":{"field":"price"}},"months":{"date_histogram":{"field":"date","calendar_interval":"month"}}}}`)
	want := map[string]string{
		"tags":   `{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":[{"key":"animal","doc_count":2,"p":{"value":10.5}},{"key":"food","doc_count":1,"p":{"value":2.25}},{"key":"media","doc_count":1,"p":{"value":null}}]}`,
		"avg":    `{"value":7.75}`,
		"months": `{"buckets":[{"key_as_string":"2023-12-01T00:00:00.000Z","key":1701388800000,"doc_count":1},{"key_as_string":"2024-01-01T00:00:00.000Z","key":1704067200000,"doc_count":2},{"key_as_string":"2024-02-01T00:00:00.000Z","key":1706745600000,"doc_count":1}]}`,
	}
	for k, w := range want {
		if string(o.Aggs[k]) != w {
			t.Errorf("agg %s: got %s want %s", k, o.Aggs[k], w)
		}
	}
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	tg := fixture(t)
	for _, c := range []struct{ body, typ, reason string }{
		{`{"query":{"foo":{}}}`, "parsing_exception", "unknown query [foo]"},
		{`{"query":{"match_all":{}},"sort":["title"]}`, "search_phase_execution_exception", "all shards failed"},
		{`{"from":9995,"size":10}`, "search_phase_execution_exception", "all shards failed"},
		{`{"bogus":1}`, "parsing_exception", "Unknown key for a VALUE_NUMBER in [bogus]."},
	} {
		req, err := ParseRequest([]byte(c.body), nil)
		if err == nil {
			_, err = Search(context.Background(), []Target{tg}, req, Options{})
		}
		e, ok := err.(*Error)
		if !ok || e.Type != c.typ || e.Reason != c.reason || e.Status != 400 {
			t.Errorf("%s: got %v", c.body, err)
		}
	}
}

func TestCountAndMatchingIDs(t *testing.T) {
	t.Parallel()
	tg := fixture(t)
	n, err := Count(context.Background(), []Target{tg, tg}, []byte(`{"query":{"term":{"tag":"animal"}}}`), Options{})
	if err != nil || n != 4 {
		t.Fatalf("count %d %v", n, err)
	}
	got, err := MatchingIDs(context.Background(), tg, []byte(`{"query":{"range":{"qty":{"gte":7}}}}`), Options{})
	sort.Strings(got)
	if err != nil || strings.Join(got, ",") != "2,3" {
		t.Fatalf("ids %v %v", got, err)
	}
}
