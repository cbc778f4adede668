package transform

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
)

func TestLogLimiterRefillsAndReportsSuppressed(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	l := newLogLimiter(2, 3, func() time.Time { return now })
	for i := range 3 {
		if ok, sup := l.allow(); !ok || sup != 0 {
			t.Fatalf("message %d: allowed=%v suppressed=%d", i, ok, sup)
		}
	}
	for range 4 {
		if ok, _ := l.allow(); ok {
			t.Fatal("message over the burst allowed")
		}
	}
	now = now.Add(500 * time.Millisecond) // one token at 2/s
	if ok, sup := l.allow(); !ok || sup != 4 {
		t.Fatalf("after refill: allowed=%v suppressed=%d, want true 4", ok, sup)
	}
	if ok, _ := l.allow(); ok {
		t.Fatal("only one token was refilled")
	}
	now = now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.allow(); !ok {
			t.Fatalf("refill beyond the burst: message %d refused", i)
		}
	}
	if ok, sup := l.allow(); ok || sup != 0 {
		t.Fatal("tokens grew past the burst")
	}
}

func TestConsoleReportsSuppressedLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "users"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := `function transform(doc) { for (var i = 0; i < doc.n; i++) console.log("line", i); return doc; }`
	if err := os.WriteFile(filepath.Join(dir, "users", ScriptFile), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var mu sync.Mutex
	cfg := DefaultScriptConfig()
	cfg.Dir, cfg.ReloadInterval, cfg.LogBurst, cfg.LogRate = dir, 0, 2, 1
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	s, err := LoadScripts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1000, 0)
	lim := s.limiter("public.users")
	lim.mu.Lock()
	lim.now, lim.last = func() time.Time { return now }, now
	lim.mu.Unlock()
	row := func(n int) *bus.Change {
		return &bus.Change{Op: bus.OpInsert, Schema: "public", Table: "users", Key: []bus.Column{{Name: "id", Value: 1}}, Row: map[string]any{"n": n}}
	}
	if _, err := s.Map(row(5)); err != nil { // 2 logged, 3 suppressed
		t.Fatal(err)
	}
	now = now.Add(time.Second) // time passes between rows; one token back
	if _, err := s.Map(row(1)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, `msg="line`); n != 3 {
		t.Errorf("%d lines logged, want 3:\n%s", n, out)
	}
	if !strings.Contains(out, `level=WARN msg="script log messages suppressed by the rate limit" component=transform table=public.users`) ||
		!strings.Contains(out, "suppressed=3") {
		t.Errorf("no suppressed-lines report:\n%s", out)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
