package conformance

import (
	"net/http"
	"testing"
)

// mappingScenarios cover explicit mappings of every supported field type,
// mapping updates and conflicts, and dynamic mapping.
func mappingScenarios() []scenario {
	return []scenario{
		{name: "mapping/get_returns_explicit_types", run: func(t *testing.T, c *client) {
			props := obj{
				"title":   obj{"type": "text", "fields": obj{"keyword": obj{"type": "keyword"}}},
				"code":    obj{"type": "keyword"},
				"l":       obj{"type": "long"},
				"i":       obj{"type": "integer"},
				"s":       obj{"type": "short"},
				"d":       obj{"type": "double"},
				"f":       obj{"type": "float"},
				"sf":      obj{"type": "scaled_float", "scaling_factor": 100.0},
				"b":       obj{"type": "boolean"},
				"at":      obj{"type": "date", "format": "strict_date_optional_time||epoch_millis"},
				"ms":      obj{"type": "date", "format": "epoch_millis"},
				"owner":   obj{"properties": obj{"name": obj{"type": "keyword"}, "age": obj{"type": "integer"}}},
				"created": obj{"type": "date"},
			}
			n := c.createIndex(t, "types", obj{"mappings": obj{"properties": props}})
			r := c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).wantStatus(http.StatusOK)
			p := n + ".mappings.properties."
			r.eq(p+"title", props["title"])
			for _, f := range []string{"code", "l", "i", "s", "d", "f", "b", "created"} {
				r.eq(p+f+".type", props[f].(obj)["type"])
			}
			r.eq(p+"sf.type", "scaled_float")
			r.eq(p+"sf.scaling_factor", 100)
			r.eq(p+"at.type", "date")
			r.eq(p+"at.format", "strict_date_optional_time||epoch_millis")
			r.eq(p+"ms.format", "epoch_millis")
			r.eq(p+"owner.properties.name.type", "keyword")
			r.eq(p+"owner.properties.age.type", "integer")
		}},
		{name: "mapping/get_all_mappings", run: func(t *testing.T, c *client) {
			// GET /_mapping lists every index with its mappings.
			a := c.createIndex(t, "alla", obj{"mappings": obj{"properties": obj{"x": obj{"type": "keyword"}}}})
			b := c.createIndex(t, "allb", obj{"mappings": obj{"properties": obj{"y": obj{"type": "long"}}}})
			r := c.do(t, http.MethodGet, "/_mapping", nil).wantStatus(http.StatusOK)
			r.eq(a+".mappings.properties.x.type", "keyword")
			r.eq(b+".mappings.properties.y.type", "long")
		}},
		{name: "mapping/put_adds_fields", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "put", obj{"mappings": obj{"properties": obj{"a": obj{"type": "keyword"}}}})
			c.do(t, http.MethodPut, "/"+n+"/_mapping", obj{"properties": obj{"b": obj{"type": "long"}}}).
				wantStatus(http.StatusOK).eq("acknowledged", true)
			r := c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).wantStatus(http.StatusOK)
			r.eq(n+".mappings.properties.a.type", "keyword")
			r.eq(n+".mappings.properties.b.type", "long")
			// The new field is usable at once.
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=true", obj{"a": "x", "b": 7}).wantStatus(http.StatusCreated)
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"b": obj{"gte": 5}}})), "1")
		}},
		{name: "mapping/put_type_change_conflict", run: func(t *testing.T, c *client) {
			// "mapper [n] cannot be changed from type [long] to [text]", 400
			// illegal_argument_exception.
			n := c.createIndex(t, "conflict", obj{"mappings": obj{"properties": obj{"n": obj{"type": "long"}}}})
			c.do(t, http.MethodPut, "/"+n+"/_mapping", obj{"properties": obj{"n": obj{"type": "text"}}}).
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception").
				eq("error.reason", "mapper [n] cannot be changed from type [long] to [text]")
			c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).wantStatus(http.StatusOK).
				eq(n+".mappings.properties.n.type", "long")
		}},
		{name: "mapping/put_on_missing_index", run: func(t *testing.T, c *client) {
			n := c.name(t, "putmiss")
			c.do(t, http.MethodPut, "/"+n+"/_mapping", obj{"properties": obj{"b": obj{"type": "long"}}}).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception")
		}},
		{name: "mapping/unknown_field_type", run: func(t *testing.T, c *client) {
			// "Failed to parse mapping: No handler for type [nope] declared on
			// field [x]", 400 mapper_parsing_exception.
			n := c.name(t, "badtype")
			c.do(t, http.MethodPut, "/"+n, obj{"mappings": obj{"properties": obj{"x": obj{"type": "nope"}}}}).
				wantError(http.StatusBadRequest, "mapper_parsing_exception", "mapper_parsing_exception").
				contains("error.reason", "No handler for type [nope] declared on field [x]")
			c.do(t, http.MethodHead, "/"+n, nil).wantStatus(http.StatusNotFound)
		}},
		{name: "mapping/value_not_matching_type", run: func(t *testing.T, c *client) {
			// Since 8.7 document parse failures are document_parsing_exception
			// (elastic/elasticsearch#92646): "[1:6] failed to parse field [n]
			// of type [long] in document with id '1'. Preview of field's value: 'abc'".
			n := c.createIndex(t, "badval", obj{"mappings": obj{"properties": obj{"n": obj{"type": "long"}}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"n": "abc"}).
				wantError(http.StatusBadRequest, "document_parsing_exception", "document_parsing_exception").
				contains("error.reason", "failed to parse field [n] of type [long]")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound)
		}},
		{name: "mapping/numeric_strings_are_coerced", run: func(t *testing.T, c *client) {
			// coerce defaults to true: "5" is indexed as 5 in a numeric field,
			// and _source keeps the original string.
			n := c.createIndex(t, "coerce", obj{"mappings": obj{"properties": obj{"n": obj{"type": "integer"}}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=true", obj{"n": "5"}).wantStatus(http.StatusCreated)
			wantIDs(t, c.searchIDs(t, n, q(obj{"term": obj{"n": 5}})), "1")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_source.n", "5")
		}},
		{name: "mapping/typed_fields_query", run: typedFieldsQuery},
		{name: "mapping/dynamic_mapping_types", run: func(t *testing.T, c *client) {
			// Dynamic field mapping table: string → text with a keyword
			// sub-field (ignore_above 256), integer → long, floating point →
			// float, boolean → boolean, object → object, a date-looking string
			// → date (date_detection on), a numeric string stays text
			// (numeric_detection off).
			n := c.createIndex(t, "dyn", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=true", obj{
				"s": "hello world", "n": 42, "f": 1.5, "b": true, "d": "2015-01-01",
				"o": obj{"inner": "x", "deep": obj{"v": 7}}, "numstr": "42",
			}).wantStatus(http.StatusCreated)
			r := c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).wantStatus(http.StatusOK)
			p := n + ".mappings.properties."
			r.eq(p+"s", obj{"type": "text", "fields": obj{"keyword": obj{"type": "keyword", "ignore_above": 256}}})
			r.eq(p+"n.type", "long")
			r.eq(p+"f.type", "float")
			r.eq(p+"b.type", "boolean")
			r.eq(p+"d.type", "date")
			r.eq(p+"o.properties.inner.type", "text")
			r.eq(p+"o.properties.deep.properties.v.type", "long")
			r.eq(p+"numstr.type", "text")
			// Dynamically mapped fields are searchable like explicit ones.
			wantIDs(t, c.searchIDs(t, n, q(obj{"term": obj{"s.keyword": "hello world"}})), "1")
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"d": obj{"gte": "2014-12-31", "lt": "2015-01-02"}}})), "1")
			wantIDs(t, c.searchIDs(t, n, q(obj{"term": obj{"o.deep.v": 7}})), "1")
		}},
		{name: "mapping/dynamic_fields_extend_explicit_mapping", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "dynext", obj{"mappings": obj{"properties": obj{"k": obj{"type": "keyword"}}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"k": "a", "extra": 3}).wantStatus(http.StatusCreated)
			r := c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).wantStatus(http.StatusOK)
			r.eq(n+".mappings.properties.k.type", "keyword")
			r.eq(n+".mappings.properties.extra.type", "long")
			// Once mapped dynamically as long, a non-numeric value is rejected.
			c.do(t, http.MethodPut, "/"+n+"/_doc/2", obj{"k": "b", "extra": "three"}).
				wantError(http.StatusBadRequest, "document_parsing_exception", "document_parsing_exception")
		}},
		{name: "mapping/dynamic_strict_rejects_unknown_fields", run: func(t *testing.T, c *client) {
			// dynamic: strict → 400 strict_dynamic_mapping_exception
			// "[1:16] mapping set to strict, dynamic introduction of [extra]
			// within [_doc] is not allowed".
			n := c.createIndex(t, "strict", obj{"mappings": obj{"dynamic": "strict", "properties": obj{"k": obj{"type": "keyword"}}}})
			r := c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"k": "a", "extra": 3})
			r.wantError(http.StatusBadRequest, "strict_dynamic_mapping_exception", "strict_dynamic_mapping_exception").
				contains("error.reason", "dynamic introduction of [extra]")
		}},
		{name: "mapping/dynamic_templates_match_mapping_type", run: func(t *testing.T, c *client) {
			// Templates apply to new fields in order, the first whose
			// match_mapping_type is the detected type winning: "double" is
			// a number with a fraction (mapped float without a template), a
			// date-looking string is "date", not "string". GET _mapping
			// returns them; PUT _mapping replaces a template of the same
			// name and appends others.
			n := c.createIndex(t, "dyntpl", obj{"mappings": obj{"dynamic_templates": []any{
				obj{"floats": obj{"match_mapping_type": "double", "mapping": obj{"type": "double"}}},
				obj{"strings": obj{"match_mapping_type": "string", "mapping": obj{"type": "keyword"}}},
			}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=true", obj{
				"f": 1.5, "n": 2, "s": "hello world", "d": "2015-01-01", "o": obj{"g": 0.25}, "b": true,
			}).wantStatus(http.StatusCreated)
			r := c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).wantStatus(http.StatusOK)
			p := n + ".mappings.properties."
			r.eq(p+"f.type", "double")
			r.eq(p+"n.type", "long")
			r.eq(p+"s", obj{"type": "keyword"})
			r.eq(p+"d.type", "date")
			r.eq(p+"o.properties.g.type", "double")
			r.eq(p+"b.type", "boolean")
			r.eq(n+".mappings.dynamic_templates.0.floats", obj{"match_mapping_type": "double", "mapping": obj{"type": "double"}})
			r.eq(n+".mappings.dynamic_templates.1.strings.mapping.type", "keyword")
			wantIDs(t, c.searchIDs(t, n, q(obj{"term": obj{"s": "hello world"}})), "1")
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"f": obj{"gt": 1.4, "lt": 1.6}}})), "1")

			c.do(t, http.MethodPut, "/"+n+"/_mapping", obj{"dynamic_templates": []any{
				obj{"strings": obj{"match_mapping_type": "string", "mapping": obj{"type": "text"}}},
				obj{"longs": obj{"match_mapping_type": "long", "mapping": obj{"type": "integer"}}},
			}}).wantStatus(http.StatusOK)
			c.do(t, http.MethodPut, "/"+n+"/_doc/2?refresh=true", obj{"s2": "x", "n2": 3, "f2": 2.5}).wantStatus(http.StatusCreated)
			r = c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).wantStatus(http.StatusOK)
			r.eq(p+"s2", obj{"type": "text"})
			r.eq(p+"n2.type", "integer")
			r.eq(p+"f2.type", "double")
			r.eq(n+".mappings.dynamic_templates.0.floats.mapping.type", "double")
			r.eq(n+".mappings.dynamic_templates.1.strings.mapping.type", "text")
			r.eq(n+".mappings.dynamic_templates.2.longs.mapping.type", "integer")
		}},
		{name: "mapping/object_field_rejects_concrete_value", run: func(t *testing.T, c *client) {
			// Once a field is an object, a scalar for it is a parse error:
			// "object mapping for [o] tried to parse field [o] as object,
			// but found a concrete value".
			n := c.createIndex(t, "objscalar", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"o": obj{"a": 1}}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+n+"/_doc/2", obj{"o": "flat"}).
				wantError(http.StatusBadRequest, "document_parsing_exception", "document_parsing_exception").
				contains("error.reason", "tried to parse field [o] as object, but found a concrete value")
		}},
	}
}

