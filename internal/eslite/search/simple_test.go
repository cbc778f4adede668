package search

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// TestSimpleQueryStringSyntax checks simple_query_string against the
// semantics of Lucene's SimpleQueryParser, which Elasticsearch uses: no
// precedence between "+" and "|" (left to right), default_operator only
// where no operator is given, "-" as "NOT x OR anything", and malformed
// input read as text. Fixture titles: 1 "Quick brown fox", 2 "Lazy dog
// sleeps", 3 "Brown bread recipe", 4 "Fox news".
func TestSimpleQueryStringSyntax(t *testing.T) {
	t.Parallel()
	tg := fixture(t)
	cases := []struct {
		query, extra, want string
	}{
		{`brown fox`, ``, "1,3,4"},
		{`brown fox`, `"default_operator":"and"`, "1"},
		{`brown + fox`, ``, "1"},
		{`brown+fox`, ``, "1"},
		{`brown | fox`, `"default_operator":"and"`, "1,3,4"},
		// The Elasticsearch reference: "eggplant -frittata" is eggplant OR
		// NOT frittata with the default OR (elastic/elasticsearch#4707).
		{`brown -bread`, ``, "1,2,3,4"},
		{`brown -bread`, `"default_operator":"and"`, "1"},
		{`brown +-bread`, ``, "1"},
		{`-bread`, ``, "1,2,4"},
		{`--bread`, ``, "3"},
		// "-" followed by a space negates nothing.
		{`fox - news`, `"default_operator":"and"`, "4"},
		// Left to right: ((brown | fox) + news) and ((brown + fox) | news).
		{`brown | fox + news`, ``, "4"},
		{`brown + fox | news`, ``, "1,4"},
		{`brown + (fox | bread)`, ``, "1,3"},
		{`brown -(bread | fox)`, `"default_operator":"and"`, ""},
		{`brown -(bread | fox)`, ``, "1,2,3"},
		// An operator with nothing before it, or nothing after it, is ignored.
		{`| brown`, ``, "1,3"},
		{`+ brown`, ``, "1,3"},
		{`brown +`, ``, "1,3"},
		// "()" cancels the operator that would have applied to it.
		{`brown + () fox`, ``, "1,3,4"},
		// Unclosed parenthesis or quote: the character is ignored.
		{`(brown`, ``, "1,3"},
		{`"brown fox`, ``, "1,3,4"},
		{`"brown fox"`, ``, "1"},
		{`"fox brown"`, ``, ""},
		{`"brown fox" | lazy`, ``, "1,2"},
		{`bro*`, ``, "1,3"},
		{`BRO*`, ``, "1,3"},
		{`*`, ``, ""},
		{`brwn~1`, ``, "1,3"},
		{`brwn~0`, ``, ""},
		{`brwn`, ``, ""},
		// Escaped operators are text.
		{`brown\+fox`, ``, "1,3,4"},
		{`brown\+fox`, `"default_operator":"and"`, "1"},
		// flags switch operators off: "+" then belongs to the term.
		{`brown +fox`, `"flags":"OR|WHITESPACE"`, "1,3,4"},
		{`brown +fox`, `"flags":"AND"`, "1"},
		{`bro*`, `"flags":"NONE"`, ""},
		// minimum_should_match applies to the optional clauses.
		{`brown fox news`, `"minimum_should_match":"2"`, "1,4"},
		{`brown fox news`, `"minimum_should_match":"100%"`, ""},
	}
	for _, c := range cases {
		q, _ := json.Marshal(c.query)
		body := `{"query":{"simple_query_string":{"query":` + string(q) + `,"fields":["title"]`
		if c.extra != "" {
			body += "," + c.extra
		}
		body += `}}}`
		got := sortedIDs(run(t, tg, body))
		if got != c.want {
			t.Errorf("%s: got [%s] want [%s]", body, got, c.want)
		}
	}
}

func TestSimpleQueryStringUnknownFlag(t *testing.T) {
	t.Parallel()
	_, err := ParseRequest([]byte(`{"query":{"simple_query_string":{"query":"a","flags":"AND|BOGUS"}}}`), nil)
	if e, ok := err.(*Error); !ok || e.Reason != "Unknown simple_query_string flag [BOGUS]" {
		t.Fatalf("got %v", err)
	}
}

func sortedIDs(o searchOut) string {
	var s []string
	for _, h := range o.Hits.Hits {
		s = append(s, h.ID)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// TestConstantScoreEarlyStop checks that a search which stops counting at
// track_total_hits (every match scoring the same) returns the same hits as
// one that counts everything, and the total Elasticsearch reports.
func TestConstantScoreEarlyStop(t *testing.T) {
	t.Parallel()
	m, err := ParseMapping([]byte(`{"properties":{"tag":{"type":"keyword"},"n":{"type":"long"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex("", m.Clone())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	var ops []Op
	for i := range 50 {
		d, _, err := m.Prepare(fmt.Sprintf("d%02d", i), []byte(fmt.Sprintf(`{"tag":"a","n":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, Op{ID: d.ID, Doc: d})
	}
	if err := ix.Apply(ops, 50); err != nil {
		t.Fatal(err)
	}
	tg := Target{Name: "many", Index: ix, Mapping: m}
	const query = `"query":{"bool":{"filter":[{"term":{"tag":"a"}},{"range":{"n":{"gte":0}}}]}}`
	// The same three documents as a search that counts every match.
	exact := ids(run(t, tg, `{"size":3,"track_total_hits":true,`+query+`}`))
	if strings.Count(exact, ",") != 2 {
		t.Fatalf("exact search: hits %q", exact)
	}
	for _, c := range []struct {
		track, total int
		relation     string
	}{{10, 10, "gte"}, {49, 49, "gte"}, {50, 50, "eq"}} {
		track := fmt.Sprint(c.track)
		o := run(t, tg, `{"size":3,"track_total_hits":`+track+`,`+query+`}`)
		if got := ids(o); got != exact {
			t.Errorf("track %s: hits %s, want %s", track, got, exact)
		}
		if o.Hits.Total == nil || o.Hits.Total.Value != c.total || o.Hits.Total.Relation != c.relation {
			t.Errorf("track %s: total %+v, want %d %s", track, o.Hits.Total, c.total, c.relation)
		}
	}
}
