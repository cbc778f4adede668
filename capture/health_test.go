package capture

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// logRecorder keeps the messages of warnings logged.
type logRecorder struct {
	mu    sync.Mutex
	warns []string
}

func (l *logRecorder) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.warns = append(l.warns, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, w := range l.warns {
		if strings.Contains(w, substr) {
			n++
		}
	}
	return n
}

func TestIdleSlotKeepsAdvancingAndWatermarksFollow(t *testing.T) {
	e := newEnv(t)
	e.cfg.Tables = []string{"captured"}
	e.cfg.SlotCheckInterval = 50 * time.Millisecond
	e.exec(`CREATE TABLE captured (id int PRIMARY KEY)`, `CREATE TABLE busy (id int PRIMARY KEY, v text)`)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	e.exec(`INSERT INTO captured VALUES (1)`)
	got := e.read(1)
	commit := got[0].LSN
	waitFor(t, "a watermark past the captured commit", func() bool { return r.c.Status().WatermarkLSN > commit })

	// Only a table outside the publication is written: the slot must still
	// move, or PostgreSQL would keep all of that WAL for walsearch.
	before := e.confirmedFlush()
	e.exec(`INSERT INTO busy SELECT i, repeat('x', 100) FROM generate_series(1, 5000) i`)
	after := e.queryLSN(`SELECT pg_current_wal_lsn()::text`)
	waitFor(t, "confirmed_flush_lsn to pass writes to an unpublished table", func() bool { return e.confirmedFlush() >= after })
	if e.confirmedFlush() <= before {
		t.Fatal("slot did not move")
	}
	waitFor(t, "the watermark to pass them too", func() bool { return r.c.Status().WatermarkLSN >= after })
	waitFor(t, "slot lag to be measured", func() bool { st := r.c.Status(); return st.SlotLagBytes >= 0 && st.ConfirmedLSN >= after })
}

func TestSlotLagOverBudgetWarnsRepeatedly(t *testing.T) {
	e := newEnv(t)
	rec := &logRecorder{}
	e.cfg.Logger = slog.New(rec)
	e.cfg.MaxSlotLagBytes = 1024
	// Positions are confirmed only once an hour: the slot cannot move and
	// WAL piles up behind it.
	e.cfg.StatusInterval = time.Hour
	e.cfg.SlotCheckInterval = 50 * time.Millisecond
	e.cfg.LagWarnInterval = 100 * time.Millisecond
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v text)`)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	e.exec(`INSERT INTO t SELECT i, repeat('x', 200) FROM generate_series(1, 2000) i`)
	waitFor(t, "two lag warnings", func() bool { return rec.count("max_slot_lag_bytes") >= 2 })
	if lag := r.c.Status().SlotLagBytes; lag <= 1024 {
		t.Fatalf("status slot lag = %d, want over the budget", lag)
	}
	if n := rec.count("pg_drop_replication_slot"); n < 2 {
		t.Fatalf("warnings do not say what to do: %v", rec.warns)
	}
}

// The slot's lag is measured, and warned about, while the stream is blocked
// on a bus that accepts nothing: that is when it grows.
func TestSlotLagIsWatchedWhileTheBusIsStuck(t *testing.T) {
	e := newEnv(t)
	rec := &logRecorder{}
	e.cfg.Logger = slog.New(rec)
	e.cfg.MaxSlotLagBytes = 1024
	e.cfg.SlotCheckInterval = 50 * time.Millisecond
	e.cfg.LagWarnInterval = 100 * time.Millisecond
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v text)`)
	stuck := &faultyPublisher{next: e.bus.Changes(), blockAfter: 1}
	r := e.start(stuck)
	r.waitStreaming(t)
	e.exec(`INSERT INTO t SELECT i, repeat('x', 200) FROM generate_series(1, 2000) i`)
	waitFor(t, "the stream to block on the bus", func() bool { return stuck.blocked.Load() == 1 })
	before := rec.count("max_slot_lag_bytes")
	waitFor(t, "two lag warnings while blocked", func() bool { return rec.count("max_slot_lag_bytes") >= before+2 })
	if lag := r.c.Status().SlotLagBytes; lag <= 1024 {
		t.Fatalf("status slot lag = %d while blocked, want over the budget", lag)
	}
	if stuck.blocked.Load() != 1 {
		t.Fatal("the stream is no longer blocked")
	}
}

func TestSchemaIsStoredAndFollowsChanges(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TYPE mood AS ENUM ('sad', 'happy')`, `CREATE DOMAIN positive AS numeric CHECK (VALUE > 0)`,
		`CREATE TABLE s (id bigint PRIMARY KEY, name varchar(20), at timestamptz, m mood, p positive, ids uuid[], grid int[][])`)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	ts, err := bus.GetTableSchema(t.Context(), e.bus.State(), "public", "s")
	if err != nil || ts == nil {
		t.Fatalf("schema after the snapshot: %v, %v", ts, err)
	}
	want := map[string]bus.ColumnSchema{
		"id": {Name: "id", Type: "bigint", OID: 20}, "name": {Name: "name", Type: "character varying", OID: 1043},
		"at": {Name: "at", Type: "timestamp with time zone", OID: 1184},
		"p":  {Name: "p", Type: "numeric", OID: 1700}, "ids": {Name: "ids", Type: "uuid[]", OID: 2951, Array: true},
		"grid": {Name: "grid", Type: "integer[]", OID: 1007, Array: true},
	}
	for _, c := range ts.Columns {
		if w, ok := want[c.Name]; ok && c != w {
			t.Errorf("column %s = %+v, want %+v", c.Name, c, w)
		}
		if c.Name == "m" && c.Type != "enum" {
			t.Errorf("enum column = %+v", c)
		}
	}
	if len(ts.Columns) != 7 || len(ts.Key) != 1 || ts.Key[0] != "id" {
		t.Fatalf("schema = %+v", ts)
	}

	e.exec(`ALTER TABLE s ADD COLUMN extra jsonb`, `ALTER TABLE s DROP COLUMN name`, `ALTER TABLE s RENAME COLUMN at TO created`,
		`ALTER TABLE s ALTER COLUMN id TYPE numeric`, `INSERT INTO s (id, created, extra) VALUES (1, now(), '{"a":1}')`)
	got := e.read(1)
	if _, ok := got[0].Row["created"]; !ok || got[0].Row["extra"] == nil || got[0].Row["name"] != nil {
		t.Fatalf("row after schema changes: %s", dump(got))
	}
	ts, err = bus.GetTableSchema(t.Context(), e.bus.State(), "public", "s")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, c := range ts.Columns {
		names[c.Name] = c.Type
	}
	if names["extra"] != "jsonb" || names["created"] != "timestamp with time zone" || names["id"] != "numeric" || names["name"] != "" {
		t.Fatalf("schema after ALTER TABLE = %v", names)
	}
	if ts.LSN != got[0].LSN {
		t.Fatalf("schema LSN %s, want the first change's %s", ts.LSN, got[0].LSN)
	}
}
