package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/api"
)

// newItemsServer serves an "items" index with a field of each kind the
// sink maps columns to, plus a date with a custom format.
func newItemsServer(t *testing.T) *testServer {
	t.Helper()
	s := newServer(t, serverOpts{indices: []api.ManagedIndex{{Name: "items", Schema: "public", Table: "items", Key: []string{"id"}}}})
	res, err := esapi.IndicesCreateRequest{Index: "items", Body: strings.NewReader(`{"mappings":{"properties":{
		"id":{"type":"long"},"price":{"type":"double"},"qty":{"type":"integer"},
		"updated_at":{"type":"date","format":"strict_date_optional_time||epoch_millis","ignore_malformed":true},
		"day":{"type":"date","format":"dd/MM/yyyy"},
		"email":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}},
		"name":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}},
		"ok":{"type":"boolean"}}}}`)}.Do(context.Background(), s.es)
	if err != nil || res.IsError() {
		t.Fatalf("create items: %v %v", err, res)
	}
	res.Body.Close()
	bulk(t, s.es, `{"index":{"_index":"items","_id":"1"}}`+"\n"+
		`{"id":1,"price":2.5,"qty":3,"updated_at":"2024-01-01T00:00:00Z","day":"02/01/2024","email":"user10@example.com","name":"user ten","ok":true}`+"\n"+
		`{"index":{"_index":"items","_id":"2"}}`+"\n"+
		`{"id":2,"price":10,"qty":7,"updated_at":"2024-06-01T00:00:00Z","day":"03/06/2024","email":"user20@example.com","name":"user twenty","ok":false}`+"\n")
	return s
}

// TestFilterValuesOfTheWrongTypeAre400 sends values their fields cannot
// hold: each is a 400 bad_request naming the field and the type it wants,
// through POST /search and through the scroll endpoint's query_fields.
func TestFilterValuesOfTheWrongTypeAre400(t *testing.T) {
	t.Parallel()
	s := newItemsServer(t)
	for _, tc := range []struct {
		qf   string
		want []string // words the message must hold
	}{
		{`{"price":"abc"}`, []string{"query_fields.price", "number", "double"}},
		{`{"price":{"gte":"abc"}}`, []string{"query_fields.price.gte", "number", "double"}},
		{`{"id":"abc"}`, []string{"query_fields.id", "number", "long"}},
		{`{"updated_at":true}`, []string{"query_fields.updated_at", "date"}},
		{`{"updated_at":{"gte":"yesterday"}}`, []string{"query_fields.updated_at.gte", "date"}},
		{`{"price":1e400}`, []string{"query_fields.price", "finite number", "double"}},
		{`{"id":[1,"x",true]}`, []string{"query_fields.id[1]", "number", "long"}},
		{`{"id":{"gte":"2024-01-01"}}`, []string{"query_fields.id.gte", "number", "long"}},
		{`{"qty":3000000000}`, []string{"query_fields.qty", "2147483647", "integer"}},
		{`{"ok":"yes"}`, []string{"query_fields.ok", "true or false", "boolean"}},
		{`{"updated_at":"2024-01-01 10:00"}`, []string{"query_fields.updated_at", "date"}},
		// A format the API does not check itself: the engine's refusal is
		// still the client's 400.
		{`{"day":"not a day"}`, []string{"search engine refused", "query_fields", "/indices/items/fields"}},
	} {
		for _, via := range []string{"search", "scroll"} {
			var r reply
			if via == "search" {
				r = s.search(t, `{"index":"items","query_fields":`+tc.qf+`}`)
			} else {
				r = s.do(t, "GET", "/search/items/scroll?query_fields="+url.QueryEscape(tc.qf), "")
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			_ = json.Unmarshal(r.body, &e)
			if r.code != 400 || e.Error.Code != api.CodeBadRequest {
				t.Errorf("%s %s: %d %s, want 400 bad_request", via, tc.qf, r.code, r.body)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Error.Message, w) {
					t.Errorf("%s %s: message %q lacks %q", via, tc.qf, e.Error.Message, w)
				}
			}
		}
	}
	// Values the fields can hold still find their documents.
	for _, tc := range []struct {
		qf   string
		want int
	}{
		{`{"price":"2.5"}`, 1},
		{`{"id":[1,"2"]}`, 2},
		{`{"id":{"gte":1.5}}`, 1},
		{`{"qty":{"lt":2147483647}}`, 2},
		{`{"updated_at":{"gte":"2024-03-01"}}`, 1},
		{`{"updated_at":{"lt":"now"}}`, 2},
		{`{"updated_at":{"gte":"2024-01-01||+1M/M"}}`, 1},
		{`{"updated_at":{"gte":1704067200000}}`, 2},
		{`{"updated_at":"2024-01-01T00:00:00.000+00:00"}`, 1},
		{`{"day":"03/06/2024"}`, 1},
		{`{"ok":"false"}`, 1},
		{`{"name":42}`, 0},
	} {
		r := s.search(t, `{"index":"items","query_fields":`+tc.qf+`}`)
		var sr struct {
			Meta struct {
				Total int `json:"total_records"`
			} `json:"meta"`
		}
		if r.code != 200 {
			t.Errorf("%s: %d %s", tc.qf, r.code, r.body)
			continue
		}
		r.decode(t, &sr)
		if sr.Meta.Total != tc.want {
			t.Errorf("%s: %d records, want %d", tc.qf, sr.Meta.Total, tc.want)
		}
	}
}
