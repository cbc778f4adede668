package eslite

import (
	"encoding/json"
	"testing"
)

// TestBulkFilterPath checks that a bulk answer keeps what filter_path
// names, as Elasticsearch does, and all of itself for a filter_path of a
// form eslite does not read.
func TestBulkFilterPath(t *testing.T) {
	t.Parallel()
	e := openTest(t, t.TempDir())
	do(t, e, "PUT", "/items", `{"mappings":{"properties":{"n":{"type":"integer"}}}}`).must(t, 200)
	body := "{\"index\":{\"_index\":\"items\",\"_id\":\"1\"}}\n{\"n\":1}\n" +
		"{\"index\":{\"_index\":\"items\",\"_id\":\"2\"}}\n{\"n\":\"not a number\"}\n" +
		"{\"delete\":{\"_index\":\"items\",\"_id\":\"9\"}}\n"
	for _, tc := range []struct {
		filter string
		want   string
	}{
		{"errors,items.*.status", `{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":400}},{"delete":{"status":404}}]}`},
		{"errors", `{"errors":true}`},
	} {
		r := do(t, e, "POST", "/_bulk?filter_path="+tc.filter, body).must(t, 200)
		if string(r.raw) != tc.want {
			t.Errorf("filter_path=%s: %s, want %s", tc.filter, r.raw, tc.want)
		}
	}
	r := do(t, e, "POST", "/_bulk?filter_path=items.*._id,took", body).must(t, 200)
	if _, ok := r.body["took"].(json.Number); !ok || len(r.body) != 2 || r.get("items.2.delete._id") != "9" || r.get("items.2.delete.status") != nil {
		t.Errorf("filter_path=items.*._id,took: %s", r.raw)
	}
	// The sink's filter: a failed item keeps its error.
	r = do(t, e, "POST", "/_bulk?filter_path=errors,items.*.status,items.*.error", body).must(t, 200)
	if r.get("items.1.index.error.type") != "document_parsing_exception" || r.get("items.0.index.result") != nil || r.get("took") != nil {
		t.Errorf("filter_path=errors,items.*.status,items.*.error: %s", r.raw)
	}
	// Unread forms keep everything.
	for _, filter := range []string{"-took", "items.index.status", "items.*._shards.total"} {
		r := do(t, e, "POST", "/_bulk?filter_path="+filter, body).must(t, 200)
		if r.get("took") == nil || r.get("items.0.index._seq_no") == nil {
			t.Errorf("filter_path=%s: %s", filter, r.raw)
		}
	}
}
