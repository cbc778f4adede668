package search

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// sortSpec is one sort clause.
type sortSpec struct {
	field        string
	desc         bool
	missingFirst bool
	missingValue *node  // custom "missing" value; nil for _first/_last
	mode         string // "", "min", "max"
	unmappedType string
}

func parseSort(src []byte, v *node) ([]sortSpec, *Error) {
	items := []*node{v}
	if v.kind == kArray {
		items = v.vals
	}
	var out []sortSpec
	for _, it := range items {
		switch it.kind {
		case kString:
			out = append(out, sortSpec{field: it.str, desc: it.str == "_score"})
		case kObject:
			for i, name := range it.keys {
				s := sortSpec{field: name, desc: name == "_score"}
				val := it.vals[i]
				switch val.kind {
				case kString:
					if err := s.setOrder(src, val); err != nil {
						return nil, err
					}
				case kObject:
					for j, k := range val.keys {
						pv := val.vals[j]
						switch k {
						case "order":
							if err := s.setOrder(src, pv); err != nil {
								return nil, err
							}
						case "missing":
							// "_last" (the default), "_first", or a custom
							// value used as the sort value of documents
							// without the field.
							switch {
							case pv.kind == kString && pv.str == "_first":
								s.missingFirst = true
							case pv.kind == kString && pv.str == "_last":
							case pv.kind == kString || pv.kind == kNumber || pv.kind == kBool:
								s.missingValue = pv
							default:
								return nil, parsingError(src, pv.off, "[field_sort] missing doesn't support values of type: "+pv.kind.String())
							}
						case "mode":
							if pv.kind != kString || (pv.str != "min" && pv.str != "max") {
								return nil, illegalArgument("eslite supports only [min] and [max] sort modes")
							}
							s.mode = pv.str
						case "unmapped_type":
							s.unmappedType = pv.str
						case "format", "numeric_type":
						default:
							return nil, parsingError(src, val.koffs[j], "[field_sort] unknown field ["+k+"]")
						}
					}
				default:
					return nil, parsingError(src, val.off, "[field_sort] unknown token ["+val.kind.String()+"]")
				}
				out = append(out, s)
			}
		default:
			return nil, parsingError(src, it.off, "[sort] unknown token ["+it.kind.String()+"]")
		}
	}
	return out, nil
}

func (s *sortSpec) setOrder(src []byte, v *node) *Error {
	switch strings.ToLower(v.str) {
	case "asc":
		s.desc = false
	case "desc":
		s.desc = true
	default:
		return illegalArgument("Unknown SortOrder [" + v.str + "]")
	}
	return nil
}

// sortVal is one document's value for one sort clause.
type sortVal struct {
	missing bool
	num     float64
	i64     int64 // the exact value when isInt (num is its nearest float64)
	isInt   bool
	str     string
	isStr   bool
}

// resolvedSort is a sort clause bound to one target's mapping.
type resolvedSort struct {
	spec    sortSpec
	kind    int // sortScore, sortDoc, sortNum, sortStr
	integer bool
	missing bool // field unmapped in this target
	// custom is the value documents without the field sort by, when the
	// clause gives a custom "missing" value.
	custom *sortVal
}

const (
	sortScore = iota
	sortDoc
	sortNum
	sortStr
	sortShardDoc // a point in time's tiebreaker: index position << 32 | document
)

// missingNum is the number Elasticsearch shows (and compares) for a document
// without a value: Long.MAX_VALUE when missing sorts last in ascending order.
func (rs *resolvedSort) missingNum() float64 {
	last := !rs.spec.missingFirst
	if last != rs.spec.desc {
		return math.MaxInt64
	}
	return math.MinInt64
}

// missingVal is missingNum as a whole number.
func (rs *resolvedSort) missingVal() sortVal {
	if rs.missingNum() > 0 {
		return sortVal{num: rs.missingNum(), i64: math.MaxInt64, isInt: true}
	}
	return sortVal{num: rs.missingNum(), i64: math.MinInt64, isInt: true}
}

// compareKeys orders two documents by the sort clauses (ties return 0).
func compareKeys(a, b []sortVal, sorts []resolvedSort) int {
	for i := range sorts {
		c := compareVal(a[i], b[i], &sorts[i])
		if c != 0 {
			return c
		}
	}
	return 0
}

func compareVal(a, b sortVal, rs *resolvedSort) int {
	if a.missing || b.missing {
		if a.missing && b.missing {
			return 0
		}
		// Missing string values sort by position, independent of order.
		if a.isStr || b.isStr || rs.kind == sortStr {
			if a.missing == rs.spec.missingFirst {
				return -1
			}
			return 1
		}
	}
	var c int
	if rs.kind == sortStr || a.isStr || b.isStr {
		c = strings.Compare(a.str, b.str)
	} else {
		if a.missing {
			a = rs.missingVal()
		}
		if b.missing {
			b = rs.missingVal()
		}
		c = cmpNum(a.num, a.i64, a.isInt, b.num, b.i64, b.isInt)
	}
	if rs.spec.desc {
		c = -c
	}
	return c
}

// renderSortValue is the JSON value shown in a hit's "sort" array.
func renderSortValue(v sortVal, rs *resolvedSort) any {
	switch rs.kind {
	case sortScore:
		return float32(v.num)
	case sortDoc, sortShardDoc:
		return int64(v.num)
	case sortStr:
		if v.missing {
			return nil
		}
		return v.str
	}
	if v.missing {
		if rs.integer {
			if rs.missingNum() > 0 {
				return int64(math.MaxInt64)
			}
			return int64(math.MinInt64)
		}
		if rs.missingNum() > 0 {
			return math.MaxFloat64
		}
		return -math.MaxFloat64
	}
	if rs.integer {
		if v.isInt {
			return v.i64
		}
		return int64(v.num)
	}
	return v.num
}

// afterVal converts a search_after value into a sort value for comparison.
func afterVal(n *node, rs *resolvedSort) (sortVal, bool) {
	switch n.kind {
	case kNull:
		return sortVal{missing: true, isStr: rs.kind == sortStr}, true
	case kNumber:
		f, ok := nodeFloat(n)
		if rs.kind == sortStr {
			return sortVal{str: n.str, isStr: true}, true
		}
		if i, err := strconv.ParseInt(n.str, 10, 64); err == nil {
			return sortVal{num: float64(i), i64: i, isInt: true}, true
		}
		if ok && (f >= math.MaxInt64 || f <= math.MinInt64) {
			return sortVal{num: f}, true
		}
		return sortVal{num: f}, ok
	case kString:
		if rs.kind == sortStr {
			return sortVal{str: n.str, isStr: true}, true
		}
		if i, err := strconv.ParseInt(n.str, 10, 64); err == nil {
			return sortVal{num: float64(i), i64: i, isInt: true}, true
		}
		f, ok := nodeFloat(n)
		return sortVal{num: f}, ok
	case kBool:
		if rs.kind == sortStr {
			return sortVal{}, false
		}
		return sortVal{num: boolNum(n.b)}, true
	}
	return sortVal{}, false
}

// idBytesLess orders internal document ids (scorch uses big-endian numbers).
func idBytesLess(a, b []byte) int { return bytes.Compare(a, b) }
