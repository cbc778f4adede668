package api_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/walsearch/walsearch/api"
)

// TestSearchReachesNestedFields: documents built from related tables (an
// order with its customer object and its items array, mapped dynamically
// as the sink leaves them) are found by a filter on a field of an array's
// objects (items.sku), by full text on a field of an embedded object
// (customer.name), and by an exact filter on it.
func TestSearchReachesNestedFields(t *testing.T) {
	s := newServer(t, serverOpts{indices: []api.ManagedIndex{{Name: "orders", Schema: "public", Table: "orders", Key: []string{"id"},
		Columns: []string{"id", "status", "placed_at"}}}})
	bulk(t, s.es, `{"index":{"_index":"orders","_id":"10"}}
{"id":10,"status":"paid","customer":{"id":1,"name":"Ada Lovelace"},"items":[{"id":100,"sku":"SKU-1","qty":1},{"id":101,"sku":"SKU-2","qty":3}]}
{"index":{"_index":"orders","_id":"11"}}
{"id":11,"status":"new","customer":{"id":2,"name":"Alan Turing"},"items":[{"id":102,"sku":"SKU-3","qty":1}]}
{"index":{"_index":"orders","_id":"12"}}
{"id":12,"status":"new","customer":{"id":3,"name":"Grace Hopper"},"items":[{"id":103,"sku":"SKU-2","qty":2}]}
{"index":{"_index":"orders","_id":"13"}}
{"id":13,"status":"paid","customer":{"id":1,"name":"Ada Lovelace"},"items":[]}
`)
	for _, tc := range []struct {
		body string
		want []int
	}{
		{`{"index":"orders","query_fields":{"items.sku":"SKU-2"}}`, []int{10, 12}},
		{`{"index":"orders","query_fields":{"items.sku":["SKU-1","SKU-3"]}}`, []int{10, 11}},
		{`{"index":"orders","query_fields":{"items.sku":"SKU-2","status":"new"}}`, []int{12}},
		{`{"index":"orders","q":"lovelace"}`, []int{10, 13}},
		{`{"index":"orders","q":"hopper SKU-2"}`, []int{12}},
		{`{"index":"orders","q":"lovelace","fields":["id","customer.name","items.sku"]}`, []int{10, 13}},
		{`{"index":"orders","query_fields":{"customer.name":"Alan Turing"}}`, []int{11}},
		{`{"index":"orders","query_fields":{"items.qty":{"gte":3}}}`, []int{10}},
		// Arrays of objects are objects, not nested: each field matches
		// on its own, here in two different items of order 10.
		{`{"index":"orders","query_fields":{"items.sku":"SKU-1","items.qty":3}}`, []int{10}},
	} {
		r := s.search(t, tc.body)
		if r.code != 200 {
			t.Fatalf("%s: %d %s", tc.body, r.code, r.body)
		}
		var sr struct {
			Data []struct {
				ID       int `json:"id"`
				Customer struct {
					Name string `json:"name"`
				} `json:"customer"`
			} `json:"data"`
		}
		r.decode(t, &sr)
		var got []int
		for _, d := range sr.Data {
			got = append(got, d.ID)
			if d.Customer.Name == "" {
				t.Errorf("%s: order %d came back without its customer", tc.body, d.ID)
			}
		}
		slices.Sort(got)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: found %v, want %v", tc.body, got, tc.want)
		}
	}
}
