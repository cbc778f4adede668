package search

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/index/scorch"
	blevemapping "github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"
)

// TestNumericRangeMatchesBruteForce indexes numbers spread over the whole
// double range and checks range queries of every bound kind against a scan.
// Every other document is indexed as bleve's own numeric field does it
// (precision step 4), which numRangeQuery reads too. A long field checks the
// whole-number encoding the same way, with fractional bounds.
func TestNumericRangeMatchesBruteForce(t *testing.T) {
	m, err := ParseMapping([]byte(`{"properties":{"x":{"type":"double"},"n":{"type":"long"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex("", m.Clone())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	special := []float64{0, -0.5, 0.5, 1, -1, 255, 256, 257, -256, 65535, 65536, 1e15, -1e15, 1e300, -1e300, math.SmallestNonzeroFloat64}
	var xs []float64
	var ns []int64
	var ops []Op
	oldBatch := ix.bi.NewBatch()
	for i := range 600 {
		var x float64
		switch {
		case i < len(special):
			x = special[i]
		case i%3 == 0:
			x = float64(rng.IntN(2000) - 1000)
		case i%3 == 1:
			x = rng.NormFloat64() * 1e6
		default:
			x = math.Ldexp(rng.Float64()*2-1, rng.IntN(200)-100)
		}
		xs = append(xs, x)
		n := int64(math.Trunc(math.Max(-1e15, math.Min(1e15, x))))
		ns = append(ns, n)
		src := fmt.Sprintf(`{"x":%s,"n":%d}`, strconv.FormatFloat(x, 'g', -1, 64), n)
		d, _, err := m.Prepare(strconv.Itoa(i), []byte(src))
		if err != nil {
			t.Fatalf("prepare %s: %v", src, err)
		}
		if i%2 == 0 {
			ops = append(ops, Op{ID: d.ID, Doc: d})
			continue
		}
		old := document.NewDocument(d.ID)
		old.AddField(document.NewNumericFieldWithIndexingOptions("x", nil, x, index.IndexField|index.DocValues))
		old.AddField(newNumField("n", n, index.IndexField|index.DocValues))
		old.AddField(document.NewTextFieldCustom(fieldSource, nil, d.Source, index.StoreField, ix.keyword))
		if err := oldBatch.IndexAdvanced(old); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.bi.Batch(oldBatch); err != nil {
		t.Fatal(err)
	}
	if err := ix.Apply(ops, 1); err != nil {
		t.Fatal(err)
	}
	ix.SetMapping(m)
	tg := Target{Name: "n", Index: ix, Mapping: m, MaxResultWindow: 10000}
	bounds := append([]float64{math.Inf(-1), math.Inf(1)}, special...)
	for range 40 {
		bounds = append(bounds, xs[rng.IntN(len(xs))], float64(rng.IntN(3000)-1500), rng.NormFloat64()*1e6, float64(rng.IntN(3000)-1500)+0.5)
	}
	for i := range 300 {
		lo, hi := bounds[rng.IntN(len(bounds))], bounds[rng.IntN(len(bounds))]
		loOp, hiOp := []string{"gt", "gte"}[i%2], []string{"lt", "lte"}[(i/2)%2]
		field, vals := "x", xs
		if i%3 == 2 {
			field, vals = "n", make([]float64, len(ns))
			for j, n := range ns {
				vals[j] = float64(n)
			}
		}
		var want []string
		for j, x := range vals {
			okLo := x > lo || loOp == "gte" && x == lo
			okHi := x < hi || hiOp == "lte" && x == hi
			if okLo && okHi {
				want = append(want, strconv.Itoa(j))
			}
		}
		var conds []string
		if !math.IsInf(lo, 0) {
			conds = append(conds, fmt.Sprintf("%q:%s", loOp, strconv.FormatFloat(lo, 'g', -1, 64)))
		}
		if !math.IsInf(hi, 0) {
			conds = append(conds, fmt.Sprintf("%q:%s", hiOp, strconv.FormatFloat(hi, 'g', -1, 64)))
		}
		if math.IsInf(lo, 1) || math.IsInf(hi, -1) {
			continue
		}
		if beyondLong := func(x float64) bool { return !math.IsInf(x, 0) && math.Abs(x) >= 1<<63 }; field == "n" && (beyondLong(lo) || beyondLong(hi)) {
			continue // a bound beyond long fails the search, as in Elasticsearch (TestLongPrecision)
		}
		body := fmt.Sprintf(`{"size":10000,"query":{"range":{%q:{%s}}}}`, field, strings.Join(conds, ","))
		out := run(t, tg, body)
		var got []string
		for _, h := range out.Hits.Hits {
			got = append(got, h.ID)
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: got %d hits, want %d", body, len(got), len(want))
		}
	}
}

// TestSplitNumRangeCoversExactly checks that the term ranges of a split
// cover [lo, hi] and nothing else, at the edges of the int64 range too.
func TestSplitNumRangeCoversExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := [][2]int64{{math.MinInt64, math.MaxInt64}, {0, 0}, {-1, 0}, {255, 256}, {math.MaxInt64 - 300, math.MaxInt64}, {math.MinInt64, math.MinInt64 + 300}}
	for range 200 {
		a, b := rng.Int64()>>uint(rng.IntN(60)), rng.Int64()>>uint(rng.IntN(60))
		if rng.IntN(2) == 0 {
			a = -a
		}
		if a > b {
			a, b = b, a
		}
		cases = append(cases, [2]int64{a, b})
	}
	for _, c := range cases {
		for _, probe := range []int64{c[0], c[1], c[0] - 1, c[1] + 1, c[0] + (c[1]-c[0])/2, c[0] + 1, c[1] - 1} {
			inside := probe >= c[0] && probe <= c[1]
			if (probe == c[0]-1 && c[0] == math.MinInt64) || (probe == c[1]+1 && c[1] == math.MaxInt64) {
				continue // wrapped around
			}
			if got := covered(splitNumRange(c[0], c[1]), probe); got != inside {
				t.Fatalf("split [%d, %d]: probe %d covered=%v, want %v", c[0], c[1], probe, got, inside)
			}
		}
	}
}

// covered reports whether exactly one term range holds one of v's terms.
func covered(ranges [][2][]byte, v int64) bool {
	n := 0
	f := newNumField("f", v, 0)
	f.Analyze()
	for term := range f.freqs {
		for _, r := range ranges {
			if term >= string(r[0]) && term <= string(r[1]) {
				n++
			}
		}
	}
	return n == 1
}

// TestExistsOnNumbersDatesAndBooleans checks exists, which finds numbers,
// dates and booleans through their own terms and objects through
// _field_names, including an object whose only value is a number.
func TestExistsOnNumbersDatesAndBooleans(t *testing.T) {
	m, err := ParseMapping(nil)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex("", m.Clone())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	docs := []string{`{"o":{"n":-3}}`, `{"o":{"s":"x"}}`, `{"d":"2024-01-01","b":false}`, `{"b":true,"n":0}`, `{}`}
	var ops []Op
	for i, src := range docs {
		d, _, err := m.Prepare(strconv.Itoa(i), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, Op{ID: d.ID, Doc: d})
	}
	if err := ix.Apply(ops, 1); err != nil {
		t.Fatal(err)
	}
	ix.SetMapping(m)
	tg := Target{Name: "e", Index: ix, Mapping: m, MaxResultWindow: 100}
	for _, c := range []struct{ query, want string }{
		{`{"exists":{"field":"o"}}`, "0 1"},
		{`{"exists":{"field":"o.n"}}`, "0"},
		{`{"exists":{"field":"o.s"}}`, "1"},
		{`{"exists":{"field":"d"}}`, "2"},
		{`{"exists":{"field":"b"}}`, "2 3"},
		{`{"exists":{"field":"n"}}`, "3"},
		{`{"exists":{"field":"missing"}}`, ""},
		{`{"range":{"o.n":{}}}`, "0"},
		{`{"bool":{"must_not":{"exists":{"field":"b"}}}}`, "0 1 4"},
	} {
		out := run(t, tg, `{"size":100,"query":`+c.query+`}`)
		var got []string
		for _, h := range out.Hits.Hits {
			got = append(got, h.ID)
		}
		sort.Strings(got)
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("%s: got [%s], want [%s]", c.query, g, c.want)
		}
	}
}

// TestOpenRebuildsOlderFormat opens an index written (and persisted)
// without the current format: it must come back empty with checkpoint 0, for
// the engine to replay every document into it; and the rebuilt index must
// hold the current format on disk, so that the next open keeps it.
func TestOpenRebuildsOlderFormat(t *testing.T) {
	dir := t.TempDir()
	im := blevemapping.NewIndexMapping()
	old, err := bleve.NewUsing(dir, im, scorch.Name, scorch.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := document.NewDocument("1")
	doc.AddField(document.NewNumericFieldWithIndexingOptions("n", nil, 5, index.IndexField|index.DocValues))
	b := old.NewBatch()
	if err := b.IndexAdvanced(doc); err != nil {
		t.Fatal(err)
	}
	b.SetInternal(checkpointKey, binary.BigEndian.AppendUint64(nil, 7))
	if err := old.Batch(b); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := ParseMapping([]byte(`{"properties":{"n":{"type":"long"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if n, ck := ix.DocCount(), ix.Checkpoint(); n != 0 || ck != 0 {
		t.Fatalf("reopened older index: %d documents, checkpoint %d; want 0, 0", n, ck)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := bleve.OpenUsing(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if f, err := raw.GetInternal(formatKey); err != nil || string(f) != indexFormat {
		t.Fatalf("format on disk after rebuild: %q, %v; want %q", f, err, indexFormat)
	}
}

// TestNumFieldTerms: a number's terms are bleve's prefix-coded terms at
// each of numShifts, each its own slice (appending to one cannot touch
// another), however they are allocated.
func TestNumFieldTerms(t *testing.T) {
	want := 0
	for _, shift := range numShifts[1:] {
		want += len(numeric.MustNewPrefixCodedInt64(0, shift))
	}
	if numTermBytes != want {
		t.Fatalf("numTermBytes = %d, the terms take %d", numTermBytes, want)
	}
	for _, v := range []int64{0, 1, -1, 1733546727123, math.MaxInt64, math.MinInt64} {
		f := newNumField("n", v, index.IndexField)
		f.Analyze()
		if len(f.freqs) != len(numShifts) {
			t.Fatalf("%d: %d terms, want %d", v, len(f.freqs), len(numShifts))
		}
		for _, shift := range numShifts {
			term := numeric.MustNewPrefixCodedInt64(v, shift)
			tf := f.freqs[string(term)]
			if tf == nil {
				t.Fatalf("%d: no term at shift %d", v, shift)
			}
			if cap(tf.Term) != len(tf.Term) {
				t.Errorf("%d, shift %d: term of length %d has capacity %d", v, shift, len(tf.Term), cap(tf.Term))
			}
		}
	}
}
