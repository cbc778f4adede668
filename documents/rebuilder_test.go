package documents

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/walsearch/walsearch/bus"
)

// TestRebuilderReadsWhatTheAssemblerIndexes: the documents a Rebuilder
// reads for verification are byte for byte those a rebuild indexes, and a
// root without a row has none.
func TestRebuilderReadsWhatTheAssemblerIndexes(t *testing.T) {
	ctx := context.Background()
	a, conn, _ := assemblerOn(t, ordersSchema, "orders", ordersWithCustomer)
	key := func(id string) []bus.Column { return []bus.Column{{Name: "id", Value: json.Number(id)}} }
	var changes []*bus.Change
	for _, id := range []string{"10", "11"} {
		changes = append(changes, &bus.Change{V: bus.SchemaVersion, Op: bus.OpRead, Schema: "public", Table: "orders",
			Key: key(id), RowJSON: json.RawMessage(`{"id":` + id + `}`)})
	}
	indexed, failed, err := collect(ctx, a, changes...)
	if err != nil || len(failed) > 0 || len(indexed) != 2 {
		t.Fatalf("%v %v %v", indexed, failed, err)
	}
	r := NewRebuilder([]*Plan{a.plans[0].plan}, nil)
	if !r.IsRoot("public.orders") || r.IsRoot("public.customers") {
		t.Fatal("IsRoot: want public.orders only")
	}
	docs, bad, err := r.Read(ctx, conn, "public.orders", [][]bus.Column{key("10"), key("11"), key("12")},
		[][]string{{"10"}, {"11"}, {"12"}})
	if err != nil || len(bad) > 0 {
		t.Fatal(err, bad)
	}
	if len(docs) != 2 {
		t.Fatalf("want documents of 10 and 11 only, got %v", docs)
	}
	for _, d := range indexed {
		got := docs[d.ID]
		if len(got) != 1 || got[0].Index != d.Index || got[0].ID != d.ID || got[0].Op != bus.DocIndex || string(got[0].Source) != string(d.Source) {
			t.Fatalf("%s: read %+v, the assembler indexed %+v", d.ID, got, d)
		}
	}
	if _, _, err := r.Read(ctx, conn, "public.customers", nil, nil); err == nil {
		t.Fatal("Read of a table that is no root: want an error")
	}
}
