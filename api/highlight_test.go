package api_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestHighlightsComeOnlyFromReturnedFields checks that fields and
// exclude_fields bound _highlight as they bound the documents: a field left
// out of a document is not shown through its highlights either.
func TestHighlightsComeOnlyFromReturnedFields(t *testing.T) {
	t.Parallel()
	s := newItemsServer(t)
	for _, tc := range []struct {
		body      string
		highlight string // the keys of the first document's _highlight
	}{
		{`{"index":"items","q":"user10@example.com","highlight":true,"exclude_fields":["email"]}`, ""},
		{`{"index":"items","q":"user10@example.com","highlight":true,"fields":["id"]}`, ""},
		{`{"index":"items","q":"user10@example.com","highlight":true,"fields":["id","email"],"exclude_fields":["email"]}`, ""},
		{`{"index":"items","q":"user10@example.com","highlight":true,"fields":["id","email"]}`, "email"},
		{`{"index":"items","q":"user10@example.com","highlight":true}`, "email"},
		{`{"index":"items","q":"user ten","highlight":true,"fields":["name","email"]}`, "name"},
		{`{"index":"items","q":"user ten","highlight":true,"exclude_fields":["name"]}`, ""},
	} {
		r := s.search(t, tc.body)
		var sr struct {
			Data []map[string]json.RawMessage `json:"data"`
		}
		if r.code != 200 {
			t.Errorf("%s: %d %s", tc.body, r.code, r.body)
			continue
		}
		r.decode(t, &sr)
		if len(sr.Data) != 1 {
			t.Errorf("%s: %d documents, want 1: %s", tc.body, len(sr.Data), r.body)
			continue
		}
		got := ""
		if hl, ok := sr.Data[0]["_highlight"]; ok {
			got = keysOf(t, hl)
		}
		if got != tc.highlight {
			t.Errorf("%s: _highlight has %q, want %q: %s", tc.body, got, tc.highlight, r.body)
		}
		if tc.highlight == "" && strings.Contains(string(r.body), "example.com") && strings.Contains(tc.body, `"email"]`) {
			t.Errorf("%s: the left-out address is in the answer: %s", tc.body, r.body)
		}
	}
}
