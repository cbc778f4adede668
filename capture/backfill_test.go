package capture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// untouched is a key the writer leaves alone.
const untouched = 50

// writer updates, deletes and re-inserts random rows of t(id, v) until
// stopped, from its own goroutine.
type writer struct {
	stop func()
	wg   sync.WaitGroup
	err  error
	n    atomic.Int64
}

func (e *env) startWriter(table string, keys int) *writer {
	e.t.Helper()
	conn := e.connect()
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer conn.Close(context.Background())
		rng := rand.New(rand.NewPCG(1, 2))
		for ctx.Err() == nil {
			id := rng.IntN(keys) + 1
			if id == untouched {
				continue
			}
			var sql string
			switch rng.IntN(4) {
			case 0:
				sql = fmt.Sprintf(`DELETE FROM %s WHERE id = %d`, table, id)
			case 1:
				sql = fmt.Sprintf(`INSERT INTO %s (id, v) VALUES (%d, %d) ON CONFLICT (id) DO UPDATE SET v = excluded.v`, table, id, rng.IntN(1000000))
			default:
				sql = fmt.Sprintf(`UPDATE %s SET v = v + 1 WHERE id = %d`, table, id)
			}
			if _, err := conn.Exec(ctx, sql); err != nil {
				if ctx.Err() == nil {
					w.err = err
				}
				return
			}
			w.n.Add(1)
		}
	}()
	w.stop = func() {
		cancel()
		w.wg.Wait()
		if w.err != nil {
			e.t.Fatalf("writer: %v", w.err)
		}
	}
	e.t.Cleanup(w.stop)
	return w
}

// drain writes a marker row after everything else and reads the bus until
// the marker arrived, returning every change read.
func (e *env) drain(marker string, sofar []bus.Change) []bus.Change {
	e.t.Helper()
	return e.drainWithin(marker, sofar, 60*time.Second)
}

func (e *env) drainWithin(marker string, sofar []bus.Change, d time.Duration) []bus.Change {
	e.t.Helper()
	e.exec(`CREATE TABLE IF NOT EXISTS drain_marker (id text PRIMARY KEY)`,
		`INSERT INTO drain_marker VALUES ('`+marker+`')`)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		e.stopped()
		got := e.readChanges(100000, 500*time.Millisecond)
		sofar = append(sofar, got...)
		for _, c := range got {
			if c.Table == "drain_marker" && c.Row["id"] == marker {
				return sofar
			}
		}
	}
	e.t.Fatalf("marker %s never reached the bus", marker)
	return nil
}

func TestBackfillUnderConcurrentWritesConverges(t *testing.T) {
	e := newEnv(t)
	e.cfg.ChunkRows = 100
	const rows = 2000
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)`,
		fmt.Sprintf(`INSERT INTO t SELECT i, i FROM generate_series(1, %d) i`, rows))
	// Between reading a chunk and its high watermark, change a row of the
	// chunk: the chunk's older copy of it must not win.
	var hits atomic.Int64
	e.setup = func(c *Capture) {
		c.faultAfterChunkRead = func() {
			if hits.Add(1) == 1 {
				e.exec(`UPDATE t SET v = -1 WHERE id = ` + itoa(untouched))
			}
		}
	}
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	snap := r.c.Status().SnapshotLSN
	all := e.read(rows)

	w := e.startWriter("t", rows+200)
	waitFor(t, "the writer to get going", func() bool { return w.n.Load() > 50 })
	if _, err := RequestBackfill(t.Context(), e.url, e.cfg.Slot, "t", 0); err != nil {
		t.Fatal(err)
	}
	key := r.c.progressKey("backfill", "public", "t")
	waitFor(t, "the backfill to finish", func() bool {
		var p tableProgress
		found, err := r.c.getJSON(t.Context(), key, &p)
		return err == nil && found && p.done()
	})
	w.stop()
	all = e.drain("after-backfill", all)

	var backfilled int
	for _, c := range all {
		if c.Op == bus.OpRead && c.LSN > snap {
			backfilled++
		}
	}
	if backfilled == 0 {
		t.Fatal("the backfill published no rows")
	}
	t.Logf("writer made %d changes; the backfill published %d rows", w.n.Load(), backfilled)
	if st := r.c.Status(); st.BackfillRows == 0 || len(st.Backfills) != 0 {
		t.Fatalf("status after the backfill = %+v", st)
	}
	want := e.tableDocs("t", `SELECT id::text, v FROM t`)
	if d := sameDocs(want, indexDocs(fold(all), "t", "id", "v")); d != "" {
		t.Fatal(d)
	}
}

func TestBackfillRequestNeedsAnExistingTable(t *testing.T) {
	e := newEnv(t)
	if _, err := RequestBackfill(t.Context(), e.url, e.cfg.Slot, "missing", 0); err == nil {
		t.Fatal("backfill of a missing table accepted")
	}
	if _, err := RequestBackfill(t.Context(), e.url, e.cfg.Slot, "a.b.c", 0); err == nil {
		t.Fatal("bad table name accepted")
	}
}
