package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/internal/pgtest"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &cluster) }

// env is one test's database, bus and capture configuration.
type env struct {
	t   *testing.T
	url string
	bus *bustest.Bus
	cfg Config
	// setup, when set, prepares each Capture before its Run.
	setup func(*Capture)
	// runs are the captures started, so that a wait can tell one stopped.
	runs []*running
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := pgtest.Require(t, cluster)
	t.Parallel()
	e := &env{t: t, url: c.NewDatabase(t), bus: bustest.Open(t)}
	e.cfg = DefaultConfig()
	e.cfg.URL = e.url
	// Slots belong to the cluster, not the database: one per test.
	e.cfg.Slot = "s" + strings.TrimPrefix(e.url[strings.LastIndexByte(e.url, '/')+1:strings.IndexByte(e.url, '?')], "t")
	if len(e.cfg.Slot) > 63 {
		e.cfg.Slot = e.cfg.Slot[:63]
	}
	e.cfg.StatusInterval = 50 * time.Millisecond
	return e
}

func (e *env) exec(sql ...string) {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			e.t.Fatalf("%s: %v", s, err)
		}
	}
}

func (e *env) connect() *pgx.Conn {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	return conn
}

func (e *env) queryLSN(sql string, args ...any) bus.LSN {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s *string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	if s == nil {
		return 0
	}
	lsn, err := bus.ParseLSN(*s)
	if err != nil {
		e.t.Fatal(err)
	}
	return lsn
}

