package search

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/analysis"
)

// Document is one validated document ready for Index.Apply.
type Document struct {
	ID string
	// Source is the original JSON, kept byte-exact for _source.
	Source []byte

	values []docValue
	names  []string // paths that hold a text or keyword value or an object, for exists (_field_names)
}

// valueKind says how a value is indexed.
type valueKind uint8

const (
	vText    valueKind = iota // analyzed text
	vKeyword                  // one exact term
	vNumber                   // numbers, dates (epoch millis) and booleans (0/1)
)

// docValue is one indexed value of one field path.
type docValue struct {
	path string
	kind valueKind
	str  string
	num  float64
	i64  int64 // what vNumber indexes: the exact whole number of an integral field, else numTerm of num
	an   analysis.Analyzer
}

// metadataFields cannot appear at the top level of a document source.
var metadataFields = map[string]bool{
	"_id": true, "_index": true, "_routing": true, "_source": true, "_seq_no": true,
	"_primary_term": true, "_version": true, "_ignored": true, "_field_names": true,
	"_doc_count": true, "_tier": true, "_data_stream_timestamp": true, "_nested_path": true,
}

// Prepare validates one document source against m, applies dynamic mapping to m when
// allowed (updated is true when fields were added) and returns the parsed document.
// m is changed only when the whole document is accepted. Prepare mutates m, so it
// must not run concurrently with other users of the same Mapping.
//
// Failures are *Error values named as Elasticsearch 8.8+ names them:
// document_parsing_exception for values that do not fit their field (older 8.x
// minors said mapper_parsing_exception) and strict_dynamic_mapping_exception for a
// new field under dynamic "strict", both with status 400 and a "[line:col]" prefix.
func (m *Mapping) Prepare(id string, source []byte) (*Document, bool, error) {
	root, err := parseJSON(source)
	if err != nil {
		off := 0
		msg := err.Error()
		if se, ok := err.(*syntaxError); ok {
			off = se.off
		}
		return nil, false, newError(http.StatusBadRequest, "document_parsing_exception",
			loc(source, off)+" failed to parse: "+msg)
	}
	if root.kind != kObject {
		return nil, false, newError(http.StatusBadRequest, "document_parsing_exception",
			loc(source, root.off)+" failed to parse: Malformed content, must start with an object")
	}
	p := &preparer{src: source, id: id, m: m, adds: &field{typ: typeObject, properties: map[string]*field{}},
		doc: &Document{ID: id, Source: source}, seen: map[string]bool{}}
	p.dateDetect = m.dateDetection == nil || *m.dateDetection
	p.numericDetect = m.numericDetection != nil && *m.numericDetection
	for i, k := range root.keys {
		if metadataFields[k] {
			return nil, false, newError(http.StatusBadRequest, "document_parsing_exception",
				loc(source, root.koffs[i])+" Field ["+k+"] is a metadata field and cannot be added inside a document. Use the index API request parameters.")
		}
	}
	rootDyn := m.dynamic
	if rootDyn == "" {
		rootDyn = dynamicTrue
	}
	if perr := p.object(root, m.properties, p.adds, "", rootDyn); perr != nil {
		return nil, false, perr
	}
	updated := len(p.adds.properties) > 0
	if updated {
		if merr := m.Merge(&Mapping{properties: p.adds.properties}); merr != nil {
			return nil, false, merr
		}
	}
	return p.doc, updated, nil
}

type preparer struct {
	src           []byte
	id            string
	m             *Mapping
	adds          *field // root of the fields added by dynamic mapping
	doc           *Document
	seen          map[string]bool
	dateDetect    bool
	numericDetect bool
}

