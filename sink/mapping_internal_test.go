package sink

import (
	"encoding/json"
	"testing"

	"github.com/walsearch/walsearch/bus"
)

func TestDeriveProperties(t *testing.T) {
	t.Parallel()
	cols := []bus.ColumnSchema{
		{Name: "id", Type: "bigint"}, {Name: "n", Type: "numeric"}, {Name: "r", Type: "real"},
		{Name: "name", Type: "text"}, {Name: "tags", Type: "text[]", Array: true},
		{Name: "doc", Type: "jsonb"}, {Name: "raw", Type: "json"}, {Name: "docs", Type: "jsonb[]", Array: true},
		{Name: "at", Type: "timestamp with time zone"}, {Name: "blob", Type: "bytea"},
	}
	derivedText := `{"fields":{"keyword":{"ignore_above":256,"type":"keyword"}},"type":"text"}`
	object := `{"dynamic":true,"type":"object"}`
	for _, tc := range []struct {
		name       string
		configured map[string]any
		want       map[string]string // field → mapping JSON; "" = not mapped
	}{
		{"defaults", nil, map[string]string{
			"id": `{"type":"long"}`, "n": `{"type":"double"}`, "r": `{"type":"double"}`,
			"name": derivedText, "tags": derivedText,
			// Left to dynamic mapping so that arrays and scalars index too.
			"doc": "", "raw": "", "docs": "",
			"at":   `{"format":"strict_date_optional_time||epoch_millis","ignore_malformed":true,"type":"date"}`,
			"blob": `{"doc_values":false,"index":false,"type":"keyword"}`,
		}},
		{"dynamic true as a string", map[string]any{"dynamic": "true"}, map[string]string{"doc": "", "raw": "", "docs": ""}},
		// Without dynamic mapping a json column left unmapped would be
		// dropped or refuse the row: objects keep being indexed.
		{"dynamic false", map[string]any{"dynamic": false}, map[string]string{"doc": object, "raw": object, "docs": object, "id": `{"type":"long"}`}},
		{"dynamic strict", map[string]any{"dynamic": "strict"}, map[string]string{"doc": object, "raw": object, "docs": object}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := deriveProperties(&bus.TableSchema{Columns: cols}, tc.configured)
			for field, want := range tc.want {
				f, ok := got[field]
				if want == "" {
					if ok {
						t.Errorf("%s: mapped as %v, want it left to dynamic mapping", field, f)
					}
					continue
				}
				b, _ := json.Marshal(f)
				if string(b) != want {
					t.Errorf("%s: mapped as %s, want %s", field, b, want)
				}
			}
		})
	}
}

func TestBuildMappings(t *testing.T) {
	t.Parallel()
	ts := &bus.TableSchema{Columns: []bus.ColumnSchema{{Name: "doc", Type: "jsonb"}, {Name: "n", Type: "integer"}}}
	ours := `{"walsearch_floats_as_double":{"mapping":{"type":"double"},"match_mapping_type":"double"}}`
	theirs := map[string]any{"ids": map[string]any{"match_mapping_type": "string", "mapping": map[string]any{"type": "keyword"}}}
	for _, tc := range []struct {
		name       string
		configured map[string]any
		want       string
	}{
		{"derived only", nil, `{"dynamic_templates":[` + ours + `],"properties":{"n":{"type":"long"}}}`},
		{"a configured field replaces the derived one", map[string]any{"properties": map[string]any{"doc": map[string]any{"type": "keyword"}}},
			`{"dynamic_templates":[` + ours + `],"properties":{"doc":{"type":"keyword"},"n":{"type":"long"}}}`},
		{"configured templates come first", map[string]any{"dynamic_templates": []any{theirs}, "date_detection": false},
			`{"date_detection":false,"dynamic_templates":[{"ids":{"mapping":{"type":"keyword"},"match_mapping_type":"string"}},` + ours + `],"properties":{"n":{"type":"long"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := buildMappings(deriveProperties(ts, tc.configured), tc.configured)
			b, _ := json.Marshal(got)
			if string(b) != tc.want {
				t.Fatalf("mappings\n%s\nwant\n%s", b, tc.want)
			}
		})
	}
}
