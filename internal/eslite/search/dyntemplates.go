package search

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Dynamic templates, the part of Elasticsearch's that selects on the type
// dynamic mapping detects: {"name": {"match_mapping_type": "double",
// "mapping": {...}}}. Templates are tried in order and the first match
// decides the mapping of a new field. Conditions on the field's name or path
// and the {name}/{dynamic_type} placeholders are refused with a
// mapper_parsing_exception rather than ignored, so that a mapping the engine
// cannot honour never maps fields differently from Elasticsearch.

// dynamicTemplate is one parsed template.
type dynamicTemplate struct {
	name  string
	types []string // detected types it matches; "*" matches every one
	field *field   // the mapping, parsed once
	raw   json.RawMessage
}

// matchMappingTypes are the detected types Elasticsearch names.
var matchMappingTypes = map[string]bool{
	"*": true, "object": true, "string": true, "long": true, "double": true,
	"boolean": true, "date": true, "binary": true,
}

func parseDynamicTemplates(v *node) ([]dynamicTemplate, *Error) {
	if v.kind != kArray {
		return nil, mapperParsing("Dynamic template syntax error. An array of named objects is expected.")
	}
	out := make([]dynamicTemplate, 0, len(v.vals))
	for _, e := range v.vals {
		if e.kind != kObject || len(e.keys) != 1 || e.vals[0].kind != kObject {
			return nil, mapperParsing("Dynamic template syntax error. An array of named objects is expected.")
		}
		t, err := parseDynamicTemplate(e.keys[0], e.vals[0])
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func parseDynamicTemplate(name string, v *node) (dynamicTemplate, *Error) {
	t := dynamicTemplate{name: name, raw: mustJSON(v.toAny())}
	var mapping *node
	for i, k := range v.keys {
		val := v.vals[i]
		switch k {
		case "match_mapping_type":
			vals := []*node{val}
			if val.kind == kArray {
				vals = val.vals
			}
			for _, s := range vals {
				if s.kind != kString || !matchMappingTypes[s.str] {
					return t, mapperParsing("No field type matched on [" + javaString(s.toAny()) + "], possible values are [object, string, long, double, boolean, date, binary]")
				}
				t.types = append(t.types, s.str)
			}
		case "mapping":
			mapping = val
		default:
			return t, mapperParsing("eslite does not support the dynamic template parameter [" + k + "] (template [" + name + "])")
		}
	}
	if mapping == nil {
		return t, mapperParsing("template [" + name + "] must have either mapping or runtime set")
	}
	if bytes.Contains(t.raw, []byte("{name}")) || bytes.Contains(t.raw, []byte("{dynamic_type}")) || bytes.Contains(t.raw, []byte("{dynamicType}")) {
		return t, mapperParsing("eslite does not support placeholders in dynamic template [" + name + "]")
	}
	if mapping.kind != kObject || mapping.get("type") == nil {
		return t, mapperParsing("eslite needs an explicit [type] in the mapping of dynamic template [" + name + "]")
	}
	f, err := parseField("dynamic_template."+name, mapping)
	if err != nil {
		return t, err
	}
	t.field = f
	return t, nil
}

// mergeDynamicTemplates applies a mapping update's templates: one with the
// name of an existing template replaces it in place, others are appended.
func mergeDynamicTemplates(old, update []dynamicTemplate) []dynamicTemplate {
	if len(update) == 0 {
		return old
	}
	out := append([]dynamicTemplate(nil), old...)
	for _, u := range update {
		replaced := false
		for i := range out {
			if out[i].name == u.name {
				out[i], replaced = u, true
				break
			}
		}
		if !replaced {
			out = append(out, u)
		}
	}
	return out
}

// writeDynamicTemplates renders templates as GET _mapping shows them.
func writeDynamicTemplates(b *bytes.Buffer, templates []dynamicTemplate) {
	b.WriteByte('[')
	for i, t := range templates {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(t.name)
		b.WriteString("{" + string(name) + ":")
		b.Write(t.raw)
		b.WriteByte('}')
	}
	b.WriteByte(']')
}

// detectedType is the type name match_mapping_type compares with for a new
// field whose default dynamic mapping is f: JSON numbers with a fraction are
// "double" (though mapped float by default), strings "string" unless
// detected as a date or number.
func detectedType(v *node, f *field) string {
	switch f.typ {
	case typeObject:
		return "object"
	case typeBoolean:
		return "boolean"
	case typeDate:
		return "date"
	case typeLong:
		return "long"
	case typeFloat:
		return "double"
	}
	if v.kind == kString {
		return "string"
	}
	return strings.ToLower(v.kind.String())
}

// fromTemplate returns a copy of the mapping of the first template matching
// a new field with value v and default dynamic mapping f, or nil.
func (m *Mapping) fromTemplate(v *node, f *field) *field {
	if len(m.dynamicTemplates) == 0 || f == nil {
		return nil
	}
	typ := detectedType(v, f)
	for _, t := range m.dynamicTemplates {
		for _, want := range t.types {
			if want == "*" || want == typ {
				return t.field.clone()
			}
		}
	}
	return nil
}