// typedFieldsQuery indexes two documents over every supported type and
// queries each field.
func typedFieldsQuery(t *testing.T, c *client) {
	n := c.createIndex(t, "typedq", obj{"mappings": obj{"properties": obj{
		"i":  obj{"type": "integer"},
		"s":  obj{"type": "short"},
		"l":  obj{"type": "long"},
		"d":  obj{"type": "double"},
		"f":  obj{"type": "float"},
		"sf": obj{"type": "scaled_float", "scaling_factor": 100},
		"b":  obj{"type": "boolean"},
		"at": obj{"type": "date"},
		"ms": obj{"type": "date", "format": "epoch_millis"},
		"o":  obj{"type": "object", "properties": obj{"name": obj{"type": "keyword"}}},
	}}})
	c.bulkOK(t, n,
		obj{"index": obj{"_id": "a"}}, obj{"i": 5, "s": 3, "l": 9007199254740993, "d": 0.25, "f": 1.5, "sf": 2.57, "b": true,
			"at": "2024-05-01T12:00:00Z", "ms": 1700000000000, "o": obj{"name": "ann"}},
		obj{"index": obj{"_id": "b"}}, obj{"i": 50, "s": -3, "l": 1, "d": 100.5, "f": 9.25, "sf": 100.01, "b": false,
			"at": "2024-06-01", "ms": 1800000000000, "o": obj{"name": "bob"}},
	)
	for _, tc := range []struct {
		name  string
		query obj
		want  string
	}{
		{"integer range", obj{"range": obj{"i": obj{"gte": 10}}}, "b"},
		{"short term", obj{"term": obj{"s": 3}}, "a"},
		{"short negative", obj{"term": obj{"s": -3}}, "b"},
		{"long beyond 2^53", obj{"term": obj{"l": 9007199254740993}}, "a"},
		{"double range", obj{"range": obj{"d": obj{"gt": 1}}}, "b"},
		{"float range", obj{"range": obj{"f": obj{"lt": 2}}}, "a"},
		// scaled_float stores round(2.57*100) = 257.
		{"scaled_float range", obj{"range": obj{"sf": obj{"gte": 2.565, "lte": 2.575}}}, "a"},
		{"boolean term", obj{"term": obj{"b": true}}, "a"},
		// Boolean fields accept the strings "true" and "false" in queries.
		{"boolean string", obj{"term": obj{"b": "false"}}, "b"},
		{"date without time", obj{"range": obj{"at": obj{"gte": "2024-05-15"}}}, "b"},
		{"epoch_millis range", obj{"range": obj{"ms": obj{"lt": 1750000000000}}}, "a"},
		{"object sub-field", obj{"term": obj{"o.name": "bob"}}, "b"},
	} {
		wantIDs(t, c.searchIDs(t, n, q(tc.query)), tc.want)
	}
	// _source is returned exactly as sent, whatever the mapping stored.
	c.do(t, http.MethodGet, "/"+n+"/_doc/a", nil).wantStatus(http.StatusOK).
		eq("_source.sf", 2.57).eq("_source.ms", 1700000000000).eq("_source.o.name", "ann")
}
