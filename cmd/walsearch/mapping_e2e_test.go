package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestJSONShapesAndAddedColumnsAreMappedAsDocumented runs the binary over a
// table whose jsonb columns hold arrays of scalars, scalars, objects and
// arrays of objects: every row is indexed and searchable by its JSON values.
// A column added while running, written at once, is mapped from its type
// (keyword for a uuid, double for numeric like every other numeric column,
// never the text or float dynamic mapping would guess), and a column added with a DEFAULT, which
// PostgreSQL gives the existing rows without a change in the WAL, is named in
// a warning with the backfill that fixes those rows.
func TestJSONShapesAndAddedColumnsAreMappedAsDocumented(t *testing.T) {
	ctx := context.Background()
	dbURL, conn := testDB(t, `CREATE TABLE items (id int PRIMARY KEY, name text, tags jsonb, attrs jsonb, score jsonb);
INSERT INTO items VALUES
  (1, 'apple', '["red","green"]', '{"origin":"france","sizes":[{"cm":7}]}', '4.5'),
  (2, 'pear', '"yellow"', '[{"origin":"spain"},{"origin":"italy"}]', '7.5'),
  (3, 'fig', '["purple"]', NULL, NULL)`)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	r := runPipeline(t, dbURL, "mapping", "")
	waitFor := func(what string, ok func() (bool, any)) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			done, last := ok()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached within 60s; last: %v\nlog:\n%s", what, last, r.p.output())
			}
			time.Sleep(100 * time.Millisecond) // polling interval
		}
	}
	waitFor("every row indexed", func() (bool, any) {
		got, err := r.docs("items")
		return err == nil && len(got) == 3, fmt.Sprint(got, err)
	})
	ids := func(body string) ([]float64, error) {
		var sr struct {
			Data []map[string]any `json:"data"`
		}
		if err := r.apiJSON("POST", "/search", body, &sr); err != nil {
			return nil, err
		}
		var out []float64
		for _, d := range sr.Data {
			id, _ := d["id"].(float64)
			out = append(out, id)
		}
		return out, nil
	}
	for body, want := range map[string]string{
		`{"index":"items","q":"green"}`:                              "[1]",
		`{"index":"items","q":"yellow"}`:                             "[2]",
		`{"index":"items","q":"italy"}`:                              "[2]",
		`{"index":"items","query_fields":{"score":{"gt":5}}}`:        "[2]",
		`{"index":"items","query_fields":{"attrs.sizes.cm":7}}`:      "[1]",
		`{"index":"items","query_fields":{"attrs.origin":"france"}}`: "[1]",
	} {
		got, err := ids(body)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("%s: ids %v (%v), want %s", body, got, err, want)
		}
	}

	exec(`ALTER TABLE items ADD COLUMN price numeric(10,2), ADD COLUMN ref uuid, ADD COLUMN stock int NOT NULL DEFAULT 5;
INSERT INTO items (id, name, price, ref) VALUES (4, 'plum', 2.50, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')`)
	var fields struct {
		FieldTypes map[string]string `json:"field_types"`
	}
	waitFor("the added columns in the mapping", func() (bool, any) {
		err := r.apiJSON("GET", "/indices/items/fields", "", &fields)
		return err == nil && fields.FieldTypes["price"] != "" && fields.FieldTypes["ref"] != "" && fields.FieldTypes["stock"] != "", fmt.Sprint(fields, err)
	})
	for field, want := range map[string]string{"price": "double", "ref": "keyword", "stock": "long", "score": "double"} {
		if got := fields.FieldTypes[field]; got != want {
			t.Errorf("%s mapped as %q, want %q", field, got, want)
		}
	}
	var warning string
	waitFor("a warning naming the backfill", func() (bool, any) {
		for line := range strings.Lines(r.p.output()) {
			if strings.Contains(line, "walsearch backfill items") {
				warning = line
			}
		}
		return warning != "", nil
	})
	if !strings.Contains(warning, "stock") || strings.Contains(warning, "price") {
		t.Errorf("the warning should name stock (added with a default) and not price: %s", warning)
	}
	t.Logf("warning: %s", warning)
}
