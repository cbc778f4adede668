package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestScriptsRunInThePipeline drops a transform.js into scripts_dir and runs
// the real binary: rows are reshaped, and a row that stops matching the
// script's filter leaves the index.
func TestScriptsRunInThePipeline(t *testing.T) {
	ctx := context.Background()
	dbURL, conn := testDB(t, `
CREATE TABLE people (id int PRIMARY KEY, first text, last text, email text, active boolean NOT NULL);
INSERT INTO people VALUES (1, 'Ada', 'Lovelace', 'ada@example.com', true), (2, 'Alan', 'Turing', 'alan@example.com', true),
                          (3, 'Grace', 'Hopper', 'grace@example.com', false);`)
	scripts := t.TempDir()
	if err := os.MkdirAll(filepath.Join(scripts, "people"), 0o755); err != nil {
		t.Fatal(err)
	}
	js := `function transform(doc, ctx) {
  if (!doc.active) { return null; }
  if (doc.email === null) { throw new Error("row " + doc.id + " has no email"); }
  return {id: doc.id, full_name: doc.first + " " + doc.last, email_domain: doc.email.split("@")[1]};
}`
	if err := os.WriteFile(filepath.Join(scripts, "people", "transform.js"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runPipeline(t, dbURL, "scripts", fmt.Sprintf("scripts_dir: %s\ntransform:\n  reload_interval: 200ms\n", scripts))
	natsAddr := r.natsAddr
	docs := func() (map[float64]map[string]any, error) { return r.docs("people") }
	waitFor := func(what string, ok func(map[float64]map[string]any) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		var last any
		for {
			got, err := docs()
			if err == nil && ok(got) {
				return
			}
			last = got
			if err != nil {
				last = err
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached within 60s; last: %v", what, last)
			}
			time.Sleep(100 * time.Millisecond) // polling interval
		}
	}
	waitFor("snapshot through the script", func(got map[float64]map[string]any) bool {
		return len(got) == 2 && got[1]["full_name"] == "Ada Lovelace" && got[2]["email_domain"] == "example.com" &&
			got[1]["first"] == nil && got[1]["email"] == nil
	})
	if _, err := conn.Exec(ctx, `UPDATE people SET active = false WHERE id = 1; UPDATE people SET active = true WHERE id = 3;
INSERT INTO people VALUES (4, 'Katherine', 'Johnson', 'kj@nasa.gov', true);`); err != nil {
		t.Fatal(err)
	}
	waitFor("a row that stops matching leaves, one that starts matching arrives", func(got map[float64]map[string]any) bool {
		_, has1 := got[1]
		return !has1 && len(got) == 3 && got[3]["full_name"] == "Grace Hopper" && got[4]["email_domain"] == "nasa.gov"
	})

	// A row the script throws on is dead-lettered while others flow; after
	// the script is fixed (hot reload, no restart), replaying the dead letter
	// indexes it.
	if _, err := conn.Exec(ctx, `INSERT INTO people VALUES (5, 'Margaret', 'Hamilton', NULL, true), (6, 'Barbara', 'Liskov', 'bl@mit.edu', true)`); err != nil {
		t.Fatal(err)
	}
	waitFor("the good row of the pair", func(got map[float64]map[string]any) bool { return got[6] != nil })
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := runCLI(t, nil, "dlq", "list", "--nats-url", "nats://"+natsAddr)
		if err == nil && strings.Contains(out, "has no email") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failing row never reached the dead-letter stream: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	if _, ok := func() (map[string]any, bool) { got, _ := docs(); d, ok := got[5]; return d, ok }(); ok {
		t.Fatal("the row the script threw on was indexed")
	}
	fixed := strings.Replace(js, `throw new Error("row " + doc.id + " has no email");`, `doc.email = "unknown@nowhere"; doc.fixed = true;`, 1)
	fixed = strings.Replace(fixed, `email_domain: doc.email.split("@")[1]}`, `email_domain: doc.email.split("@")[1], rev: 2}`, 1)
	if err := os.WriteFile(filepath.Join(scripts, "people", "transform.js"), []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	// Wait until the new script is live: a fresh change comes out with rev 2.
	deadline = time.Now().Add(60 * time.Second)
	for {
		if _, err := conn.Exec(ctx, `UPDATE people SET last = last WHERE id = 2`); err != nil {
			t.Fatal(err)
		}
		got, _ := docs()
		if got[2] != nil && got[2]["rev"] == float64(2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fixed script was not picked up: %v", got[2])
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	if out, err := runCLI(t, nil, "dlq", "replay", "--all", "--nats-url", "nats://"+natsAddr); err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	waitFor("the replayed row, through the fixed script", func(got map[float64]map[string]any) bool {
		return got[5] != nil && got[5]["full_name"] == "Margaret Hamilton" && got[5]["email_domain"] == "nowhere"
	})
	if out, err := runCLI(t, nil, "dlq", "list", "--nats-url", "nats://"+natsAddr); err != nil || strings.Contains(out, "has no email") {
		t.Fatalf("dead letter still listed after replay: %v\n%s", err, out)
	}
	if err := r.p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
