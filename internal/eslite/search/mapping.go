package search

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2/analysis"
)

// Field types eslite indexes.
const (
	typeText        = "text"
	typeKeyword     = "keyword"
	typeLong        = "long"
	typeInteger     = "integer"
	typeShort       = "short"
	typeByte        = "byte"
	typeDouble      = "double"
	typeFloat       = "float"
	typeHalfFloat   = "half_float"
	typeScaledFloat = "scaled_float"
	typeBoolean     = "boolean"
	typeDate        = "date"
	typeObject      = "object"
)

// knownUnsupported are Elasticsearch field types that eslite rejects with a clear
// message instead of Elasticsearch's "No handler for type".
var knownUnsupported = map[string]bool{
	"nested": true, "ip": true, "geo_point": true, "geo_shape": true, "date_nanos": true,
	"flattened": true, "join": true, "binary": true, "completion": true, "search_as_you_type": true,
	"dense_vector": true, "sparse_vector": true, "wildcard": true, "constant_keyword": true,
	"unsigned_long": true, "integer_range": true, "float_range": true, "long_range": true,
	"double_range": true, "date_range": true, "ip_range": true, "alias": true, "percolator": true,
	"rank_feature": true, "rank_features": true, "histogram": true, "version": true,
	"match_only_text": true, "token_count": true, "murmur3": true, "annotated_text": true,
	"point": true, "shape": true, "semantic_text": true, "passthrough": true,
}

// Dynamic settings.
const (
	dynamicTrue   = "true"
	dynamicFalse  = "false"
	dynamicStrict = "strict"
)

// Mapping is one index's mapping: the root object's settings and its field tree.
// A Mapping is not safe for concurrent mutation: Prepare and Merge change it, so
// callers publish a Clone to searches and mutate only their private copy.
type Mapping struct {
	dynamic          string // "" means the default (true)
	dateDetection    *bool
	numericDetection *bool
	sourceEnabled    *bool
	meta             json.RawMessage
	dynamicTemplates []dynamicTemplate
	properties       map[string]*field
}

// field is one mapped field: a leaf with a type, or an object with properties.
type field struct {
	typ             string // typeObject for objects
	properties      map[string]*field
	fields          map[string]*field // multi-fields
	dynamic         string
	enabled         *bool
	ignoreAbove     int
	format          string
	scalingFactor   float64
	index           *bool
	docValues       *bool
	store           *bool
	analyzer        string
	searchAnalyzer  string
	nullValue       *node
	coerce          *bool
	ignoreMalformed *bool
	explicitObject  bool // "type":"object" was written
	meta            json.RawMessage

	dates *dateFormat       // compiled format for date fields
	an    analysis.Analyzer // index-time analyzer of text fields
	san   analysis.Analyzer // search-time analyzer of text fields
}

// ParseMapping parses the "mappings" object of an index ({"dynamic":..,"properties":{..}}).
// Bad input yields a *Error mapper_parsing_exception "Failed to parse mapping: ..."
// whose cause and root cause name the exact problem.
func ParseMapping(raw []byte) (*Mapping, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return &Mapping{properties: map[string]*field{}}, nil
	}
	root, err := parseJSON(raw)
	if err != nil {
		return nil, wrapMappingError(mapperParsing("failed to parse mapping: " + err.Error()))
	}
	m, perr := parseRootMapping(root)
	if perr != nil {
		return nil, wrapMappingError(perr)
	}
	return m, nil
}

func wrapMappingError(inner *Error) *Error {
	return &Error{
		Status:     http.StatusBadRequest,
		Type:       "mapper_parsing_exception",
		Reason:     "Failed to parse mapping: " + inner.Reason,
		CausedBy:   inner,
		RootCauses: []*Error{inner},
	}
}

func parseRootMapping(root *node) (*Mapping, *Error) {
	if root.kind == kNull {
		return &Mapping{properties: map[string]*field{}}, nil
	}
	if root.kind != kObject {
		return nil, mapperParsing("Root mapping definition must be an object, got [" + root.kind.String() + "]")
	}
	// An index created with a type name ({"_doc":{"properties":..}}) is accepted as ES 8 does.
	if len(root.keys) == 1 && root.keys[0] == "_doc" && root.vals[0].kind == kObject {
		root = root.vals[0]
	}
	m := &Mapping{properties: map[string]*field{}}
	var unsupported []string
	for i, k := range root.keys {
		v := root.vals[i]
		switch k {
		case "dynamic":
			d, err := parseDynamic(v)
			if err != nil {
				return nil, err
			}
			m.dynamic = d
		case "date_detection":
			b, err := nodeBool(v, k)
			if err != nil {
				return nil, err
			}
			m.dateDetection = &b
		case "numeric_detection":
			b, err := nodeBool(v, k)
			if err != nil {
				return nil, err
			}
			m.numericDetection = &b
		case "properties":
			props, err := parseProperties(v, "")
			if err != nil {
				return nil, err
			}
			m.properties = props
		case "_source":
			if v.kind == kObject {
				if en := v.get("enabled"); en != nil {
					b, err := nodeBool(en, "enabled")
					if err != nil {
						return nil, err
					}
					m.sourceEnabled = &b
				}
			}
		case "_meta":
			m.meta = json.RawMessage(mustJSON(v.toAny()))
		case "dynamic_templates":
			t, err := parseDynamicTemplates(v)
			if err != nil {
				return nil, err
			}
			m.dynamicTemplates = t
		case "runtime", "dynamic_date_formats", "_routing", "subobjects":
			return nil, mapperParsing("eslite does not support the mapping parameter [" + k + "]")
		default:
			unsupported = append(unsupported, k+" : "+javaString(v.toAny()))
		}
	}
	if len(unsupported) > 0 {
		return nil, mapperParsing("Root mapping definition has unsupported parameters:  [" + strings.Join(unsupported, "] [") + "]")
	}
	return m, nil
}

