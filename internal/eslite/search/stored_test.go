package search

import (
	"fmt"
	"testing"

	"github.com/blevesearch/bleve/v2/index/scorch"
)

// TestSourceAcrossSegments renders hits spread over several segments, some
// with deleted and replaced documents, and checks each hit carries its own
// _source: a hit's stored fields are read through its segment's offset.
func TestSourceAcrossSegments(t *testing.T) {
	t.Parallel()
	m, err := ParseMapping([]byte(`{"properties":{"n":{"type":"long"},"v":{"type":"keyword"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex(t.TempDir(), m.Clone())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	want := map[string]string{}
	ckpt := uint64(0)
	apply := func(ops []Op) {
		t.Helper()
		ckpt++
		if err := ix.Apply(ops, ckpt); err != nil {
			t.Fatal(err)
		}
	}
	put := func(i int, gen string) Op {
		src := fmt.Sprintf(`{"n":%d,"v":%q}`, i, gen)
		d, _, err := m.Prepare(fmt.Sprint(i), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		want[d.ID] = src
		return Op{ID: d.ID, Doc: d}
	}
	// Five segments of 20 documents, then replacements and deletes that
	// punch holes into the earlier ones.
	for s := range 5 {
		var ops []Op
		for i := s * 20; i < s*20+20; i++ {
			ops = append(ops, put(i, "first"))
		}
		apply(ops)
	}
	var ops []Op
	for i := 0; i < 100; i += 7 {
		ops = append(ops, put(i, "second"))
	}
	for i := 3; i < 100; i += 11 {
		ops = append(ops, Op{ID: fmt.Sprint(i)})
		delete(want, fmt.Sprint(i))
	}
	apply(ops)
	ix.SetMapping(m)
	r, release, err := ix.reader()
	if err != nil {
		t.Fatal(err)
	}
	is, ok := r.(*scorch.IndexSnapshot)
	if !ok {
		t.Fatalf("reader is a %T, not the scorch snapshot the direct read needs", r)
	}
	t.Logf("%d segments", len(is.Segments()))
	release()

	out := run(t, Target{Name: "x", Index: ix, Mapping: m}, `{"size":200,"sort":[{"n":"asc"}]}`)
	if len(out.Hits.Hits) != len(want) {
		t.Fatalf("%d hits, want %d", len(out.Hits.Hits), len(want))
	}
	for _, h := range out.Hits.Hits {
		if got := string(h.Source); got != want[h.ID] {
			t.Errorf("hit %s: _source %s, want %s", h.ID, got, want[h.ID])
		}
	}
}