// object walks one JSON object. mfields are the mapped fields at this level (may be
// nil), added the dynamic additions container for this level (created lazily by
// the caller through ensure), prefix the dotted path of this object.
func (p *preparer) object(n *node, mfields map[string]*field, added *field, prefix, dyn string) *Error {
	for i, key := range n.keys {
		v := n.vals[i]
		if key == "" || strings.Trim(key, ".") == "" || strings.Contains(key, "..") || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") {
			if key == "" {
				return p.docErr(n.koffs[i], "field name cannot be an empty string")
			}
			return p.docErr(n.koffs[i], "field name cannot contain only whitespace: ['"+key+"']")
		}
		// "a.b": 1 is the same as "a": {"b": 1}.
		if strings.Contains(key, ".") {
			head, rest, _ := strings.Cut(key, ".")
			synthetic := &node{kind: kObject, keys: []string{rest}, koffs: []int{n.koffs[i]}, vals: []*node{v}, off: v.off}
			if err := p.field(head, synthetic, mfields, added, prefix, dyn, n.koffs[i]); err != nil {
				return err
			}
			continue
		}
		if err := p.field(key, v, mfields, added, prefix, dyn, n.koffs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (p *preparer) field(name string, v *node, mfields map[string]*field, added *field, prefix, dyn string, koff int) *Error {
	path := prefix + name
	f := mfields[name]
	if f == nil && added != nil {
		f = added.properties[name]
	}
	if f == nil {
		first := firstValue(v)
		if first == nil {
			return nil // null and empty arrays add no mapping
		}
		switch dyn {
		case dynamicFalse:
			return nil
		case dynamicStrict:
			within := strings.TrimSuffix(prefix, ".")
			if within == "" {
				within = "_doc"
			}
			return &Error{Status: http.StatusBadRequest, Type: "strict_dynamic_mapping_exception",
				Reason: loc(p.src, v.off) + " mapping set to strict, dynamic introduction of [" + name + "] within [" + within + "] is not allowed"}
		}
		f = p.dynamicField(first)
		if tf := p.m.fromTemplate(first, f); tf != nil {
			f = tf
		}
		added.properties[name] = f
	}
	if f.typ == typeObject {
		if f.enabled != nil && !*f.enabled {
			return nil
		}
		childDyn := dyn
		if f.dynamic != "" {
			childDyn = f.dynamic
		}
		return p.objectValue(v, f, added, name, path, childDyn)
	}
	return p.leaf(v, f, path)
}

// objectValue walks the value of an object field (an object, or an array of them).
func (p *preparer) objectValue(v *node, f *field, added *field, name, path, dyn string) *Error {
	switch v.kind {
	case kNull:
		return nil
	case kArray:
		for _, e := range v.vals {
			if err := p.objectValue(e, f, added, name, path, dyn); err != nil {
				return err
			}
		}
		return nil
	case kObject:
		// The additions container for this object: the object itself when it is new,
		// otherwise a shadow holding only the new children.
		var sub *field
		if added.properties[name] == f {
			sub = f
		} else {
			sub = added.properties[name]
			if sub == nil {
				sub = &field{typ: typeObject, properties: map[string]*field{}}
			}
		}
		var mprops map[string]*field
		if sub != f {
			mprops = f.properties
		}
		if err := p.object(v, mprops, sub, path+".", dyn); err != nil {
			return err
		}
		if sub != f && len(sub.properties) > 0 {
			added.properties[name] = sub
		}
		return nil
	}
	return p.docErr(v.off, "object mapping for ["+path+"] tried to parse field ["+path+"] as object, but found a concrete value")
}

// firstValue returns the first non-null value, looking inside arrays.
func firstValue(v *node) *node {
	switch v.kind {
	case kNull:
		return nil
	case kArray:
		for _, e := range v.vals {
			if f := firstValue(e); f != nil {
				return f
			}
		}
		return nil
	}
	return v
}

// dynamicField is Elasticsearch's default dynamic mapping for a JSON value.
func (p *preparer) dynamicField(v *node) *field {
	var f *field
	switch v.kind {
	case kBool:
		f = &field{typ: typeBoolean}
	case kNumber:
		if strings.ContainsAny(v.str, ".eE") {
			f = &field{typ: typeFloat}
		} else if _, err := strconv.ParseInt(v.str, 10, 64); err == nil {
			f = &field{typ: typeLong}
		} else {
			f = &field{typ: typeFloat}
		}
	case kObject:
		return &field{typ: typeObject, properties: map[string]*field{}}
	case kString:
		if p.dateDetect {
			if _, ok := (isoLayout{}).parse(v.str); ok && len(v.str) >= 4 {
				f = &field{typ: typeDate}
				break
			}
		}
		if p.numericDetect {
			if _, err := strconv.ParseInt(v.str, 10, 64); err == nil {
				f = &field{typ: typeLong}
				break
			}
			if x, err := strconv.ParseFloat(v.str, 64); err == nil && !math.IsInf(x, 0) && !math.IsNaN(x) {
				f = &field{typ: typeFloat}
				break
			}
		}
		kw := &field{typ: typeKeyword, ignoreAbove: 256}
		f = &field{typ: typeText, fields: map[string]*field{"keyword": kw}}
	default:
		return nil
	}
	f.finish()
	return f
}

func (p *preparer) markName(path string) {
	for path != "" {
		if p.seen[path] {
			return
		}
		p.seen[path] = true
		p.doc.names = append(p.doc.names, path)
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return
		}
		path = path[:i]
	}
}

func (p *preparer) docErr(off int, reason string) *Error {
	return newError(http.StatusBadRequest, "document_parsing_exception", loc(p.src, off)+" "+reason)
}

// leaf indexes the value(s) of a leaf field and its multi-fields.
func (p *preparer) leaf(v *node, f *field, path string) *Error {
	switch v.kind {
	case kArray:
		for _, e := range v.vals {
			if err := p.leaf(e, f, path); err != nil {
				return err
			}
		}
		return nil
	case kNull:
		if f.nullValue == nil {
			return nil
		}
		v = f.nullValue
	}
	if err := p.one(v, f, path); err != nil {
		return err
	}
	for sub, sf := range f.fields {
		if err := p.one(v, sf, path+"."+sub); err != nil {
			return err
		}
	}
	return nil
}

// one converts and records a single scalar value.
func (p *preparer) one(v *node, f *field, path string) *Error {
	if v.kind == kObject || v.kind == kArray {
		l, c := lineCol(p.src, v.off)
		cause := newError(http.StatusBadRequest, "illegal_state_exception",
			"Can't get text on a "+v.kind.String()+" at "+strconv.Itoa(l)+":"+strconv.Itoa(c))
		return &Error{Status: http.StatusBadRequest, Type: "document_parsing_exception",
			Reason: loc(p.src, v.off) + " failed to parse field [" + path + "] of type [" + f.typ + "] in document with id '" +
				p.id + "'. Preview of field's value: '" + javaString(v.toAny()) + "'",
			CausedBy: cause}
	}
	dv, skip, cause := convertValue(v, f)
	if cause != nil {
		if f.ignoreMalformed != nil && *f.ignoreMalformed && v.kind != kObject {
			return nil
		}
		return &Error{Status: http.StatusBadRequest, Type: "document_parsing_exception",
			Reason: loc(p.src, v.off) + " failed to parse field [" + path + "] of type [" + f.typ + "] in document with id '" +
				p.id + "'. Preview of field's value: '" + javaString(v.toAny()) + "'",
			CausedBy: cause}
	}
	if skip || !f.indexed() && !f.hasDocValues() {
		return nil
	}
	dv.path = path
	p.doc.values = append(p.doc.values, dv)
	if dv.kind != vNumber {
		p.markName(path)
	} else if i := strings.LastIndexByte(path, '.'); i >= 0 {
		// exists on a number, date or boolean reads the field's own terms
		// (existsQuery); only the objects around it need their names.
		p.markName(path[:i])
	}
	return nil
}

// convertValue validates and coerces one JSON scalar for a field type the way
// Elasticsearch does (numeric strings into numbers, truncation into integers when
// coerce is on, "true"/"false" strings into booleans).
func convertValue(v *node, f *field) (docValue, bool, *Error) {
	switch f.typ {
	case typeText:
		return docValue{kind: vText, str: scalarText(v), an: f.an}, false, nil
	case typeKeyword:
		s := scalarText(v)
		if f.ignoreAbove > 0 && utf8.RuneCountInString(s) > f.ignoreAbove {
			return docValue{}, true, nil
		}
		return docValue{kind: vKeyword, str: s}, false, nil
	case typeBoolean:
		switch {
		case v.kind == kBool:
			return docValue{kind: vNumber, num: boolNum(v.b), i64: int64(boolNum(v.b))}, false, nil
		case v.kind == kString && v.str == "true":
			return docValue{kind: vNumber, num: 1, i64: 1}, false, nil
		case v.kind == kString && v.str == "false":
			return docValue{kind: vNumber, num: 0}, false, nil
		case v.kind == kString && v.str == "":
			return docValue{}, true, nil
		}
		return docValue{}, false, illegalArgument("Failed to parse value [" + scalarText(v) + "] as only [true] or [false] are allowed.")
	case typeDate:
		s := scalarText(v)
		if v.kind == kBool {
			return docValue{}, false, illegalArgument("failed to parse date field [" + s + "] with format [" + f.dates.text + "]")
		}
		ms, ok := f.dates.parse(s)
		if !ok && v.kind == kNumber && !f.dates.acceptsNumbers() {
			ms, ok = epochLayout{unit: 1}.parse(s)
		}
		if !ok {
			return docValue{}, false, illegalArgument("failed to parse date field [" + s + "] with format [" + f.dates.text + "]")
		}
		return docValue{kind: vNumber, num: float64(ms), i64: ms}, false, nil
	}
	n, i64, skip, err := convertNumber(v, f)
	return docValue{kind: vNumber, num: n, i64: i64}, skip, err
}

func boolNum(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func scalarText(v *node) string {
	switch v.kind {
	case kString, kNumber:
		return v.str
	case kBool:
		return strconv.FormatBool(v.b)
	}
	return ""
}

// intRange is the limits of an Elasticsearch integer type and its name in messages.
func intRange(typ string) (int64, int64, string) {
	switch typ {
	case typeInteger:
		return math.MinInt32, math.MaxInt32, "an integer"
	case typeShort:
		return math.MinInt16, math.MaxInt16, "a short"
	case typeByte:
		return math.MinInt8, math.MaxInt8, "a byte"
	}
	return math.MinInt64, math.MaxInt64, "a long"
}

// convertNumber converts a document value for a numeric field: the number
// and, for integer types, the exact whole number (i64), which is what the
// field indexes; a long beyond 2^53 has no float64 of its own.
func convertNumber(v *node, f *field) (num float64, i64 int64, skip bool, cause *Error) {
	coerce := f.coerce == nil || *f.coerce
	var text string
	switch v.kind {
	case kNumber:
		text = v.str
	case kString:
		if !coerce {
			return 0, 0, false, illegalArgument("[coerce] is false, can't parse string value [" + v.str + "]")
		}
		text = strings.TrimSpace(v.str)
		if text == "" {
			return 0, 0, true, nil
		}
	default:
		return 0, 0, false, illegalArgument("Current token (" + v.kind.String() + ") not numeric, can not use numeric value accessors")
	}
	if isIntegerType(f.typ) {
		lo, hi, name := intRange(f.typ)
		w, err := parseWhole(text, lo, hi, f.typ == typeLong)
		switch {
		case errors.Is(err, errOutOfRange):
			return 0, 0, false, illegalArgument("Value [" + text + "] is out of range for " + name)
		case err != nil:
			return 0, 0, false, illegalArgument("For input string: \"" + text + "\"")
		case !coerce && w.frac:
			return 0, 0, false, illegalArgument("Value [" + text + "] has a decimal part")
		}
		return float64(w.n), w.n, false, nil
	}
	x, err := strconv.ParseFloat(text, 64)
	if err != nil || strings.ContainsAny(text, "xXpP_") {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, 0, false, illegalArgument("[" + f.typ + "] supports only finite values, but got [" + text + "]")
		}
		return 0, 0, false, illegalArgument("For input string: \"" + text + "\"")
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, 0, false, illegalArgument("[" + f.typ + "] supports only finite values, but got [" + text + "]")
	}
	switch f.typ {
	case typeFloat, typeHalfFloat:
		if math.Abs(x) > math.MaxFloat32 {
			return 0, 0, false, illegalArgument("[" + f.typ + "] supports only finite values, but got [" + text + "]")
		}
		x = float64(float32(x))
	case typeScaledFloat:
		x = math.Round(x*f.scalingFactor) / f.scalingFactor
	}
	return x, numTerm(f, x), false, nil
}