func parseDynamic(v *node) (string, *Error) {
	s := ""
	switch v.kind {
	case kBool:
		s = strconv.FormatBool(v.b)
	case kString:
		s = v.str
	}
	switch s {
	case dynamicTrue, dynamicFalse, dynamicStrict:
		return s, nil
	case "runtime":
		return "", mapperParsing("eslite does not support dynamic [runtime]")
	}
	return "", mapperParsing("Could not convert [dynamic] to boolean") // ES rejects other values like this
}

func nodeBool(v *node, name string) (bool, *Error) {
	switch v.kind {
	case kBool:
		return v.b, nil
	case kString:
		switch v.str {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, mapperParsing("Failed to parse value [" + javaString(v.toAny()) + "] as only [true] or [false] are allowed.")
}

func parseProperties(v *node, prefix string) (map[string]*field, *Error) {
	if v.kind != kObject {
		return nil, mapperParsing("Expected map for property [fields] on field [" + strings.TrimSuffix(prefix, ".") + "] but got a class java.lang.String")
	}
	out := make(map[string]*field, len(v.keys))
	for i, name := range v.keys {
		if name == "" {
			return nil, illegalArgumentMapper("field name cannot be an empty string")
		}
		f, err := parseField(prefix+name, v.vals[i])
		if err != nil {
			return nil, err
		}
		out[name] = f
	}
	return out, nil
}

func illegalArgumentMapper(reason string) *Error { return mapperParsing(reason) }

func parseField(path string, v *node) (*field, *Error) {
	if v.kind != kObject {
		return nil, mapperParsing("Expected map for property [fields] on field [" + path + "] but got a class java.lang.String")
	}
	typ := ""
	if t := v.get("type"); t != nil {
		if t.kind != kString {
			return nil, mapperParsing("No type specified for field [" + path + "]")
		}
		typ = t.str
	}
	f := &field{typ: typ}
	switch {
	case typ == "" || typ == typeObject:
		f.typ = typeObject
		f.explicitObject = typ == typeObject
		return f, parseObjectParams(f, path, v)
	case knownUnsupported[typ]:
		return nil, mapperParsing("eslite does not support field type [" + typ + "] declared on field [" + path + "]")
	case !isLeafType(typ):
		return nil, mapperParsing("No handler for type [" + typ + "] declared on field [" + path + "]")
	}
	if err := parseLeafParams(f, path, v); err != nil {
		return nil, err
	}
	return f, nil
}

func isLeafType(t string) bool {
	switch t {
	case typeText, typeKeyword, typeLong, typeInteger, typeShort, typeByte, typeDouble,
		typeFloat, typeHalfFloat, typeScaledFloat, typeBoolean, typeDate:
		return true
	}
	return false
}

func isNumericType(t string) bool {
	switch t {
	case typeLong, typeInteger, typeShort, typeByte, typeDouble, typeFloat, typeHalfFloat, typeScaledFloat:
		return true
	}
	return false
}

func isIntegerType(t string) bool {
	switch t {
	case typeLong, typeInteger, typeShort, typeByte:
		return true
	}
	return false
}

func parseObjectParams(f *field, path string, v *node) *Error {
	f.properties = map[string]*field{}
	var unsupported []string
	for i, k := range v.keys {
		val := v.vals[i]
		switch k {
		case "type":
		case "properties":
			props, err := parseProperties(val, path+".")
			if err != nil {
				return err
			}
			f.properties = props
		case "dynamic":
			d, err := parseDynamic(val)
			if err != nil {
				return err
			}
			f.dynamic = d
		case "enabled":
			b, err := nodeBool(val, k)
			if err != nil {
				return err
			}
			f.enabled = &b
		case "subobjects":
			return mapperParsing("eslite does not support the mapping parameter [subobjects]")
		default:
			unsupported = append(unsupported, k+" : "+javaString(val.toAny()))
		}
	}
	if len(unsupported) > 0 {
		return mapperParsing("Mapping definition for [" + path + "] has unsupported parameters:  [" + strings.Join(unsupported, "] [") + "]")
	}
	return nil
}

// leafParams lists the parameters each type accepts; the rest are rejected as
// "unknown parameter" like Elasticsearch does.
func leafAccepts(typ, param string) bool {
	switch param {
	case "type", "index", "store", "meta", "fields", "copy_to":
		return true
	}
	switch typ {
	case typeText:
		switch param {
		case "analyzer", "search_analyzer", "search_quote_analyzer", "norms", "fielddata",
			"index_options", "position_increment_gap", "term_vector", "similarity", "index_phrases", "eager_global_ordinals":
			return true
		}
	case typeKeyword:
		switch param {
		case "ignore_above", "null_value", "doc_values", "norms", "eager_global_ordinals",
			"similarity", "index_options", "split_queries_on_whitespace", "normalizer":
			return true
		}
	case typeBoolean:
		return param == "null_value" || param == "doc_values"
	case typeDate:
		switch param {
		case "format", "locale", "null_value", "doc_values", "ignore_malformed":
			return true
		}
	default: // numeric
		switch param {
		case "coerce", "null_value", "doc_values", "ignore_malformed":
			return true
		case "scaling_factor":
			return typ == typeScaledFloat
		}
	}
	return false
}

func parseLeafParams(f *field, path string, v *node) *Error {
	for i, k := range v.keys {
		val := v.vals[i]
		if !leafAccepts(f.typ, k) {
			return mapperParsing("unknown parameter [" + k + "] on mapper [" + path + "] of type [" + f.typ + "]")
		}
		var err *Error
		switch k {
		case "index":
			f.index, err = boolParam(val)
		case "store":
			f.store, err = boolParam(val)
		case "doc_values":
			f.docValues, err = boolParam(val)
		case "coerce":
			f.coerce, err = boolParam(val)
		case "ignore_malformed":
			f.ignoreMalformed, err = boolParam(val)
		case "meta":
			f.meta = json.RawMessage(mustJSON(val.toAny()))
		case "ignore_above":
			n, ok := nodeInt(val)
			if !ok || n < 0 {
				return mapperParsing("Failed to parse mapping: [ignore_above] on mapper [" + path + "] of type [keyword] must be a non-negative integer")
			}
			f.ignoreAbove = int(n)
		case "format":
			if val.kind != kString {
				return mapperParsing("Failed to parse format on field [" + path + "]")
			}
			df, ferr := compileDateFormat(val.str)
			if ferr != nil {
				return mapperParsing("Invalid format: [" + val.str + "]: " + ferr.Error())
			}
			f.format, f.dates = val.str, df
		case "scaling_factor":
			n, ok := nodeFloat(val)
			if !ok || n <= 0 {
				return mapperParsing("[scaling_factor] must be a positive number, got [" + javaString(val.toAny()) + "]")
			}
			f.scalingFactor = n
		case "analyzer", "search_analyzer":
			if val.kind != kString {
				return mapperParsing("analyzer [" + javaString(val.toAny()) + "] has not been configured in mappings")
			}
			if _, ok := analyzerByName(val.str); !ok {
				return mapperParsing("analyzer [" + val.str + "] has not been configured in mappings")
			}
			if k == "analyzer" {
				f.analyzer = val.str
			} else {
				f.searchAnalyzer = val.str
			}
		case "normalizer":
			return mapperParsing("normalizer [" + javaString(val.toAny()) + "] not found for field [" + path + "]")
		case "null_value":
			if val.kind != kNull {
				f.nullValue = val
			}
		case "fields":
			if val.kind != kObject {
				return mapperParsing("Expected map for property [fields] on field [" + path + "] but got a class java.lang.String")
			}
			f.fields = map[string]*field{}
			for j, sub := range val.keys {
				sf, serr := parseField(path+"."+sub, val.vals[j])
				if serr != nil {
					return serr
				}
				if sf.typ == typeObject {
					return mapperParsing("Type [object] cannot be used in multi field")
				}
				f.fields[sub] = sf
			}
		case "copy_to":
			return mapperParsing("eslite does not support the mapping parameter [copy_to] on field [" + path + "]")
		}
		if err != nil {
			return err
		}
	}
	if f.typ == typeScaledFloat && f.scalingFactor == 0 {
		return mapperParsing("Field [scaling_factor] is required")
	}
	f.finish()
	return nil
}

// finish fills in the compiled helpers a leaf field needs at index and search time.
func (f *field) finish() {
	if f.typ == typeDate && f.dates == nil {
		f.dates = defaultDateFormat()
	}
	if f.typ == typeText {
		f.an, _ = analyzerByName(f.analyzer)
		f.san = f.an
		if f.searchAnalyzer != "" {
			f.san, _ = analyzerByName(f.searchAnalyzer)
		}
	}
}

func boolParam(v *node) (*bool, *Error) {
	b, err := nodeBool(v, "")
	if err != nil {
		return nil, err
	}
	return &b, nil
}

func nodeInt(v *node) (int64, bool) {
	switch v.kind {
	case kNumber, kString:
		n, err := strconv.ParseInt(v.str, 10, 64)
		return n, err == nil
	}
	return 0, false
}

func nodeFloat(v *node) (float64, bool) {
	switch v.kind {
	case kNumber, kString:
		n, err := strconv.ParseFloat(v.str, 64)
		return n, err == nil
	}
	return 0, false
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}

// javaString renders a value the way Elasticsearch's messages print Java objects.
func javaString(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = javaString(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + javaString(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return string(mustJSON(v))
}
