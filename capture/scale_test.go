package capture

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// scaleEnv multiplies the sizes of the heavy tests: the full sizes of the
// requirements (a 1M-row snapshot, a 2M-row transaction) at 1.
const scaleEnv = "WALSEARCH_TEST_SCALE"

// scaled returns full scaled by WALSEARCH_TEST_SCALE (default 0.02, or 0.005
// with -short), at least min.
func scaled(t *testing.T, full, min int) int {
	t.Helper()
	scale := 0.02
	if testing.Short() {
		scale = 0.005
	}
	if s := os.Getenv(scaleEnv); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			t.Fatalf("%s=%q: want a positive number", scaleEnv, s)
		}
		scale = v
	}
	return max(int(float64(full)*scale), min)
}

// patience is how long a heavy test waits for n rows: slow machines and the
// race detector included.
func patience(n int) time.Duration { return 60*time.Second + time.Duration(n)*time.Millisecond }

func TestSnapshotUnderConcurrentWritesMatchesTheTable(t *testing.T) {
	e := newEnv(t)
	n := scaled(t, 1_000_000, 5000)
	e.cfg.ChunkRows, e.cfg.SnapshotWorkers = max(n/40, 100), 4
	e.exec(`CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, note text)`,
		fmt.Sprintf(`INSERT INTO big SELECT i, i, 'row ' || i FROM generate_series(1, %d) i`, n),
		`ANALYZE big`)
	w := e.startWriter("big", n+n/10)
	waitFor(t, "the writer to get going", func() bool { return w.n.Load() > 20 })
	began := time.Now()
	r := e.start(e.bus.Changes())
	waitWithin(t, "the snapshot", patience(n), func() bool { return r.c.Status().Phase == PhaseStreaming })
	st := r.c.Status()
	took := time.Since(began)
	w.stop()
	all := e.drainWithin("after-snapshot", nil, patience(n))
	var reads int
	for _, c := range all {
		if c.Op == bus.OpRead {
			reads++
		}
	}
	t.Logf("%d rows: snapshot of %d rows in %s (%.0f rows/s) while the writer made %d changes",
		n, reads, took.Round(time.Millisecond), float64(reads)/took.Seconds(), w.n.Load())
	if st.Snapshot == nil || !st.Snapshot.Done || st.Snapshot.RowsDone != uint64(reads) || st.Snapshot.RowsTotal == 0 {
		t.Fatalf("snapshot progress = %+v, want done with %d rows", st.Snapshot, reads)
	}
	want := e.tableDocs("big", `SELECT id::text, v, note FROM big`)
	if d := sameDocs(want, indexDocs(fold(all), "big", "id", "v", "note")); d != "" {
		t.Fatal(d)
	}
}

func TestLargeTransactionStreamsThrough(t *testing.T) {
	e := newEnv(t)
	n := scaled(t, 2_000_000, 10000)
	e.exec(`CREATE TABLE tx (id int PRIMARY KEY, payload text)`)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	began := time.Now()
	e.exec(fmt.Sprintf(`INSERT INTO tx SELECT i, md5(i::text) FROM generate_series(1, %d) i`, n))
	all := e.drainWithin("after-transaction", nil, patience(n))
	var rows int
	var lsn bus.LSN
	for _, c := range all {
		if c.Table != "tx" {
			continue
		}
		if lsn == 0 {
			lsn = c.LSN
		}
		if c.LSN != lsn || c.Pos != uint64(rows) {
			t.Fatalf("row %d: lsn %s pos %d, want one transaction in order at %s", rows, c.LSN, c.Pos, lsn)
		}
		rows++
	}
	if rows != n {
		t.Fatalf("%d rows of the transaction reached the bus, want %d", rows, n)
	}
	t.Logf("a %d-row transaction reached the bus in %s", n, time.Since(began).Round(time.Millisecond))
	if st := r.c.Status(); st.ReceivedLSN <= lsn {
		t.Fatalf("status %+v: the transaction's end not received", st)
	}
}
