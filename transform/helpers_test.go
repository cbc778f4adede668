package transform_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/transform"
)

// writeScript writes dir/<folder>/transform.js.
func writeScript(t testing.TB, dir, folder, src string) string {
	t.Helper()
	p := filepath.Join(dir, folder, transform.ScriptFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	// Write then rename, as editors do, so a reload never reads half a file.
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadScripts loads dir with hot reload off unless cfg says otherwise.
func loadScripts(t testing.TB, dir string, edit func(*transform.ScriptConfig)) *transform.Scripts {
	t.Helper()
	cfg := transform.DefaultScriptConfig()
	cfg.Dir, cfg.ReloadInterval = dir, 0
	if edit != nil {
		edit(&cfg)
	}
	s, err := transform.LoadScripts(cfg)
	if err != nil {
		t.Fatalf("LoadScripts: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func change(op bus.Op, table string, id any, lsn bus.LSN, row map[string]any) *bus.Change {
	c := &bus.Change{Op: op, Schema: "public", Table: table, LSN: lsn, Row: row}
	if id != nil {
		c.Key = []bus.Column{{Name: "id", Value: id}}
	}
	return c
}

// docSummary is a compact form of a document event for comparisons.
func docSummary(d *bus.Doc) string {
	s := string(d.Op) + " " + d.Index + "/" + d.ID
	if d.Source != nil {
		s += " " + string(d.Source)
	}
	return s
}

func summaries(docs []*bus.Doc) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = docSummary(d)
	}
	return out
}

func mapOne(t testing.TB, s *transform.Scripts, c *bus.Change) []string {
	t.Helper()
	docs, err := s.Map(c)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	return summaries(docs)
}

func source(t testing.TB, d *bus.Doc) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(d.Source, &m); err != nil {
		t.Fatalf("source %s: %v", d.Source, err)
	}
	return m
}

// logRecorder is a slog handler that keeps records for assertions.
type logRecorder struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

func newLogRecorder() (*slog.Logger, *logRecorder) {
	r := &logRecorder{mu: &sync.Mutex{}, recs: &[]slog.Record{}}
	return slog.New(r), r
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.recs = append(*r.recs, rec.Clone())
	return nil
}
func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{logRecorder: r, attrs: as}
}
func (r *logRecorder) WithGroup(string) slog.Handler { return r }

type attrHandler struct {
	*logRecorder
	attrs []slog.Attr
}

func (h *attrHandler) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(h.attrs...)
	return h.logRecorder.Handle(ctx, rec)
}
func (h *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{logRecorder: h.logRecorder, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

// find returns the records whose message contains msg, as "LEVEL msg k=v ...".
func (r *logRecorder) find(msg string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range *r.recs {
		if !strings.Contains(rec.Message, msg) {
			continue
		}
		var b strings.Builder
		b.WriteString(rec.Level.String() + " " + rec.Message)
		rec.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.Key + "=" + a.Value.String())
			return true
		})
		out = append(out, b.String())
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
