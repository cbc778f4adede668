package search

import (
	"context"
	"errors"
	"math"

	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
)

// numShifts are the shifts at which a numeric value is indexed: the exact
// value (shift 0) and coarser terms that drop that many low bits. bleve's own
// numeric fields use every multiple of 4, 16 terms per value; these are 9,
// which nearly halves the postings a number, date or boolean costs to index,
// merge and keep as doc values. The fine steps of 4 at the bottom keep a
// narrow range as cheap to search as with bleve's (at most 15 terms at each
// end of the two finest levels) for whole-number fields, which index the
// number itself (numTerm); wider ranges read at most 255 existing terms at
// each end of a coarser level, found by walking the term dictionary. Fields
// of other numbers index IEEE 754 bits, where the levels a range needs depend
// on the magnitudes; every shift here is one bleve's numeric fields also use.
var numShifts = [...]uint{0, 4, 8, 16, 24, 32, 40, 48, 56}

// numField is a numeric value indexed as prefix-coded terms at numShifts.
// The shift-0 term is the exact value; doc values (which hold every term of
// the field) are read through it. Frequencies and norms are skipped:
// numeric queries score a constant.
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
func (f *numField) AnalyzedLength() int                              { return len(numShifts) }
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
// The coarser terms share one allocation (each capped at its length).
func (f *numField) Analyze() {
	i64, _ := f.value.Int64()
	f.freqs = make(index.TokenFrequencies, len(numShifts))
	tfs := make([]index.TokenFreq, len(numShifts))
	buf := make([]byte, numTermBytes)
	for i, shift := range numShifts {
		term := []byte(f.value)
		if shift > 0 {
			var err error
			term, buf, err = numeric.NewPrefixCodedInt64Prealloc(i64, shift, buf)
			if err != nil {
				panic(err) // every shift in numShifts is below 64
			}
			term = term[:len(term):len(term)]
		}
		tfs[i].Term = term
		f.freqs[string(term)] = &tfs[i]
	}
}

// numTermBytes is the size of the terms of a number above shift 0: for
// each shift, a byte for the shift and 7 bits a byte of what is left.
const numTermBytes = 10 + 9 + 8 + 7 + 6 + 5 + 4 + 3

// numRangeQuery matches documents with a numeric value in [lo, hi] (the
// sortable int64 encodings, both inclusive) in one field indexed as numField
// terms. It scores nothing by itself; constant wraps it.
type numRangeQuery struct {
	field  string
	lo, hi int64
}

// newNumRange converts float bounds the way bleve's numeric range does, into
// the encoding f's values are indexed with (numTerm).
func newNumRange(f *field, name string, lo, hi *float64, incLo, incHi bool) *numRangeQuery {
	q := &numRangeQuery{field: name, lo: math.MinInt64, hi: math.MaxInt64}
	if lo != nil {
		q.lo = numTerm(f, *lo)
		if !incLo && q.lo != math.MaxInt64 {
			q.lo++
		}
	}
	if hi != nil {
		q.hi = numTerm(f, *hi)
		if !incHi && q.hi != math.MinInt64 {
			q.hi--
		}
	}
	return q
}

// integral reports whether f holds whole numbers: integer types, dates
// (epoch milliseconds) and booleans (0 and 1).
func integral(f *field) bool {
	return isIntegerType(f.typ) || f.typ == typeDate || f.typ == typeBoolean
}

// numTerm is the int64 a value of f is indexed as. Whole-number fields index
// the number itself, so that the values of a narrow range differ in their low
// bits, which the fine levels of numShifts cover; other numbers index their
// sortable IEEE 754 bits, as bleve does. Both orders match the numbers'.
// x is a whole number for an integral field (queries round their bounds).
func numTerm(f *field, x float64) int64 {
	if !integral(f) {
		return numeric.Float64ToInt64(x)
	}
	switch {
	case x >= math.MaxInt64:
		return math.MaxInt64
	case x <= math.MinInt64:
		return math.MinInt64
	}
	return int64(x)
}

// numValue is the number a shift-0 term of f holds.
func numValue(f *field, i64 int64) float64 {
	if integral(f) {
		return float64(i64)
	}
	return numeric.Int64ToFloat64(i64)
}

func (q *numRangeQuery) Searcher(ctx context.Context, r index.IndexReader, _ mapping.IndexMapping, opts bsearch.SearcherOptions) (bsearch.Searcher, error) {
	var terms [][]byte
	var contains index.FieldDictContains
	defer func() {
		if fd, ok := contains.(index.FieldDict); ok {
			_ = fd.Close()
		}
	}()
	for _, rg := range splitNumRange(q.lo, q.hi) {
		lo, _ := numeric.PrefixCoded(rg[0]).Int64()
		hi, _ := numeric.PrefixCoded(rg[1]).Int64()
		shift, _ := numeric.PrefixCoded(rg[0]).Shift()
		if (hi-lo)>>shift < fewCandidates {
			// A piece of a fine level: looking its few terms up is cheaper
			// than walking the dictionary.
			if contains == nil {
				irr, ok := r.(index.IndexReaderContains)
				if !ok {
					return nil, errors.New("search index reader cannot look terms up")
				}
				fd, err := irr.FieldDictContains(q.field)
				if err != nil {
					return nil, err
				}
				contains = fd
			}
			for v := lo; ; v += int64(1) << shift {
				t := numeric.MustNewPrefixCodedInt64(v, shift)
				found, err := contains.Contains(t)
				if err != nil {
					return nil, err
				}
				if found {
					terms = append(terms, t)
				}
				if v == hi {
					break
				}
			}
			continue
		}
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

// fewCandidates is the size of a range piece up to which its terms are
// looked up one by one rather than read by walking the term dictionary.
const fewCandidates = 16

// splitNumRange splits [lo, hi] into term ranges, coarsest terms in the
// middle and exact ones at the edges (Lucene's NumericUtils.splitRange over
// the levels of numShifts); each range is the first and last prefix-coded
// term.
func splitNumRange(lo, hi int64) [][2][]byte {
	var out [][2][]byte
	if lo > hi {
		return out
	}
	add := func(lo, hi int64, shift uint) {
		hi |= (int64(1) << shift) - 1
		out = append(out, [2][]byte{numeric.MustNewPrefixCodedInt64(lo, shift), numeric.MustNewPrefixCodedInt64(hi, shift)})
	}
	for i, shift := range numShifts {
		next := uint(64)
		if i+1 < len(numShifts) {
			next = numShifts[i+1]
		}
		step := next - shift
		diff := int64(1) << next
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
		if next >= 64 || nextLo > nextHi || nextLo < lo || nextHi > hi {
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
	return out
}

// Size is the memory the field holds, for bleve's accounting.
func (f *numField) Size() int {
	return 96 + len(f.name) + len(f.value) + len(numShifts)*(48+len(f.value))
}