// confirmedFlush is the slot's confirmed_flush_lsn as PostgreSQL reports it.
func (e *env) confirmedFlush() bus.LSN {
	return e.queryLSN(`SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, e.cfg.Slot)
}

// running is a Capture whose Run is in a goroutine owned by the test.
type running struct {
	c      *Capture
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, err set
	err    error
}

// stopped fails the test if a capture it started returned on its own.
func (e *env) stopped() {
	e.t.Helper()
	for _, r := range e.runs {
		select {
		case <-r.done:
			if r.err != nil {
				e.t.Fatalf("capture stopped: %v", r.err)
			}
		default:
		}
	}
}

func (e *env) start(pub Publisher) *running {
	e.t.Helper()
	c, err := New(e.cfg, pub, e.bus.State())
	if err != nil {
		e.t.Fatal(err)
	}
	if e.setup != nil {
		e.setup(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan struct{})}
	e.runs = append(e.runs, r)
	go func() {
		defer close(r.done)
		r.err = c.Run(ctx)
	}()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop cancels Run and returns its error; it may be called more than once.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel")
		return nil
	}
}

// waitFor polls cond until it holds or 30 seconds passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, what, 30*time.Second, cond)
}

// waitWithin polls cond until it holds or d passed.
func waitWithin(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func (r *running) waitStreaming(t *testing.T) {
	t.Helper()
	waitFor(t, "streaming", func() bool {
		select {
		case <-r.done:
			t.Fatalf("Run returned before streaming: %v", r.err)
		default:
		}
		return r.c.Status().Phase == PhaseStreaming
	})
}

// readChanges consumes row changes (watermarks are skipped) through a
// durable consumer until n arrived or timeout passed, and returns them.
func (e *env) readChanges(n int, timeout time.Duration) []bus.Change {
	e.t.Helper()
	return readRowChanges(e.t, e.bus.Bus, n, timeout)
}

func readRowChanges(t testing.TB, b *bus.Bus, n int, timeout time.Duration) []bus.Change {
	t.Helper()
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	r, err := b.NewReader(rctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "capturetest"})
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []bus.Change
	for len(out) < n && ctx.Err() == nil {
		msgs, err := r.Fetch(ctx, min(n-len(out), 4096), 200*time.Millisecond)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			t.Fatalf("fetch changes: %v", err)
		}
		for _, m := range msgs {
			cs, err := bus.DecodeChanges(m.Data())
			if err != nil {
				t.Fatalf("decode change: %v", err)
			}
			for _, c := range cs {
				if c.Op != bus.OpWatermark {
					out = append(out, c)
				}
			}
		}
		actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = bus.AckBatch(actx, msgs)
		acancel()
		if err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	return out
}

// doc is one document of the index a sink with external_gte versions would
// build from the changes.
type doc struct {
	lsn     bus.LSN
	row     map[string]any
	deleted bool
}

// fold applies changes the way the sink does: a write wins when its LSN is
// at least the document's, unchanged TOAST columns keep their value, and a
// truncate removes what was written before it. It returns the live rows by
// document id.
func fold(changes []bus.Change) map[string]map[string]any {
	docs := map[string]map[string]*doc{}
	truncated := map[string]bus.LSN{}
	for _, c := range changes {
		tbl := c.Schema + "." + c.Table
		if docs[tbl] == nil {
			docs[tbl] = map[string]*doc{}
		}
		switch c.Op {
		case bus.OpWatermark:
		case bus.OpTruncate:
			for id, d := range docs[tbl] {
				if d.lsn < c.LSN {
					delete(docs[tbl], id)
				}
			}
			truncated[tbl] = max(truncated[tbl], c.LSN)
		default:
			id := bus.DocumentID(c.Key)
			d := docs[tbl][id]
			if c.LSN < truncated[tbl] || (d != nil && c.LSN < d.lsn) {
				continue
			}
			if c.Op == bus.OpDelete {
				docs[tbl][id] = &doc{lsn: c.LSN, deleted: true}
				continue
			}
			row := map[string]any{}
			if d != nil && !d.deleted {
				for _, u := range c.Unchanged {
					if v, ok := d.row[u]; ok {
						row[u] = v
					}
				}
			}
			for k, v := range c.Row {
				row[k] = v
			}
			docs[tbl][id] = &doc{lsn: c.LSN, row: row}
		}
	}
	out := map[string]map[string]any{}
	for tbl, ds := range docs {
		for id, d := range ds {
			if !d.deleted {
				out[tbl+"/"+id] = d.row
			}
		}
	}
	return out
}

// tableDocs reads a table's rows as text (id first) the way fold's result is
// compared: by document id, every column rendered with fmt.Sprint of its
// JSON value. sql must select the key column first, as text.
func (e *env) tableDocs(table, sql string) map[string]string {
	e.t.Helper()
	conn := e.connect()
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			e.t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		out["public."+table+"/"+parts[0]] = strings.Join(parts, "|")
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// indexDocs renders folded rows of table like tableDocs, for the columns cols.
func indexDocs(folded map[string]map[string]any, table string, cols ...string) map[string]string {
	out := map[string]string{}
	for id, row := range folded {
		if !strings.HasPrefix(id, "public."+table+"/") {
			continue
		}
		parts := make([]string, len(cols))
		for i, c := range cols {
			parts[i] = fmt.Sprint(row[c])
		}
		out[id] = strings.Join(parts, "|")
	}
	return out
}

// sameDocs reports the first differences between the table and the index.
func sameDocs(want, got map[string]string) string {
	var b strings.Builder
	n := 0
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			if n < 10 {
				fmt.Fprintf(&b, "\n  %s: table %q, index %q (present=%v)", id, w, g, ok)
			}
			n++
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			if n < 10 {
				fmt.Fprintf(&b, "\n  %s: not in the table, index %q", id, g)
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d documents differ (%d in the table, %d in the index):%s", n, len(want), len(got), b.String())
}

// read returns exactly n changes from the bus, failing if fewer arrive.
func (e *env) read(n int) []bus.Change {
	e.t.Helper()
	got := e.readChanges(n, 30*time.Second)
	if len(got) != n {
		e.t.Fatalf("read %d changes from the bus, want %d: %s", len(got), n, dump(got))
	}
	return got
}

func dump(cs []bus.Change) string {
	var b strings.Builder
	for _, c := range cs {
		row, _ := json.Marshal(c.Row)
		fmt.Fprintf(&b, "\n  %s %s.%s key=%v row=%s unchanged=%v lsn=%s pos=%d", c.Op, c.Schema, c.Table, c.Key, row, c.Unchanged, c.LSN, c.Pos)
	}
	return b.String()
}

// faultyPublisher injects faults in front of a real Publisher: Publish can
// be made to block after a number of events, Flush can be held or made to
// fail. It records what was published.
type faultyPublisher struct {
	next Publisher

	mu         sync.Mutex
	published  []*bus.Change
	blockAfter int           // Publish blocks (until ctx is done) after this many events; 0: never
	flushGate  chan struct{} // when set, Flush waits for it to be closed...
	holdWhen   func() bool   // ...if holdWhen is nil or returns true
	flushErr   error         // when set, Flush fails with it

	heldFlushes atomic.Int64 // Flush calls that waited at flushGate
	blocked     atomic.Int64 // Publish calls blocked by blockAfter
}

func (p *faultyPublisher) Publish(ctx context.Context, evs ...*bus.Change) error {
	p.mu.Lock()
	n := len(evs)
	if p.blockAfter > 0 {
		n = min(n, max(p.blockAfter-len(p.published), 0))
	}
	p.published = append(p.published, evs[:n]...)
	p.mu.Unlock()
	if n > 0 {
		if err := p.next.Publish(ctx, evs[:n]...); err != nil {
			return err
		}
	}
	if n < len(evs) {
		p.blocked.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// PublishMessage is Publish for a message built from snapshot rows: it is
// passed on as it is when no fault stops it part way.
func (p *faultyPublisher) PublishMessage(ctx context.Context, m bus.Message) error {
	cs, err := bus.DecodeChanges(m.Data)
	if err != nil {
		return fmt.Errorf("faulty publisher: %w", err)
	}
	evs := make([]*bus.Change, len(cs))
	for i := range cs {
		evs[i] = &cs[i]
	}
	p.mu.Lock()
	whole := p.blockAfter == 0 || len(p.published)+len(evs) <= p.blockAfter
	if whole {
		p.published = append(p.published, evs...)
	}
	p.mu.Unlock()
	if !whole {
		return p.Publish(ctx, evs...)
	}
	return p.next.PublishMessage(ctx, m)
}

func (p *faultyPublisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	gate, when := p.flushGate, p.holdWhen
	p.mu.Unlock()
	if gate != nil && (when == nil || when()) {
		p.heldFlushes.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	ferr := p.flushErr
	p.mu.Unlock()
	if ferr != nil {
		return ferr
	}
	return p.next.Flush(ctx)
}

func (p *faultyPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.published)
}

func (p *faultyPublisher) last() *bus.Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.published) == 0 {
		return nil
	}
	return p.published[len(p.published)-1]
}

var errInjected = errors.New("injected flush failure")

// nopState is a StateStore for tests that never run.
type nopState struct{}

func (nopState) Get(context.Context, string) ([]byte, bool, error) { return nil, false, nil }
func (nopState) Put(context.Context, string, []byte) error         { return nil }

// nopPublisher stores nothing; it stands behind a faultyPublisher in tests
// of the acknowledgement logic alone.
type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, ...*bus.Change) error     { return nil }
func (nopPublisher) PublishMessage(context.Context, bus.Message) error { return nil }
func (nopPublisher) Flush(context.Context) error                       { return nil }
