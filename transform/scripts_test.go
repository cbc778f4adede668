package transform_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/transform"
)

func TestScriptReshapesRows(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeScript(t, dir, "users", `
function transform(doc, ctx) {
  doc.full_name = doc.first + " " + doc.last;
  doc.email = doc.email.replace(/^[^@]*/, "***");
  delete doc.first;
  doc.seen = ctx.op + "@" + ctx.lsn;
  return doc;
}`)
	s := loadScripts(t, dir, nil)
	docs, err := s.Map(change(bus.OpInsert, "users", json.Number("7"), 0x1_0000_0020, map[string]any{
		"id": json.Number("7"), "first": "Ann", "last": "Lee", "email": "ann@example.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || docs[0].Op != bus.DocIndex || docs[0].Index != "users" || docs[0].ID != "7" || docs[0].Version != 0x1_0000_0020 {
		t.Fatalf("docs = %v", summaries(docs))
	}
	got := source(t, docs[0])
	want := map[string]any{"id": 7.0, "last": "Lee", "full_name": "Ann Lee", "email": "***@example.com", "seen": "insert@1/20"}
	if len(got) != len(want) {
		t.Fatalf("source = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("source[%s] = %v, want %v", k, got[k], v)
		}
	}
	// Tables without a script are indexed as is.
	if got := mapOne(t, s, change(bus.OpInsert, "other", 1, 5, map[string]any{"id": 1})); !slices.Equal(got, []string{`index other/1 {"id":1}`}) {
		t.Errorf("table without a script: %v", got)
	}
}

func TestScriptFilterDeletesRowsThatStopMatching(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeScript(t, dir, "users", `
function transform(doc) { return doc.deleted_at === null ? doc : null; }`)
	s := loadScripts(t, dir, nil)
	live := mapOne(t, s, change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1, "deleted_at": nil}))
	if !slices.Equal(live, []string{`index users/1 {"deleted_at":null,"id":1}`}) {
		t.Fatalf("live row: %v", live)
	}
	gone := mapOne(t, s, change(bus.OpUpdate, "users", 1, 20, map[string]any{"id": 1, "deleted_at": "2024-01-01T00:00:00Z"}))
	if !slices.Equal(gone, []string{"delete users/1"}) {
		t.Fatalf("row that stopped matching: %v, want a delete", gone)
	}
	undef := loadScriptsWith(t, `function transform(doc) { if (doc.keep) return doc; }`)
	if got := mapOne(t, undef, change(bus.OpUpdate, "users", 2, 20, map[string]any{"id": 2})); !slices.Equal(got, []string{"delete users/2"}) {
		t.Fatalf("undefined result: %v, want a delete", got)
	}
}

// loadScriptsWith loads one script for public.users.
func loadScriptsWith(t *testing.T, src string) *transform.Scripts {
	t.Helper()
	dir := t.TempDir()
	writeScript(t, dir, "users", src)
	return loadScripts(t, dir, nil)
}

