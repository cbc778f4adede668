package sink

import (
	"maps"
	"strings"

	"github.com/walsearch/walsearch/bus"
)

// Mapping derivation: PostgreSQL column type → Elasticsearch field. The
// values arrive as docs/types.md describes; every choice below accepts every
// form capture emits for the type, so a row is never rejected because of its
// column types. docs/indices.md explains each choice.

// keywordIgnoreAbove keeps long strings out of the keyword sub-field (they
// stay searchable as text), as Elasticsearch's dynamic mapping does.
const keywordIgnoreAbove = 256

// fieldForType returns the mapping of a column of PostgreSQL type typ (array
// types map to their element type), or nil to leave the field to dynamic
// mapping.
func fieldForType(typ string, array bool) map[string]any {
	t := strings.ToLower(strings.TrimSpace(typ))
	if array || strings.HasSuffix(t, "[]") {
		t = strings.TrimSuffix(t, "[]")
	}
	switch t {
	case "text", "character varying", "varchar", "character", "char", "bpchar", "name", "citext", `"char"`:
		return textField()
	case "smallint", "integer", "bigint", "int2", "int4", "int8", "oid":
		return map[string]any{"type": "long"}
	case "numeric", "decimal":
		// Exact values that fit a float64 arrive as numbers, the others as
		// strings of digits; double accepts both (coercing the strings) and
		// _source keeps every digit.
		return map[string]any{"type": "double"}
	case "real", "double precision", "float4", "float8":
		return map[string]any{"type": "double"}
	case "boolean", "bool":
		return map[string]any{"type": "boolean"}
	case "date", "timestamp with time zone", "timestamp without time zone", "timestamptz", "timestamp":
		// BC dates ("-0043-03-15") and years past 9999 ("+12345-01-02") are
		// outside strict_date_optional_time: ignore_malformed keeps the row
		// (with the value in _source) instead of rejecting it.
		return map[string]any{"type": "date", "format": "strict_date_optional_time||epoch_millis", "ignore_malformed": true}
	case "json", "jsonb":
		// Left to dynamic mapping: a JSON value can be an object, an array
		// or a scalar, and no field type accepts them all. The first value
		// indexed decides, as Elasticsearch's dynamic mapping rules say;
		// docs/indices.md has the table of shapes.
		return nil
	case "bytea":
		// Base64 text: kept in _source, not indexed. (Elasticsearch's binary
		// type would do the same; the embedded engine does not have it.)
		return map[string]any{"type": "keyword", "index": false, "doc_values": false}
	case "uuid", "enum", "inet", "cidr", "macaddr", "macaddr8", "money", "interval",
		"time with time zone", "time without time zone", "time", "timetz":
		return map[string]any{"type": "keyword", "ignore_above": keywordIgnoreAbove}
	default:
		// Anything else arrives as its text form.
		return map[string]any{"type": "keyword", "ignore_above": keywordIgnoreAbove}
	}
}

func textField() map[string]any {
	return map[string]any{"type": "text", "fields": map[string]any{
		"keyword": map[string]any{"type": "keyword", "ignore_above": keywordIgnoreAbove},
	}}
}

// jsonObjectField maps a json/jsonb column when the configured mappings turn
// dynamic mapping off at the top level: left unmapped, the column would be
// dropped (dynamic false) or reject the row (strict). Objects are then the
// only shape accepted, their keys mapped dynamically.
func jsonObjectField() map[string]any {
	return map[string]any{"type": "object", "dynamic": true}
}

// isJSONType reports whether typ is json or jsonb (or an array of them).
func isJSONType(typ string) bool {
	t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(typ)), "[]")
	return t == "json" || t == "jsonb"
}

// dynamicByDefault reports whether the configured mappings leave dynamic
// mapping on at the top level (the default).
func dynamicByDefault(configured map[string]any) bool {
	switch d := configured["dynamic"].(type) {
	case nil:
		return true
	case bool:
		return d
	case string:
		return d == "true"
	}
	return false
}

// deriveProperties returns the properties of ts's columns, for an index whose
// configured mappings are configured.
func deriveProperties(ts *bus.TableSchema, configured map[string]any) map[string]any {
	props := map[string]any{}
	if ts == nil {
		return props
	}
	dynamic := dynamicByDefault(configured)
	for _, c := range ts.Columns {
		if f := fieldForType(c.Type, c.Array); f != nil {
			props[c.Name] = f
		} else if !dynamic && isJSONType(c.Type) {
			props[c.Name] = jsonObjectField()
		}
	}
	return props
}

// floatsAsDouble is the dynamic template that maps every JSON number with a
// fraction to double, as the derived mapping maps every fractional column,
// where dynamic mapping would choose float: fields no column type describes
// (jsonb contents, a script's computed fields) get the same precision, and
// so would a column that reached the engine before its derived field.
var floatsAsDouble = map[string]any{"walsearch_floats_as_double": map[string]any{
	"match_mapping_type": "double", "mapping": map[string]any{"type": "double"},
}}

// buildMappings merges the derived properties with the configured mappings:
// a configured field replaces the derived one entirely, configured dynamic
// templates come before the sink's own (the first match wins), other
// configured top-level keys (dynamic, _source, ...) are taken as they are.
func buildMappings(derived map[string]any, configured map[string]any) map[string]any {
	out := map[string]any{}
	var templates []any
	if t, ok := configured["dynamic_templates"].([]any); ok {
		templates = append(templates, t...)
	}
	out["dynamic_templates"] = append(templates, floatsAsDouble)
	props := maps.Clone(derived)
	if props == nil {
		props = map[string]any{}
	}
	for k, v := range configured {
		if k == "properties" {
			if cp, ok := v.(map[string]any); ok {
				maps.Copy(props, cp)
			}
			continue
		}
		if _, ok := v.([]any); ok && k == "dynamic_templates" {
			continue
		}
		out[k] = v
	}
	if len(props) > 0 {
		out["properties"] = props
	}
	return out
}

// newProperties returns the derived properties not yet in current (the
// properties of the index's mapping), for a PUT _mapping after a column was
// added. Fields already mapped — by an earlier derivation, by configuration or
// dynamically — are left alone: a mapped field's type cannot change.
func newProperties(derived map[string]any, current map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range derived {
		if _, ok := current[k]; !ok {
			out[k] = v
		}
	}
	return out
}
