package main

import (
	"fmt"
	"testing"
	"time"
)

// TestStatusOfTablesReadOnlyForDocuments: /status said "indexing" for ever
// for the tables captured only because a document definition reads them,
// naming an index that does not exist. Once the defined documents are
// searchable, every table's snapshot is done, and only tables with an
// index of their own name one.
func TestStatusOfTablesReadOnlyForDocuments(t *testing.T) {
	t.Parallel()
	dbURL, conn := testDB(t, shopSchema+`
INSERT INTO customers VALUES (1, 'Ada');
INSERT INTO products VALUES (1, 'pen');
INSERT INTO tags VALUES (1, 'office');
INSERT INTO product_tags VALUES (1, 1);
INSERT INTO orders VALUES (10, 1, 'new');
INSERT INTO order_items VALUES (100, 10, 1, 1, 1);`)
	r := runDocuments(t, dbURL, "documents_status")
	waitDocuments(t, r, conn, "orders", ordersOracle, "snapshot")
	waitDocuments(t, r, conn, "products", productsOracle, "snapshot")

	wantIndex := map[string]string{"orders": "orders", "products": "products",
		"customers": "", "order_items": "", "tags": "", "product_tags": ""}
	type table struct {
		Table    string `json:"table"`
		Index    string `json:"index"`
		Snapshot string `json:"snapshot"`
	}
	var last []table
	// The documents are searchable, so the snapshot is written: what is
	// left is at most a status poll and a refresh. Generous for a loaded
	// machine; polling stops once every table is done.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var st struct {
			Tables []table `json:"tables"`
		}
		if err := r.apiJSON("GET", "/status", "", &st); err != nil {
			t.Fatal(err)
		}
		last = st.Tables
		problem := ""
		seen := map[string]bool{}
		for _, tb := range st.Tables {
			seen[tb.Table] = true
			want, ok := wantIndex[tb.Table]
			switch {
			case !ok:
			case tb.Index != want:
				problem = fmt.Sprintf("table %s names index %q, want %q", tb.Table, tb.Index, want)
			case tb.Snapshot != "done":
				problem = fmt.Sprintf("table %s: snapshot %q", tb.Table, tb.Snapshot)
			}
		}
		for name := range wantIndex {
			if !seen[name] {
				problem = "table " + name + " missing"
			}
		}
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s; tables: %+v", problem, last)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}
