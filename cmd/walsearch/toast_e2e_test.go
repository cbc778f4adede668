package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestToastedTextSurvivesUpdatesThatDoNotTouchIt runs the real binary over two
// tables holding a 100 KB text column stored out of line (TOAST), one with the
// default replica identity and one with REPLICA IDENTITY FULL. Updates that
// leave the text alone must keep it in the index, whether the row came from
// the snapshot or from the log; an update that changes it must replace it.
func TestToastedTextSurvivesUpdatesThatDoNotTouchIt(t *testing.T) {
	ctx := context.Background()
	// EXTERNAL storage: out of line and uncompressed, so the value is
	// TOASTed whatever its content.
	dbURL, conn := testDB(t, `CREATE TABLE notes_default (id int PRIMARY KEY, title text, body text);
ALTER TABLE notes_default ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE notes_full (id int PRIMARY KEY, title text, body text);
ALTER TABLE notes_full ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE notes_full REPLICA IDENTITY FULL`)
	tables := []string{"notes_default", "notes_full"}
	// 100 KB of text that differs per row and per version.
	body := func(id, version int) string {
		var b strings.Builder
		for b.Len() < 100_000 {
			fmt.Fprintf(&b, "row %d version %d line %d. ", id, version, b.Len())
		}
		return b.String()[:100_000]
	}
	for _, tbl := range tables {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s VALUES (1, 'snapshot row', $1)`, tbl), body(1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// The text really is out of line: its table has TOAST chunks.
	var chunks int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_class
		WHERE relname = 'notes_default' AND reltoastrelid <> 0 AND pg_relation_size(reltoastrelid) > 0`).Scan(&chunks); err != nil || chunks != 1 {
		t.Fatalf("notes_default has no TOAST data (%d, %v): the test would prove nothing", chunks, err)
	}

	r := runPipeline(t, dbURL, "toast", "")
	docs := r.docs
	// want maps id to (title, body version).
	type doc struct {
		title   string
		version int
	}
	waitFor := func(what string, want map[int]doc) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for _, tbl := range tables {
			var last string
			for {
				got, err := docs(tbl)
				// Every document seen, at any moment, holds a whole text:
				// never a missing one, never a placeholder.
				for id, d := range got {
					if b, _ := d["body"].(string); b != body(int(id), 1) && b != body(int(id), 2) {
						t.Fatalf("%s: %s: row %v has a body of %d bytes starting %.40q", tbl, what, id, len(b), b)
					}
				}
				ok := err == nil && len(got) == len(want)
				for id, w := range want {
					d := got[float64(id)]
					if !ok || d == nil || d["title"] != w.title {
						ok = false
						break
					}
					// Once the title shows, the body is the right version.
					if b, _ := d["body"].(string); b != body(id, w.version) {
						t.Fatalf("%s: %s: row %d has title %q but body of %d bytes starting %.40q, want version %d (100000 bytes)",
							tbl, what, id, w.title, len(b), b, w.version)
					}
				}
				if ok {
					break
				}
				last = fmt.Sprintf("%v %v", summarize(got), err)
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s: not reached within 60s; last: %s", tbl, what, last)
				}
				time.Sleep(100 * time.Millisecond) // polling interval
			}
		}
	}
	waitFor("snapshot", map[int]doc{1: {"snapshot row", 1}})

	for _, tbl := range tables {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s VALUES (2, 'streamed row', $1)`, tbl), body(2, 1)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("streamed insert", map[int]doc{1: {"snapshot row", 1}, 2: {"streamed row", 1}})

	// Updates that leave the text alone: pgoutput sends it as "unchanged
	// TOAST" (or, with REPLICA IDENTITY FULL, in the old row only).
	for _, tbl := range tables {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`UPDATE %s SET title = 'retitled ' || id`, tbl)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf(`UPDATE %s SET title = title || ' twice' WHERE id = 2`, tbl)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("updates that do not touch the text", map[int]doc{1: {"retitled 1", 1}, 2: {"retitled 2 twice", 1}})

	// An update that changes the text replaces it.
	for _, tbl := range tables {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`UPDATE %s SET body = $1, title = 'rewritten' WHERE id = 1`, tbl), body(1, 2)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("an update of the text", map[int]doc{1: {"rewritten", 2}, 2: {"retitled 2 twice", 1}})
}

// summarize shortens documents for failure messages: long strings are cut.
func summarize(docs map[float64]map[string]any) string {
	var b strings.Builder
	for id, d := range docs {
		fmt.Fprintf(&b, "%v:{", id)
		for k, v := range d {
			s := fmt.Sprint(v)
			if len(s) > 40 {
				s = fmt.Sprintf("%.40s…(%d bytes)", s, len(s))
			}
			fmt.Fprintf(&b, "%s=%s ", k, s)
		}
		b.WriteString("} ")
	}
	return b.String()
}

// TestToastedTextFollowsARowWhoseKeyChanged: an UPDATE that changes a row's
// primary key and leaves its TOASTed text alone must index the text under
// the new key — also when the new key belonged, in the same transaction, to
// a row just deleted (whose text must not be taken instead).
func TestToastedTextFollowsARowWhoseKeyChanged(t *testing.T) {
	ctx := context.Background()
	dbURL, conn := testDB(t, `CREATE TABLE moves_default (id int PRIMARY KEY, title text, body text);
ALTER TABLE moves_default ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE moves_full (id int PRIMARY KEY, title text, body text);
ALTER TABLE moves_full ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE moves_full REPLICA IDENTITY FULL`)
	tables := []string{"moves_default", "moves_full"}
	text := func(tag string) string { return strings.Repeat(tag+" ", 100_000/(len(tag)+1)) }
	r := runPipeline(t, dbURL, "toastmove", "")
	for _, tbl := range tables {
		for id, tag := range map[int]string{1: "first", 2: "second", 3: "third"} {
			if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s VALUES ($1, 'row', $2)`, tbl), id, text(tag)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// want maps id to the tag of its text and its title.
	waitFor := func(what string, want map[int][2]string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for _, tbl := range tables {
			for {
				got, err := r.docs(tbl)
				ok := err == nil && len(got) == len(want)
				for id, w := range want {
					d := got[float64(id)]
					if !ok || d == nil || d["title"] != w[1] {
						ok = false
						break
					}
					if b, _ := d["body"].(string); b != text(w[0]) {
						t.Fatalf("%s: %s: row %d has title %q but body of %d bytes starting %.20q, want the %q text",
							tbl, what, id, w[1], len(b), b, w[0])
					}
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s: not reached within 60s; last: %s %v", tbl, what, summarize(got), err)
				}
				time.Sleep(100 * time.Millisecond) // polling interval
			}
		}
	}
	waitFor("inserts", map[int][2]string{1: {"first", "row"}, 2: {"second", "row"}, 3: {"third", "row"}})
	for _, tbl := range tables {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`UPDATE %s SET id = 11, title = 'moved' WHERE id = 1`, tbl)); err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE id = 2`, tbl)); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET id = 2, title = 'took 2' WHERE id = 3`, tbl)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("key changes", map[int][2]string{11: {"first", "moved"}, 2: {"third", "took 2"}})
}
