package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestBulkItems(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
		bad        bool
	}{
		{"index and delete", `{"index":{"_index":"items_v1","_id":"1","version":5,"version_type":"external_gte"}}
{"id":1,"name":"{\"delete\":{}}"}
{"delete":{"_index":"items_v1","_id":"2"}}
{"create":{"_index":"items_v1","_id":"3"}}
{"delete":{}}
`, []string{"index items_v1 1", "delete items_v1 2", "create items_v1 3"}, false},
		{"update, blank lines, no final newline", "\n{\"update\":{\"_index\":\"a\",\"_id\":\"x\\\"y\"}}\n\n{\"doc\":{}}", []string{`update a x"y`}, false},
		{"source missing", `{"index":{"_index":"a","_id":"1"}}`, nil, true},
		{"unknown action", "{\"upsert\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n", nil, true},
		{"two actions", "{\"index\":{},\"delete\":{}}\n{}\n", nil, true},
		{"not json", "index a 1\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := BulkItems([]byte(tc.body), func(op, index, id string) { got = append(got, op+" "+index+" "+id) })
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v, want an error: %v", err, tc.bad)
			}
			if !tc.bad && fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("items %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzBulkItems(f *testing.F) {
	f.Add([]byte("{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n{\"delete\":{\"_id\":\"2\"}}\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		n := 0
		err := BulkItems(body, func(op, _, _ string) {
			switch op {
			case "index", "create", "update", "delete":
			default:
				t.Fatalf("action %q", op)
			}
			n++
		})
		if err == nil && n > bytes.Count(body, []byte("{")) {
			t.Fatalf("%d actions from %d objects", n, bytes.Count(body, []byte("{")))
		}
	})
}

// TestDiscardES checks over HTTP that the endpoint answers like
// Elasticsearch at start, acknowledges every bulk item and records it.
func TestDiscardES(t *testing.T) {
	a := NewArrivals(3)
	d := StartDiscardES(t, a)
	ctx := context.Background()
	call := func(method, path, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, d.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(raw)
	}
	if code, h, body := call("GET", "/", ""); code != 200 || h.Get("X-Elastic-Product") != "Elasticsearch" || !strings.Contains(body, `"number"`) {
		t.Fatalf("GET /: %d %v %s", code, h, body)
	}
	if code, _, body := call("PUT", "/items_v1", `{"aliases":{"items":{"is_write_index":true}}}`); code != 200 {
		t.Fatalf("create index: %d %s", code, body)
	}
	code, _, body := call("POST", "/_bulk", "{\"index\":{\"_index\":\"items\",\"_id\":\"1\"}}\n{\"id\":1}\n{\"index\":{\"_index\":\"items\",\"_id\":\"-4\"}}\n{}\n{\"delete\":{\"_index\":\"items\",\"_id\":\"3\"}}\n")
	if code != 200 {
		t.Fatalf("bulk: %d %s", code, body)
	}
	var res struct {
		Errors bool
		Items  []map[string]struct {
			ID     string `json:"_id"`
			Status int    `json:"status"`
		}
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Errors || len(res.Items) != 3 ||
		res.Items[0]["index"].Status != 201 || res.Items[0]["index"].ID != "1" || res.Items[2]["delete"].Status != 200 {
		t.Fatalf("bulk answer %s (%v)", body, err)
	}
	if rows, warm, dup, stray := a.Counts(); rows != 2 || warm != 1 || dup != 0 || stray != 0 {
		t.Fatalf("recorded rows %d, warm %d, dup %d, stray %d; want 2, 1, 0, 0", rows, warm, dup, stray)
	}
	if got := a.Missing(5); fmt.Sprint(got) != "[2]" {
		t.Fatalf("missing %v, want [2]", got)
	}
	// filter_path is honoured, as Elasticsearch honours it.
	code, _, body = call("POST", "/_bulk?filter_path=errors,items.*.status,items.*.error",
		"{\"index\":{\"_index\":\"items\",\"_id\":\"2\"}}\n{}\n{\"delete\":{\"_index\":\"items\",\"_id\":\"3\"}}\n")
	if want := `{"errors":false,"items":[{"index":{"status":201}},{"delete":{"status":200}}]}`; code != 200 || body != want {
		t.Fatalf("bulk with filter_path: %d %s, want %s", code, body, want)
	}
	// Nothing was stored.
	if code, _, body := call("GET", "/items/_count", ""); code != 200 || !strings.Contains(body, `"count":0`) {
		t.Fatalf("count: %d %s", code, body)
	}
	if d.Bulks() != 2 {
		t.Fatalf("%d bulk requests counted, want 2", d.Bulks())
	}
}