func TestScriptRoutesAndMovesRowsBetweenIndices(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeScript(t, dir, "shop.orders", `
var indices = ["orders-eu", "orders-us"];
function transform(doc, ctx) {
  if (doc.region === "eu") ctx.index = "orders-eu";
  else if (doc.region === "us") ctx.index = "orders-us";
  else if (doc.region === "mars") ctx.index = "orders-mars";
  return doc;
}`)
	s := loadScripts(t, dir, nil)
	ch := func(region string) *bus.Change {
		c := change(bus.OpUpdate, "orders", 5, 10, map[string]any{"id": 5, "region": region})
		c.Schema = "shop"
		return c
	}
	eu := mapOne(t, s, ch("eu"))
	want := []string{`index orders-eu/5 {"id":5,"region":"eu"}`, "delete shop.orders/5", "delete orders-us/5"}
	if !slices.Equal(eu, want) {
		t.Fatalf("eu row: %v, want %v", eu, want)
	}
	us := mapOne(t, s, ch("us"))
	want = []string{`index orders-us/5 {"id":5,"region":"us"}`, "delete shop.orders/5", "delete orders-eu/5"}
	if !slices.Equal(us, want) {
		t.Fatalf("row moved to us: %v, want %v", us, want)
	}
	def := mapOne(t, s, ch("asia"))
	want = []string{`index shop.orders/5 {"id":5,"region":"asia"}`, "delete orders-eu/5", "delete orders-us/5"}
	if !slices.Equal(def, want) {
		t.Fatalf("row back in the default index: %v, want %v", def, want)
	}
	del := change(bus.OpDelete, "orders", 5, 30, nil)
	del.Schema = "shop"
	if got := mapOne(t, s, del); !slices.Equal(got, []string{"delete shop.orders/5", "delete orders-eu/5", "delete orders-us/5"}) {
		t.Fatalf("delete: %v", got)
	}
	tr := &bus.Change{Op: bus.OpTruncate, Schema: "shop", Table: "orders", LSN: 40}
	if got := mapOne(t, s, tr); !slices.Equal(got, []string{"truncate shop.orders/", "truncate orders-eu/", "truncate orders-us/"}) {
		t.Fatalf("truncate: %v", got)
	}
	_, err := s.Map(ch("mars"))
	var se *transform.ScriptError
	if !errors.As(err, &se) || !errors.Is(err, transform.ErrBadResult) || !strings.Contains(err.Error(), `"orders-mars" is not declared`) {
		t.Fatalf("undeclared index: %v", err)
	}
}

func TestScriptThrowCarriesStack(t *testing.T) {
	t.Parallel()
	s := loadScriptsWith(t, `function check(doc) {
  if (!doc.name) throw new Error("name is required");
}
function transform(doc) {
  check(doc);
  return doc;
}`)
	_, err := s.Map(change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1}))
	var se *transform.ScriptError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a ScriptError", err)
	}
	if !strings.Contains(se.Error(), "name is required") || se.Table != "public.users" {
		t.Errorf("error = %q", se.Error())
	}
	for _, want := range []string{"check", "transform.js:2:", "transform.js:5:"} {
		if !strings.Contains(se.Stack, want) {
			t.Errorf("stack lacks %q:\n%s", want, se.Stack)
		}
	}
	// The runtime is still usable after an exception.
	if got := mapOne(t, s, change(bus.OpInsert, "users", 2, 10, map[string]any{"id": 2, "name": "x"})); len(got) != 1 {
		t.Fatalf("after an exception: %v", got)
	}
}

func TestScriptInfiniteLoopIsInterrupted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeScript(t, dir, "users", `
var calls = 0;
function transform(doc) {
  calls++;
  if (doc.loop) { while (true) {} }
  doc.calls = calls;
  return doc;
}`)
	// One attempt: retries are TestScriptThatNeverFinishesFailsAfterEveryRetry's.
	s := loadScripts(t, dir, func(c *transform.ScriptConfig) {
		c.Timeout, c.TimeoutRetries, c.Workers = 250*time.Millisecond, 0, 1
	})
	start := time.Now()
	_, err := s.Map(change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1, "loop": true}))
	took := time.Since(start)
	var se *transform.ScriptError
	if !errors.As(err, &se) || !errors.Is(err, transform.ErrTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if took > 2*time.Second {
		t.Errorf("interrupted after %s, limit 250ms", took)
	}
	if !strings.Contains(se.Stack, "transform.js:5:") {
		t.Errorf("stack does not point at the loop:\n%s", se.Stack)
	}
	// The interrupted runtime was replaced: the next row runs in a fresh
	// one (its global state starts over) and is not interrupted.
	docs, err := s.Map(change(bus.OpInsert, "users", 2, 10, map[string]any{"id": 2}))
	if err != nil {
		t.Fatalf("row after the timeout: %v", err)
	}
	if got := source(t, docs[0])["calls"]; got != 1.0 {
		t.Errorf("calls = %v, want 1 (a fresh runtime)", got)
	}
	// Runaway recursion fails on the call stack bound, not on memory.
	rec := loadScriptsWith(t, `function f(n) { return f(n + 1) + 1; }
function transform(doc) { return {v: f(0)}; }`)
	if _, err := rec.Map(change(bus.OpInsert, "users", 3, 10, map[string]any{"id": 3})); !errors.As(err, &se) {
		t.Fatalf("recursion: %v", err)
	}
}

func TestScriptLoadErrorsNameFileAndLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src, want string
		line            int
	}{
		{"syntax", "function transform(doc) {\n  return doc\n  let = ;\n}", "SyntaxError", 3},
		{"top-level throw", "\n\nthrow new Error('bad config');\nfunction transform(doc) { return doc; }", "bad config", 3},
		{"no transform", "function transfrom(doc) { return doc; }", "must define function transform", 0},
		{"bad indices", "var indices = 'x';\nfunction transform(doc) { return doc; }", "indices must be an array", 0},
		{"top-level loop", "while (true) {}\nfunction transform(doc) { return doc; }", "time limit", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := writeScript(t, dir, "users", tc.src)
			cfg := transform.DefaultScriptConfig()
			cfg.Dir, cfg.ReloadInterval = dir, 0
			_, err := transform.LoadScripts(cfg)
			var le *transform.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a LoadError", err)
			}
			if le.Path != path || le.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q (path %s line %d), want %q at %s line %d", err, le.Path, le.Line, tc.want, path, tc.line)
			}
			if tc.line > 0 && !strings.Contains(err.Error(), path+":"+string(rune('0'+tc.line))+":") {
				t.Errorf("error %q does not name %s:%d", err, path, tc.line)
			}
		})
	}
}

func TestScriptOversizedDocumentIsRejected(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeScript(t, dir, "users", `function transform(doc) { doc.blob = "x".repeat(doc.n); return doc; }`)
	s := loadScripts(t, dir, func(c *transform.ScriptConfig) { c.MaxDocBytes = 1000 })
	if _, err := s.Map(change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1, "n": 900})); err != nil {
		t.Fatalf("document under the limit: %v", err)
	}
	_, err := s.Map(change(bus.OpInsert, "users", 2, 10, map[string]any{"id": 2, "n": 1000}))
	if !errors.Is(err, transform.ErrDocTooLarge) {
		t.Fatalf("err = %v, want ErrDocTooLarge", err)
	}
}

func TestScriptBadResults(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		`function transform(doc) { return 42; }`,
		`function transform(doc) { return [doc]; }`,
		`function transform(doc, ctx) { ctx.index = 7; return doc; }`,
		`function transform(doc, ctx) { ctx.unchanged = "bio"; return doc; }`,
	} {
		s := loadScriptsWith(t, src)
		if _, err := s.Map(change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1})); !errors.Is(err, transform.ErrBadResult) {
			t.Errorf("%s: err = %v, want ErrBadResult", src, err)
		}
	}
}

func TestScriptOnDelete(t *testing.T) {
	t.Parallel()
	s := loadScriptsWith(t, `
function transform(doc) { return doc; }
function onDelete(key, ctx) {
  if (ctx.op !== "delete" || ctx.key.id !== key.id) throw new Error("bad arguments");
  return key.id !== 1 ? undefined : false;
}`)
	if got := mapOne(t, s, change(bus.OpDelete, "users", 1, 10, nil)); len(got) != 0 {
		t.Errorf("onDelete returned false, yet: %v", got)
	}
	if got := mapOne(t, s, change(bus.OpDelete, "users", 2, 10, nil)); !slices.Equal(got, []string{"delete users/2"}) {
		t.Errorf("onDelete returned undefined: %v", got)
	}
	plain := loadScriptsWith(t, `function transform(doc) { throw new Error("not called for deletes"); }`)
	if got := mapOne(t, plain, change(bus.OpDelete, "users", 3, 10, nil)); !slices.Equal(got, []string{"delete users/3"}) {
		t.Errorf("delete without onDelete: %v", got)
	}
	if got := mapOne(t, plain, &bus.Change{Op: bus.OpTruncate, Schema: "public", Table: "users", LSN: 9}); !slices.Equal(got, []string{"truncate users/"}) {
		t.Errorf("truncate: %v", got)
	}
}

