package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestSchemaChangesNewTablesAndTruncateWhileRunning changes the schema under
// the running binary: added, renamed and dropped columns, a new table and a
// TRUNCATE are all picked up from the stream, without a restart.
func TestSchemaChangesNewTablesAndTruncateWhileRunning(t *testing.T) {
	ctx := context.Background()
	dbURL, conn := testDB(t, `CREATE TABLE items (id int PRIMARY KEY, name text, legacy text);
INSERT INTO items VALUES (1, 'apple', 'x'), (2, 'pear', 'y')`)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	r := runPipeline(t, dbURL, "schema", "")
	docs := r.docs
	waitFor := func(what string, ok func() (bool, any)) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			done, last := ok()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached within 60s; last: %v", what, last)
			}
			time.Sleep(100 * time.Millisecond) // polling interval
		}
	}
	waitDocs := func(what, index string, ok func(map[float64]map[string]any) bool) {
		t.Helper()
		waitFor(what, func() (bool, any) {
			got, err := docs(index)
			if err != nil {
				return false, err
			}
			return ok(got), got
		})
	}
	waitDocs("snapshot", "items", func(got map[float64]map[string]any) bool {
		return len(got) == 2 && got[1]["name"] == "apple"
	})

	exec(`ALTER TABLE items ADD COLUMN price numeric(10,2); INSERT INTO items VALUES (3, 'fig', 'z', 2.50)`)
	waitDocs("an added column", "items", func(got map[float64]map[string]any) bool {
		return got[3] != nil && got[3]["price"] == 2.5
	})
	var fields struct {
		Fields     []string          `json:"fields"`
		FieldTypes map[string]string `json:"field_types"`
	}
	waitFor("the mapping to gain the column", func() (bool, any) {
		err := r.apiJSON("GET", "/indices/items/fields", "", &fields)
		return err == nil && slices.Contains(fields.Fields, "price") && fields.FieldTypes["price"] != "", fmt.Sprint(fields, err)
	})

	exec(`ALTER TABLE items RENAME COLUMN name TO title; ALTER TABLE items DROP COLUMN legacy;
UPDATE items SET title = 'green apple' WHERE id = 1`)
	waitDocs("a renamed and a dropped column", "items", func(got map[float64]map[string]any) bool {
		d := got[1]
		_, hasLegacy := d["legacy"]
		_, hasName := d["name"]
		return d != nil && d["title"] == "green apple" && !hasLegacy && !hasName
	})

	exec(`CREATE TABLE later (id bigint PRIMARY KEY, note text); INSERT INTO later VALUES (7, 'created while running')`)
	waitDocs("a table created while running", "later", func(got map[float64]map[string]any) bool {
		return len(got) == 1 && got[7]["note"] == "created while running"
	})

	exec(`TRUNCATE items`)
	exec(`INSERT INTO items (id, title) VALUES (9, 'after the truncate')`)
	waitDocs("a truncate, then an insert", "items", func(got map[float64]map[string]any) bool {
		return len(got) == 1 && got[9]["title"] == "after the truncate"
	})
	// The other table is untouched by the truncate.
	if got, err := docs("later"); err != nil || len(got) != 1 {
		t.Fatalf("later after truncating items: %v %v", got, err)
	}
}
