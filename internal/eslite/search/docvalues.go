package search

import (
	"bytes"
	"math"
	"sort"
	"strconv"

	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"
)

// docvalueField is one entry of "docvalue_fields": a field name or pattern
// and an optional format.
type docvalueField struct {
	field  string
	format string
}

func parseDocvalueFields(src []byte, v *node) ([]docvalueField, *Error) {
	items := []*node{v}
	if v.kind == kArray {
		items = v.vals
	}
	var out []docvalueField
	for _, it := range items {
		switch it.kind {
		case kString:
			out = append(out, docvalueField{field: it.str})
		case kObject:
			var f docvalueField
			for i, k := range it.keys {
				val := it.vals[i]
				switch k {
				case "field":
					f.field = val.str
				case "format":
					f.format = val.str
				default:
					return nil, parsingError(src, it.koffs[i], "[field_and_format] unknown field ["+k+"]")
				}
			}
			if f.field == "" {
				return nil, illegalArgument("[field_and_format] requires field")
			}
			out = append(out, f)
		default:
			return nil, xContentError(src, it.off, "[docvalue_fields] failed to parse field [docvalue_fields]")
		}
	}
	return out, nil
}

// dvFetch is the resolved docvalue_fields of one target: which stored
// doc-value field answers under which name, and how to format it.
type dvFetch struct {
	names  []string // response names, in request order
	fields map[string]*dvOut
	reader index.DocValueReader
}

type dvOut struct {
	f     *field
	dates *dateFormat // nil: the field's own format
}

// resolveDocvalueFields binds docvalue_fields to a target's mapping as
// Elasticsearch's fetch phase does: unmapped names are skipped, text fields
// fail (they have no doc values), patterns expand to the mapped fields with
// doc values.
func (r *targetRun) resolveDocvalueFields(req *Request) (*dvFetch, *Error) {
	if len(req.docvalueFields) == 0 {
		return nil, nil
	}
	out := &dvFetch{fields: map[string]*dvOut{}}
	var leaves map[string]*field
	for _, spec := range req.docvalueFields {
		var matched []string
		if isPattern(spec.field) {
			if leaves == nil {
				leaves = r.m.leafPaths()
			}
			for p, f := range leaves {
				if wildcardMatch(spec.field, p) && f.typ != typeText && f.hasDocValues() {
					matched = append(matched, p)
				}
			}
			sort.Strings(matched)
		} else if f := r.m.lookup(spec.field); f != nil && f.typ != typeObject {
			if f.typ == typeText {
				return nil, textFieldDataError(spec.field)
			}
			matched = []string{spec.field}
		}
		for _, p := range matched {
			f := r.m.lookup(p)
			o := &dvOut{f: f}
			if spec.format != "" {
				switch {
				case f.typ == typeDate:
					df, err := compileDateFormat(spec.format)
					if err != nil {
						return nil, illegalArgument("Invalid format: [" + spec.format + "]: " + err.Error())
					}
					o.dates = df
				case f.typ == typeKeyword || f.typ == typeBoolean:
					return nil, illegalArgument("Field [" + p + "] of type [" + f.typ + "] does not support custom formats")
				default:
					return nil, illegalArgument("eslite does not support [format] on numeric docvalue_fields; field [" + p + "]")
				}
			}
			if _, seen := out.fields[p]; !seen {
				out.names = append(out.names, p)
			}
			out.fields[p] = o
		}
	}
	if len(out.names) == 0 {
		return out, nil
	}
	dvr, err := r.reader.DocValueReader(out.names)
	if err != nil {
		return nil, newError(500, "exception", err.Error())
	}
	out.reader = dvr
	return out, nil
}

func isPattern(s string) bool { return bytes.IndexByte([]byte(s), '*') >= 0 }

// wildcardMatch matches s against p, where '*' matches any characters.
func wildcardMatch(p, s string) bool {
	for len(p) > 0 {
		if p[0] == '*' {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if wildcardMatch(p, s[i:]) {
					return true
				}
			}
			return false
		}
		if s == "" || s[0] != p[0] {
			return false
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}

// render writes the "fields" object of one hit, or nothing when the hit has
// none of the fields.
func (d *dvFetch) render(b *bytes.Buffer, id index.IndexInternalID) error {
	if d == nil || d.reader == nil {
		return nil
	}
	vals := map[string][]any{}
	err := d.reader.VisitDocValues(id, func(name string, term []byte) {
		o := d.fields[name]
		if o == nil {
			return
		}
		if o.f.typ == typeKeyword {
			vals[name] = append(vals[name], string(term))
			return
		}
		pc := numeric.PrefixCoded(term)
		if shift, err := pc.Shift(); err != nil || shift != 0 {
			return
		}
		i64, err := pc.Int64()
		if err != nil {
			return
		}
		vals[name] = append(vals[name], o.value(numValue(o.f, i64), i64))
	})
	if err != nil {
		return err
	}
	first := true
	for _, name := range d.names {
		vs := vals[name]
		if len(vs) == 0 {
			continue
		}
		if first {
			b.WriteString(`,"fields":{`)
			first = false
		} else {
			b.WriteByte(',')
		}
		writeJSONString(b, name)
		b.WriteByte(':')
		b.Write(mustJSON(vs))
	}
	if !first {
		b.WriteByte('}')
	}
	return nil
}

// value renders one numeric doc value as Elasticsearch shows it for the
// field's type; i64 is the shift-0 term, exact for whole-number fields.
func (o *dvOut) value(x float64, i64 int64) any {
	switch {
	case o.f.typ == typeBoolean:
		return x != 0
	case o.f.typ == typeDate:
		df := o.dates
		if df == nil {
			df = o.f.dates
		}
		if df == nil {
			df = defaultDateFormat()
		}
		return df.format(i64)
	case isIntegerType(o.f.typ):
		return i64
	case o.f.typ == typeFloat || o.f.typ == typeHalfFloat:
		// Elasticsearch widens the stored float to a double.
		return float64(float32(x))
	}
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return x
}
