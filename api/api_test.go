package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
)

func startAPI(t *testing.T, comps []api.Component) (string, *esclient.Client) {
	t.Helper()
	ts := newServer(t, serverOpts{comps: comps,
		indices: []api.ManagedIndex{{Name: "users", Schema: "public", Table: "users", Key: []string{"id"}}}})
	return ts.base, ts.es
}

func seed(t *testing.T, es *esclient.Client) {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= 25; i++ {
		status := []string{"active", "inactive"}[i%2]
		fmt.Fprintf(&b, `{"index":{"_index":"users","_id":"%d"}}`+"\n", i)
		fmt.Fprintf(&b, `{"id":%d,"name":"user %d","status":"%s","age":%d,"secret":"s%d"}`+"\n", i, i, status, 20+i, i)
	}
	res, err := esapi.BulkRequest{Body: strings.NewReader(b.String()), Refresh: "true"}.Do(context.Background(), es)
	if err != nil || res.IsError() {
		t.Fatalf("seed: %v %v", err, res)
	}
	res.Body.Close()
}

type searchResponse struct {
	Data []map[string]any `json:"data"`
	Meta struct {
		TotalRecords   int64    `json:"total_records"`
		PageSize       int      `json:"page_size"`
		CurrentPage    int      `json:"current_page"`
		TotalPages     int64    `json:"total_pages"`
		HasNext        bool     `json:"has_next"`
		HasPrevious    bool     `json:"has_previous"`
		SelectedFields []string `json:"selected_fields"`
	} `json:"meta"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func post(t *testing.T, base, body string) (int, searchResponse) {
	t.Helper()
	res, err := http.Post(base+"/search", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var sr searchResponse
	if err := json.NewDecoder(res.Body).Decode(&sr); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return res.StatusCode, sr
}

func TestSearchExactMatchListsRangesPagingAndSorting(t *testing.T) {
	t.Parallel()
	base, es := startAPI(t, nil)
	seed(t, es)

	code, sr := post(t, base, `{"index":"users","query_fields":{"status":"active"},"page_size":100}`)
	if code != 200 || sr.Meta.TotalRecords != 12 || len(sr.Data) != 12 {
		t.Fatalf("exact match on a text field: %d total=%d len=%d %+v", code, sr.Meta.TotalRecords, len(sr.Data), sr.Error)
	}
	code, sr = post(t, base, `{"index":"users","query_fields":{"id":[1,2,3,99]}}`)
	if code != 200 || sr.Meta.TotalRecords != 3 {
		t.Fatalf("list: %d total=%d", code, sr.Meta.TotalRecords)
	}
	code, sr = post(t, base, `{"index":"users","query_fields":{"age":{"gte":30,"lt":35}},"sort_by":{"age":"desc"},"fields":["id","age"]}`)
	if code != 200 || sr.Meta.TotalRecords != 5 || len(sr.Data) != 5 {
		t.Fatalf("range: %d total=%d", code, sr.Meta.TotalRecords)
	}
	if sr.Data[0]["age"] != float64(34) || sr.Data[4]["age"] != float64(30) || sr.Data[0]["name"] != nil {
		t.Fatalf("sort/fields not applied: %v", sr.Data)
	}
	code, sr = post(t, base, `{"index":"users","page":2,"page_size":10,"sort_by":{"id":"asc"}}`)
	if code != 200 || sr.Meta.CurrentPage != 2 || sr.Meta.TotalPages != 3 || !sr.Meta.HasNext || !sr.Meta.HasPrevious || sr.Data[0]["id"] != float64(11) {
		t.Fatalf("paging: %d %+v first=%v", code, sr.Meta, sr.Data[0])
	}
	code, sr = post(t, base, `{"index":"users","exclude_fields":["secret"],"page_size":1}`)
	if code != 200 || sr.Data[0]["secret"] != nil {
		t.Fatalf("exclude_fields: %v", sr.Data)
	}
	for _, f := range sr.Meta.SelectedFields {
		if f == "secret" {
			t.Fatalf("excluded field listed as selected: %v", sr.Meta.SelectedFields)
		}
	}
}

func TestSearchRejectsBadInputWithJSONErrors(t *testing.T) {
	t.Parallel()
	base, es := startAPI(t, nil)
	seed(t, es)
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"index":"missing"}`, 404},
		{`{"index":"*"}`, 400},
		{`{"index":".security"}`, 400},
		{`{"index":"users,other"}`, 400},
		{`{"index":"users","query_fields":{"nope":1}}`, 400},
		{`{"index":"users","page_size":1001}`, 400},
		{`{"index":"users","page":11,"page_size":1000}`, 400},
		{`{"index":"users","sort_by":{"nope":"asc"}}`, 400},
		{`{"index":"users","sort_by":{"age":"sideways"}}`, 400},
		{`{"index":"users","query_fields":{"age":{"regexp":".*"}}}`, 400},
		{`not json`, 400},
	} {
		code, sr := post(t, base, tc.body)
		if code != tc.code || sr.Error == nil || sr.Error.Code == "" || sr.Error.Message == "" {
			t.Errorf("%s: got %d %+v, want %d with a JSON error", tc.body, code, sr.Error, tc.code)
		}
	}
}

func TestHealthReportsEachComponent(t *testing.T) {
	t.Parallel()
	up := api.Component{Name: "bus", Check: func(context.Context) error { return nil }}
	down := api.Component{Name: "capture", Check: func(context.Context) error { return errors.New("slot busy") }}
	attention := api.Component{Name: "dead_letters", Check: func(context.Context) error {
		return fmt.Errorf("%w: dead letters are waiting", api.ErrNeedsAttention)
	}}
	base, _ := startAPI(t, []api.Component{up, down, attention})
	res, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var h struct {
		Status     string `json:"status"`
		Components map[string]struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"components"`
	}
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	// A stage being down does not stop searches: degraded, still serving.
	if res.StatusCode != 200 || h.Status != "degraded" || h.Components["bus"].Status != "ok" || h.Components["capture"].Error != "slot busy" {
		t.Fatalf("health = %d %+v", res.StatusCode, h)
	}
	// A component that works but needs attention is degraded, not down.
	if c := h.Components["dead_letters"]; c.Status != "degraded" || c.Error != "needs attention: dead letters are waiting" ||
		h.Components["capture"].Status != "down" {
		t.Fatalf("health = %d %+v, want dead_letters degraded and capture down", res.StatusCode, h)
	}
}

// TestRunStopsWhenCancelledDuringStartup cancels the server the moment it
// listens, before it can have started serving: Run must still return.
func TestRunStopsWhenCancelledDuringStartup(t *testing.T) {
	t.Parallel()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	es, err := esclient.New(esclient.Config{Transport: eng.RoundTripper()})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		cfg := api.DefaultConfig()
		cfg.Listen = "127.0.0.1:0"
		srv, err := api.New(cfg, es, api.PipelineFuncs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		<-srv.Ready()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after its context was cancelled during startup")
		}
	}
}
