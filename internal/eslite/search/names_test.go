package search

import (
	"testing"

	"github.com/blevesearch/bleve/v2/document"
	index "github.com/blevesearch/bleve_index_api"
)

// TestNamesFieldIndexesAsKeywordFields: a document's _field_names, one
// field with a term per name, gives bleve the terms, frequencies, options
// and field length that one keyword field per name gave, so indices
// written either way are the same.
func TestNamesFieldIndexesAsKeywordFields(t *testing.T) {
	names := []string{"name", "name.keyword", "tags", "tags.keyword", "owner", "owner.city"}
	kw := keywordAnalyzer()
	want := index.TokenFrequencies{}
	length := 0
	for _, n := range names {
		f := document.NewTextFieldCustom(fieldFieldNames, nil, []byte(n), index.IndexField, kw)
		f.Analyze()
		want.MergeAll(fieldFieldNames, f.AnalyzedTokenFrequencies())
		length += f.AnalyzedLength()
		if f.Options() != (&namesField{}).Options() {
			t.Fatalf("options %v, keyword fields had %v", (&namesField{}).Options(), f.Options())
		}
	}
	f := &namesField{names: names}
	f.Analyze()
	if f.AnalyzedLength() != length {
		t.Errorf("field length %d, keyword fields gave %d", f.AnalyzedLength(), length)
	}
	got := f.AnalyzedTokenFrequencies()
	if len(got) != len(want) {
		t.Fatalf("%d terms, want %d", len(got), len(want))
	}
	for term, w := range want {
		g := got[term]
		if g == nil || string(g.Term) != string(w.Term) || g.Frequency() != w.Frequency() || len(g.Locations) != 0 || len(w.Locations) != 0 {
			t.Errorf("term %q: %+v, keyword fields gave %+v", term, g, w)
		}
	}
}

// BenchmarkAnalyzeRow analyses one document shaped as a Walsearch row (a
// long, a text with its keyword, a float, a text array and a date, under
// dynamic mapping) as bleve does before building a segment; its
// allocations are what the garbage collector pays per indexed row.
func BenchmarkAnalyzeRow(b *testing.B) {
	m := &Mapping{}
	src := `{"id":12345,"name":"item 12345","price":123.45,"tags":["a","b"],"at":"2026-12-07T04:45:27.123456Z"}`
	d, _, err := m.Prepare("12345", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	ix, err := OpenIndex("", m)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	b.ReportAllocs()
	for b.Loop() {
		bd := ix.bleveDoc("12345", d)
		for _, f := range bd.Fields {
			f.Analyze()
		}
	}
}
