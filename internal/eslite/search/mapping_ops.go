package search

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Clone returns a deep copy that can be mutated without affecting m.
func (m *Mapping) Clone() *Mapping {
	if m == nil {
		return nil
	}
	c := *m
	c.properties = cloneFields(m.properties)
	return &c
}

func cloneFields(in map[string]*field) map[string]*field {
	if in == nil {
		return nil
	}
	out := make(map[string]*field, len(in))
	for k, f := range in {
		out[k] = f.clone()
	}
	return out
}

func (f *field) clone() *field {
	c := *f
	c.properties = cloneFields(f.properties)
	c.fields = cloneFields(f.fields)
	return &c
}

// Merge applies a PUT /{index}/_mapping update: new fields are added, root settings
// replaced, and a changed type fails with illegal_argument_exception as in Elasticsearch.
// m is left untouched when the update is rejected.
func (m *Mapping) Merge(update *Mapping) error {
	merged := m.Clone()
	if update.dynamic != "" {
		merged.dynamic = update.dynamic
	}
	if update.dateDetection != nil {
		merged.dateDetection = update.dateDetection
	}
	if update.numericDetection != nil {
		merged.numericDetection = update.numericDetection
	}
	if update.meta != nil {
		merged.meta = update.meta
	}
	if update.sourceEnabled != nil {
		merged.sourceEnabled = update.sourceEnabled
	}
	merged.dynamicTemplates = mergeDynamicTemplates(m.dynamicTemplates, update.dynamicTemplates)
	if merged.properties == nil {
		merged.properties = map[string]*field{}
	}
	if err := mergeFields(merged.properties, update.properties, ""); err != nil {
		return err
	}
	*m = *merged
	return nil
}

func mergeFields(dst, src map[string]*field, prefix string) error {
	names := make([]string, 0, len(src))
	for n := range src {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		nf := src[name]
		path := prefix + name
		old, ok := dst[name]
		if !ok {
			dst[name] = nf.clone()
			continue
		}
		if err := mergeField(old, nf, path); err != nil {
			return err
		}
	}
	return nil
}

func mergeField(old, nf *field, path string) error {
	if old.typ == typeObject || nf.typ == typeObject {
		if old.typ != nf.typ {
			if old.typ == typeObject {
				return illegalArgument("can't merge a non object mapping [" + path + "] with an object mapping")
			}
			return illegalArgument("can't merge a non object mapping [" + path + "] with an object mapping")
		}
		if nf.dynamic != "" {
			old.dynamic = nf.dynamic
		}
		if nf.enabled != nil {
			if old.enabled != nil && *old.enabled != *nf.enabled {
				return illegalArgument("the [enabled] parameter can't be updated for the object mapping [" + path + "]")
			}
			old.enabled = nf.enabled
		}
		if old.properties == nil {
			old.properties = map[string]*field{}
		}
		return mergeFields(old.properties, nf.properties, path+".")
	}
	if old.typ != nf.typ {
		return illegalArgument("mapper [" + path + "] cannot be changed from type [" + old.typ + "] to [" + nf.typ + "]")
	}
	if old.analyzer != nf.analyzer {
		return illegalArgument("Mapper for [" + path + "] conflicts with existing mapper:\n\tCannot update parameter [analyzer] from [" +
			orDefault(old.analyzer, "default") + "] to [" + orDefault(nf.analyzer, "default") + "]")
	}
	if old.format != nf.format {
		return illegalArgument("Mapper for [" + path + "] conflicts with existing mapper:\n\tCannot update parameter [format] from [" +
			orDefault(old.format, "strict_date_optional_time||epoch_millis") + "] to [" + orDefault(nf.format, "strict_date_optional_time||epoch_millis") + "]")
	}
	if old.scalingFactor != nf.scalingFactor {
		return illegalArgument("Mapper for [" + path + "] conflicts with existing mapper:\n\tCannot update parameter [scaling_factor] from [" +
			formatFloat(old.scalingFactor) + "] to [" + formatFloat(nf.scalingFactor) + "]")
	}
	// Updatable parameters take the new value.
	old.ignoreAbove = nf.ignoreAbove
	old.ignoreMalformed = nf.ignoreMalformed
	old.meta = nf.meta
	old.searchAnalyzer = nf.searchAnalyzer
	old.finish()
	if len(nf.fields) > 0 {
		if old.fields == nil {
			old.fields = map[string]*field{}
		}
		if err := mergeFields(old.fields, nf.fields, path+"."); err != nil {
			return err
		}
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// MarshalJSON renders the mapping exactly as GET /{index}/_mapping shows it under
// "mappings": only parameters that differ from their defaults, fields in name order.
func (m *Mapping) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	sep := func() {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
	}
	if m.dynamic != "" {
		sep()
		b.WriteString(`"dynamic":"` + m.dynamic + `"`)
	}
	if m.meta != nil {
		sep()
		b.WriteString(`"_meta":`)
		b.Write(m.meta)
	}
	if m.sourceEnabled != nil {
		sep()
		b.WriteString(`"_source":{"enabled":` + strconv.FormatBool(*m.sourceEnabled) + `}`)
	}
	if m.dateDetection != nil {
		sep()
		b.WriteString(`"date_detection":` + strconv.FormatBool(*m.dateDetection))
	}
	if m.numericDetection != nil {
		sep()
		b.WriteString(`"numeric_detection":` + strconv.FormatBool(*m.numericDetection))
	}
	if len(m.dynamicTemplates) > 0 {
		sep()
		b.WriteString(`"dynamic_templates":`)
		writeDynamicTemplates(&b, m.dynamicTemplates)
	}
	if len(m.properties) > 0 {
		sep()
		b.WriteString(`"properties":`)
		writeFields(&b, m.properties)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeFields(b *bytes.Buffer, fields map[string]*field) {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	b.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, name)
		b.WriteByte(':')
		fields[name].write(b)
	}
	b.WriteByte('}')
}

func (f *field) write(b *bytes.Buffer) {
	var parts []string
	add := func(k string, v string) { parts = append(parts, `"`+k+`":`+v) }
	boolOpt := func(k string, v *bool) {
		if v != nil {
			add(k, strconv.FormatBool(*v))
		}
	}
	if f.typ == typeObject {
		if f.explicitObject && len(f.properties) == 0 && f.dynamic == "" && f.enabled == nil {
			add("type", `"object"`)
		}
		if f.dynamic != "" {
			add("dynamic", `"`+f.dynamic+`"`)
		}
		boolOpt("enabled", f.enabled)
		if len(f.properties) > 0 {
			var pb bytes.Buffer
			writeFields(&pb, f.properties)
			add("properties", pb.String())
		}
	} else {
		add("type", `"`+f.typ+`"`)
		if f.analyzer != "" {
			add("analyzer", strconv.Quote(f.analyzer))
		}
		boolOpt("coerce", f.coerce)
		boolOpt("doc_values", f.docValues)
		if len(f.fields) > 0 {
			var fb bytes.Buffer
			writeFields(&fb, f.fields)
			add("fields", fb.String())
		}
		if f.format != "" {
			add("format", string(mustJSON(f.format)))
		}
		if f.ignoreAbove > 0 {
			add("ignore_above", strconv.Itoa(f.ignoreAbove))
		}
		boolOpt("ignore_malformed", f.ignoreMalformed)
		boolOpt("index", f.index)
		if f.meta != nil {
			add("meta", string(f.meta))
		}
		if f.nullValue != nil {
			add("null_value", string(mustJSON(f.nullValue.toAny())))
		}
		if f.scalingFactor != 0 {
			add("scaling_factor", formatFloat(f.scalingFactor))
		}
		if f.searchAnalyzer != "" {
			add("search_analyzer", strconv.Quote(f.searchAnalyzer))
		}
		boolOpt("store", f.store)
	}
	b.WriteString("{" + strings.Join(parts, ",") + "}")
}

// formatFloat renders a double the way Elasticsearch prints one in JSON (100.0, 0.5).
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	if abs := f; abs < 0 {
		abs = -abs
		if abs >= 1e7 || (abs < 1e-3 && abs != 0) {
			return javaDouble(f)
		}
	} else if abs >= 1e7 || (abs < 1e-3 && abs != 0) {
		return javaDouble(f)
	}
	return s
}

