package search

import (
	"context"
	"math"

	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
)

// numPrecisionStep is how many low bits each coarser term of a numeric value
// drops. bleve's own numeric fields use 4, which indexes 16 terms per value;
// 8 indexes 8 (shifts 0, 8, ..., 56), halving the postings a number, date or
// boolean costs to index, merge and keep as doc values. A range then reads at
// most 255 existing terms at each end of each precision level instead of 15,
// found by walking the term dictionary, so it stays a bounded union of
// postings. Indices written with step 4 hold every term step 8 looks for
// (multiples of 8 are multiples of 4), so they stay searchable.
const numPrecisionStep = 8

// numField is a numeric value indexed as prefix-coded terms at every
// numPrecisionStep shift. The shift-0 term is the exact value; doc values
// (which hold every term of the field) are read through it. Frequencies and
// norms are skipped: numeric queries score a constant.
type numField struct {
	name  string
	value numeric.PrefixCoded // shift 0
	opts  index.FieldIndexingOptions
	freqs index.TokenFrequencies
}

func newNumField(name string, i64 int64, opts index.FieldIndexingOptions) *numField {
	return &numField{name: name, value: numeric.MustNewPrefixCodedInt64(i64, 0), opts: opts | index.SkipFreqNorm}
}

func (f *numField) Name() string                                     { return f.name }
func (f *numField) Value() []byte                                    { return f.value }
func (f *numField) ArrayPositions() []uint64                         { return nil }
func (f *numField) EncodedFieldType() byte                           { return 'n' }
func (f *numField) Options() index.FieldIndexingOptions              { return f.opts }
func (f *numField) AnalyzedLength() int                              { return 64 / numPrecisionStep }
func (f *numField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.freqs }
func (f *numField) NumPlainTextBytes() uint64                        { return 8 }

// Number is the value as bleve's numeric fields report it.
func (f *numField) Number() (float64, error) {
	i64, err := f.value.Int64()
	if err != nil {
		return 0, err
	}
	return numeric.Int64ToFloat64(i64), nil
}

// Analyze builds the term frequencies directly: the terms of a number are
// known, so no token stream is needed.
func (f *numField) Analyze() {
	i64, _ := f.value.Int64()
	n := 64 / numPrecisionStep
	f.freqs = make(index.TokenFrequencies, n)
	tfs := make([]index.TokenFreq, n)
	for s := 0; s < n; s++ {
		term := []byte(f.value)
		if s > 0 {
			term = numeric.MustNewPrefixCodedInt64(i64, uint(s*numPrecisionStep))
		}
		tfs[s].Term = term
		f.freqs[string(term)] = &tfs[s]
	}
}

// numRangeQuery matches documents with a numeric value in [lo, hi] (the
// sortable int64 encodings, both inclusive) in one field indexed as numField
// terms. It scores nothing by itself; constant wraps it.
type numRangeQuery struct {
	field  string
	lo, hi int64
}

// newNumRange converts float bounds the way bleve's numeric range does.
func newNumRange(field string, lo, hi *float64, incLo, incHi bool) *numRangeQuery {
	q := &numRangeQuery{field: field, lo: math.MinInt64, hi: math.MaxInt64}
	if lo != nil {
		q.lo = numeric.Float64ToInt64(*lo)
		if !incLo && q.lo != math.MaxInt64 {
			q.lo++
		}
	}
	if hi != nil {
		q.hi = numeric.Float64ToInt64(*hi)
		if !incHi && q.hi != math.MinInt64 {
			q.hi--
		}
	}
	return q
}

func (q *numRangeQuery) Searcher(ctx context.Context, r index.IndexReader, _ mapping.IndexMapping, opts bsearch.SearcherOptions) (bsearch.Searcher, error) {
	var terms [][]byte
	for _, rg := range splitNumRange(q.lo, q.hi) {
		dict, err := r.FieldDictRange(q.field, rg[0], rg[1])
		if err != nil {
			return nil, err
		}
		for {
			de, err := dict.Next()
			if err != nil {
				_ = dict.Close()
				return nil, err
			}
			if de == nil {
				break
			}
			terms = append(terms, []byte(de.Term))
		}
		if err := dict.Close(); err != nil {
			return nil, err
		}
	}
	return searcher.NewMultiTermSearcherBytes(ctx, r, terms, q.field, 1, opts, false)
}

// splitNumRange splits [lo, hi] into term ranges, coarsest terms in the
// middle and exact ones at the edges (Lucene's NumericUtils.splitRange with
// numPrecisionStep); each range is the first and last prefix-coded term.
func splitNumRange(lo, hi int64) [][2][]byte {
	var out [][2][]byte
	if lo > hi {
		return out
	}
	add := func(lo, hi int64, shift uint) {
		hi |= (int64(1) << shift) - 1
		out = append(out, [2][]byte{numeric.MustNewPrefixCodedInt64(lo, shift), numeric.MustNewPrefixCodedInt64(hi, shift)})
	}
	const step = numPrecisionStep
	for shift := uint(0); ; shift += step {
		diff := int64(1) << (shift + step)
		mask := (int64(1)<<step - 1) << shift
		hasLower := lo&mask != 0
		hasUpper := hi&mask != mask
		nextLo, nextHi := lo&^mask, hi&^mask
		if hasLower {
			nextLo = (lo + diff) &^ mask
		}
		if hasUpper {
			nextHi = (hi - diff) &^ mask
		}
		if shift+step >= 64 || nextLo > nextHi || nextLo < lo || nextHi > hi {
			add(lo, hi, shift)
			return out
		}
		if hasLower {
			add(lo, lo|mask, shift)
		}
		if hasUpper {
			add(hi&^mask, hi, shift)
		}
		lo, hi = nextLo, nextHi
	}
}

// Size is the memory the field holds, for bleve's accounting.
func (f *numField) Size() int {
	n := 64 / numPrecisionStep
	return 96 + len(f.name) + len(f.value) + n*(48+len(f.value))
}
