package eslite

import (
	"encoding/json"
	"testing"
)

// TestDocumentAPIsFilterSourceLikeSearch: _doc and _mget filter _source
// with the search's filter, so that objects in arrays and wildcards across
// dots read the same as in _search.
func TestDocumentAPIsFilterSourceLikeSearch(t *testing.T) {
	e := openTest(t, t.TempDir())
	do(t, e, "PUT", "/o/_doc/1?refresh=true", `{"items":[{"sku":"x","qty":1},{"sku":"y"}],"meta":{"a":{"hash":"h"}},"n":1}`).must(t, 201)
	const want = `{"items":[{"sku":"x"},{"sku":"y"}],"meta":{"a":{"hash":"h"}}}`
	for _, path := range []string{"/o/_doc/1?_source_includes=items.sku,*.hash", "/o/_source/1?_source_includes=items.sku,*.hash"} {
		r := do(t, e, "GET", path, "").must(t, 200)
		if got := jsonAt(t, r, path); got != want {
			t.Errorf("GET %s: _source %s, want %s", path, got, want)
		}
	}
	s := do(t, e, "POST", "/o/_search", `{"_source":["items.sku","*.hash"]}`).must(t, 200)
	if got := jsonAt(t, s, "search"); got != want {
		t.Errorf("_search: _source %s, want %s", got, want)
	}
}

// jsonAt returns the _source in a reply of GET _doc, GET _source or
// _search, as its JSON text.
func jsonAt(t *testing.T, r reply, what string) string {
	t.Helper()
	var doc struct {
		Source json.RawMessage `json:"_source"`
		Hits   struct {
			Hits []struct {
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(r.raw, &doc); err != nil {
		t.Fatalf("%s: %v: %s", what, err, r.raw)
	}
	switch {
	case len(doc.Hits.Hits) > 0:
		return string(doc.Hits.Hits[0].Source)
	case doc.Source != nil:
		return string(doc.Source)
	}
	return string(r.raw) // GET _source answers the source itself
}
