package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/pgtest"
)

func writeTableScript(t *testing.T, dir, folder, src string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, folder), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, folder, "transform.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTransformTestWithRows(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTableScript(t, dir, "users", `function transform(doc) {
  if (!doc.email) throw new Error("no email on " + doc.id);
  if (!doc.active) return null;
  doc.email = doc.email.replace(/^[^@]*/, "***");
  return doc;
}`)
	// Another table's broken script does not get in the way.
	writeTableScript(t, dir, "orders", `function transform(doc) {`)
	sd := "--scripts-dir=" + dir
	out := mustCLI(t, "transform", "test", "users", sd,
		"--row", `{"id": 1, "email": "ann@example.com", "active": true}`,
		"--row", `{"id": 2, "email": "bob@example.com", "active": false}`)
	for _, want := range []string{
		`input (insert 1):` + "\n" + `  {"active":true,"email":"ann@example.com","id":1}`,
		"output: index users/1\n" + `  {"active":true,"email":"***@example.com","id":1}`,
		"input (insert 2)", "output: delete users/2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, err := runCLI(t, nil, "transform", "test", "users", sd, "--row", `{"id": 3}`)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 rows failed") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(out, "no email on 3") || !strings.Contains(out, "stack:") || !strings.Contains(out, "transform.js:2:") {
		t.Fatalf("error output:\n%s", out)
	}
	if out := mustCLI(t, "transform", "test", "items", sd, "--row", `{"id": 4}`); !strings.Contains(out, "no script at") ||
		!strings.Contains(out, "output: index items/4\n  {\"id\":4}") {
		t.Fatalf("table without a script:\n%s", out)
	}
	if _, err := runCLI(t, nil, "transform", "test", "orders", sd, "--row", `{"id": 1}`); err == nil ||
		!strings.Contains(err.Error(), filepath.Join(dir, "orders", "transform.js")+":1:") {
		t.Fatalf("broken script: %v", err)
	}
	if _, err := runCLI(t, nil, "transform", "test", "users", sd); err == nil {
		t.Fatal("no --row and no --from-db must be refused")
	}
}

func TestTransformTestFromDB(t *testing.T) {
	c := pgtest.Require(t, cluster)
	t.Parallel()
	url := c.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA shop;
CREATE TYPE shop.mood AS ENUM ('sad', 'happy');
CREATE DOMAIN shop.qty AS integer CHECK (VALUE >= 0);
CREATE TABLE shop.orders (region text, id bigint, total numeric(12,2), big numeric, meta jsonb,
  placed timestamptz, tags text[], moods shop.mood[], n shop.qty, PRIMARY KEY (region, id));
INSERT INTO shop.orders VALUES
  ('eu', 2, 10.50, 123456789012345678901234567890, '{"a": {"b": 1}}', '2024-05-01 10:00:00.123456+00', '{x,y}', '{happy,sad}', 7),
  ('eu', 1, 99.99, 1, '{}', '2024-05-01 09:00:00+00', '{}', '{}', 0),
  ('us', 1, 5.00, NULL, NULL, NULL, NULL, NULL, NULL)`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTableScript(t, dir, "shop.orders", `function transform(doc) {
  return {total: doc.total, total_type: typeof doc.total, big: doc.big, b: doc.meta && doc.meta.a ? doc.meta.a.b : null,
          placed: doc.placed, tags: doc.tags, moods: doc.moods, n: doc.n, n_type: typeof doc.n};
}`)
	out := mustCLI(t, "transform", "test", "shop.orders", "--from-db", "--limit", "2", "--postgres-url", url, "--scripts-dir", dir)
	want := []string{
		`input (read ["eu",1]):`,
		`output: index shop.orders/["eu",1]` + "\n" + `  {"total":99.99,"total_type":"number","big":1,"b":null,"placed":"2024-05-01T09:00:00.000000Z","tags":[],"moods":[],"n":0,"n_type":"number"}`,
		`input (read ["eu",2]):`,
		`output: index shop.orders/["eu",2]` + "\n" + `  {"total":10.5,"total_type":"number","big":"123456789012345678901234567890","b":1,"placed":"2024-05-01T10:00:00.123456Z","tags":["x","y"],"moods":["happy","sad"],"n":7,"n_type":"number"}`,
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, `"us"`) {
		t.Errorf("--limit 2 read a third row:\n%s", out)
	}
}