func TestScriptSeesUnchangedToastColumns(t *testing.T) {
	t.Parallel()
	s := loadScriptsWith(t, `
function transform(doc, ctx) {
  if ("bio" in doc) throw new Error("an unchanged column must be absent");
  doc.unchanged_seen = ctx.unchanged.join(",");
  if (doc.rename) {
    doc.about = doc.bio;
    ctx.unchanged = ctx.unchanged.map(function (c) { return c === "bio" ? "about" : c; });
  }
  return doc;
}`)
	c := change(bus.OpUpdate, "users", 1, 10, map[string]any{"id": 1})
	c.Unchanged = []string{"bio"}
	docs, err := s.Map(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(docs[0].Unchanged, []string{"bio"}) || source(t, docs[0])["unchanged_seen"] != "bio" {
		t.Fatalf("unchanged = %v, source %s", docs[0].Unchanged, docs[0].Source)
	}
	c.Row["rename"] = true
	docs, err = s.Map(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(docs[0].Unchanged, []string{"about"}) {
		t.Fatalf("renamed unchanged column: %v", docs[0].Unchanged)
	}
}

func TestScriptNumbersStayExact(t *testing.T) {
	t.Parallel()
	s := loadScriptsWith(t, `
function transform(doc) {
  return {
    small: typeof doc.small, big: typeof doc.big, dec: typeof doc.dec, long: typeof doc.long,
    big_value: doc.big, nested: typeof doc.obj.n, sum: doc.small + doc.dec,
  };
}`)
	var c bus.Change
	raw := `{"v":1,"op":"insert","schema":"public","table":"users","key":[{"name":"id","value":9007199254740993}],
	  "row":{"small":40,"big":9007199254740993,"dec":1.5,"long":0.12345678901234567890123,"obj":{"n":2}},"lsn":"0/10","pos":0}`
	if err := bus.Decode([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	docs, err := s.Map(&c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"small":"number","big":"string","dec":"number","long":"string","big_value":"9007199254740993","nested":"number","sum":41.5}`
	if string(docs[0].Source) != want || docs[0].ID != "9007199254740993" {
		t.Fatalf("source = %s id %s, want %s", docs[0].Source, docs[0].ID, want)
	}
}

func TestConsoleReachesTheLog(t *testing.T) {
	t.Parallel()
	log, rec := newLogRecorder()
	dir := t.TempDir()
	writeScript(t, dir, "users", `
function transform(doc) {
  console.log("row", doc.id, {a: 1});
  console.warn("careful");
  for (var i = 0; i < 100; i++) console.info("noisy", i);
  return doc;
}`)
	s := loadScripts(t, dir, func(c *transform.ScriptConfig) { c.Logger = log; c.LogBurst = 5; c.LogRate = 0.001 })
	mapOne(t, s, change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1}))
	got := rec.find("row")
	if len(got) != 1 || !strings.Contains(got[0], `INFO row 1 {"a":1} console=log`) || !strings.Contains(got[0], "table=public.users") {
		t.Fatalf("console.log records: %q", got)
	}
	if w := rec.find("careful"); len(w) != 1 || !strings.HasPrefix(w[0], "WARN") {
		t.Fatalf("console.warn records: %q", w)
	}
	if n := len(rec.find("noisy")); n != 3 {
		t.Fatalf("%d noisy lines logged, want 3 (burst 5 minus the two above)", n)
	}
}
