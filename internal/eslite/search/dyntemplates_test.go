package search

import (
	"strings"
	"testing"
)

func TestDynamicTemplatesRoundTripAndRefusals(t *testing.T) {
	t.Parallel()
	in := `{"dynamic_templates":[{"floats":{"match_mapping_type":"double","mapping":{"type":"double"}}},` +
		`{"any":{"match_mapping_type":["long","boolean"],"mapping":{"type":"keyword"}}}],"properties":{"a":{"type":"long"}}}`
	m, err := ParseMapping([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := m.MarshalJSON()
	again, err := ParseMapping(out)
	if err != nil {
		t.Fatalf("reparse %s: %v", out, err)
	}
	if out2, _ := again.MarshalJSON(); string(out2) != string(out) || !strings.Contains(string(out), `"floats":{"mapping":{"type":"double"},"match_mapping_type":"double"}`) {
		t.Fatalf("round trip:\n%s\n%s", out, out2)
	}
	if _, _, err := again.Prepare("1", []byte(`{"x":1.5,"y":2,"z":true}`)); err != nil {
		t.Fatal(err)
	}
	got, _ := again.MarshalJSON()
	for _, want := range []string{`"x":{"type":"double"}`, `"y":{"type":"keyword"}`, `"z":{"type":"keyword"}`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("mapping after a document lacks %s: %s", want, got)
		}
	}
	for _, bad := range []string{
		`{"dynamic_templates":[{"t":{"match":"*_id","mapping":{"type":"keyword"}}}]}`,
		`{"dynamic_templates":[{"t":{"match_mapping_type":"string","mapping":{"type":"{dynamic_type}"}}}]}`,
		`{"dynamic_templates":[{"t":{"match_mapping_type":"string","mapping":{"index":false}}}]}`,
		`{"dynamic_templates":[{"t":{"match_mapping_type":"float","mapping":{"type":"double"}}}]}`,
		`{"dynamic_templates":[{"t":{"match_mapping_type":"string"}}]}`,
		`{"dynamic_templates":{"t":{"match_mapping_type":"string","mapping":{"type":"keyword"}}}}`,
	} {
		if _, err := ParseMapping([]byte(bad)); err == nil {
			t.Errorf("%s accepted; eslite must refuse what it cannot honour", bad)
		}
	}
}
