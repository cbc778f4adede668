package transform_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/transform"
)

func TestHotReload(t *testing.T) {
	t.Parallel()
	log, rec := newLogRecorder()
	dir := t.TempDir()
	writeScript(t, dir, "users", `function transform(doc) { doc.v = 1; return doc; }`)
	s := loadScripts(t, dir, func(c *transform.ScriptConfig) { c.ReloadInterval = 10 * time.Millisecond; c.Logger = log })
	row := func(table string) []string {
		return mapOne(t, s, change(bus.OpInsert, table, 1, 10, map[string]any{"id": 1}))
	}
	if got := row("users"); !slices.Equal(got, []string{`index users/1 {"id":1,"v":1}`}) {
		t.Fatalf("first version: %v", got)
	}

	writeScript(t, dir, "users", `function transform(doc) { doc.v = 2; return doc; }`)
	eventually(t, "the edited script", func() bool { return slices.Equal(row("users"), []string{`index users/1 {"id":1,"v":2}`}) })

	writeScript(t, dir, "users", "function transform(doc) {\n  return doc.;\n}")
	eventually(t, "the rejection log line", func() bool { return len(rec.find("script rejected")) > 0 })
	got := rec.find("script rejected")[0]
	if !strings.Contains(got, "ERROR script rejected; the previous version keeps running") || !strings.Contains(got, "transform.js:2:") {
		t.Fatalf("rejection line: %s", got)
	}
	if got := row("users"); !slices.Equal(got, []string{`index users/1 {"id":1,"v":2}`}) {
		t.Fatalf("after a broken edit the previous version must keep running: %v", got)
	}

	writeScript(t, dir, "items", `function transform(doc) { return {item: doc.id}; }`)
	eventually(t, "the added script", func() bool { return slices.Equal(row("items"), []string{`index items/1 {"item":1}`}) })

	if err := os.RemoveAll(filepath.Join(dir, "users")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removed script", func() bool { return slices.Equal(row("users"), []string{`index users/1 {"id":1}`}) })
	if tables := s.Tables(); !slices.Equal(tables, []string{"public.items"}) {
		t.Fatalf("tables = %v", tables)
	}
	if n := len(rec.find("script rejected")); n != 1 {
		t.Errorf("the broken version was reported %d times, want once", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close() // idempotent
}

func TestReloadNow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := loadScripts(t, dir, nil)
	if s.Reload() {
		t.Fatal("Reload reported a change in an empty folder")
	}
	writeScript(t, dir, "users", `function transform() { return null; }`)
	if !s.Reload() {
		t.Fatal("Reload missed a new script")
	}
	if got := mapOne(t, s, change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1})); !slices.Equal(got, []string{"delete users/1"}) {
		t.Fatalf("after Reload: %v", got)
	}
	if s.Reload() {
		t.Fatal("Reload reported a change when nothing changed")
	}
}