// javaDouble renders large or tiny doubles in Java's scientific notation (1.0E7).
func javaDouble(f float64) string {
	s := strconv.FormatFloat(f, 'E', -1, 64)
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	exp = strings.TrimPrefix(exp, "+")
	if strings.HasPrefix(exp, "-") {
		exp = "-" + strings.TrimLeft(exp[1:], "0")
	} else {
		exp = strings.TrimLeft(exp, "0")
	}
	return mant + "E" + exp
}

// FieldType returns the mapped type of a field path ("a.b", "title.keyword").
// Objects report "object".
func (m *Mapping) FieldType(path string) (string, bool) {
	f := m.lookup(path)
	if f == nil {
		return "", false
	}
	return f.typ, true
}

// lookup finds the field at a dotted path, including multi-fields.
func (m *Mapping) lookup(path string) *field {
	if m == nil {
		return nil
	}
	fields := m.properties
	var cur *field
	for path != "" {
		name, rest, _ := strings.Cut(path, ".")
		var next *field
		if fields != nil {
			next = fields[name]
		}
		if next == nil && cur != nil && cur.fields != nil {
			next = cur.fields[name]
		}
		if next == nil {
			return nil
		}
		cur = next
		path = rest
		if cur.typ == typeObject {
			fields = cur.properties
		} else {
			fields = nil
		}
	}
	return cur
}

// leafPaths lists every leaf field path (multi-fields included) with its field.
func (m *Mapping) leafPaths() map[string]*field {
	out := map[string]*field{}
	var walk func(prefix string, fs map[string]*field)
	walk = func(prefix string, fs map[string]*field) {
		for name, f := range fs {
			p := prefix + name
			if f.typ == typeObject {
				walk(p+".", f.properties)
				continue
			}
			out[p] = f
			for sub, sf := range f.fields {
				out[p+"."+sub] = sf
			}
		}
	}
	walk("", m.properties)
	return out
}

// indexed reports whether the field's values can be searched.
func (f *field) indexed() bool { return f.index == nil || *f.index }

// hasDocValues reports whether the field supports sorting and aggregations.
func (f *field) hasDocValues() bool {
	if f.typ == typeText {
		return false
	}
	return f.docValues == nil || *f.docValues
}

// newTextFieldError is the 400 Elasticsearch returns when sorting or aggregating on text.
func textFieldDataError(path string) *Error {
	return newError(http.StatusBadRequest, "illegal_argument_exception",
		"Text fields are not optimised for operations that require per-document field data like aggregations and sorting, "+
			"so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on ["+
			path+"] in order to load field data by uninverting the inverted index. Note that this can use significant memory.")
}

var _ json.Marshaler = (*Mapping)(nil)
