package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/pgtest"
)

// benchRows is a row count overridable with the environment variable env.
func benchRows(b *testing.B, env string, def int) int {
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q is not a positive integer", env, v)
		}
		return n
	}
	return def
}

// startPostgres starts a throwaway cluster for one benchmark and returns the
// URL of a fresh database.
func startPostgres(b *testing.B) (*pgtest.Cluster, string) {
	b.Helper()
	c, err := pgtest.Start()
	if err != nil {
		b.Skip("PostgreSQL: ", err)
	}
	b.Cleanup(c.Stop)
	return c, c.NewDatabase(b)
}

func pgExec(b *testing.B, url string, sql ...string) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			b.Fatalf("%s: %v", s, err)
		}
	}
}

// dropSlot drops a replication slot once its walsender is gone: a stopped
// client's server process exits a moment after the connection closed.
func dropSlot(b *testing.B, url, slot string) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var active bool
		if err := conn.QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active); err != nil {
			b.Fatalf("slot %s: %v", slot, err)
		}
		if !active {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("slot %s still active after 30s", slot)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot); err != nil {
		b.Fatalf("drop slot %s: %v", slot, err)
	}
}

func pgLSN(b *testing.B, url, sql string) bus.LSN {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		b.Fatal(err)
	}
	lsn, err := bus.ParseLSN(s)
	if err != nil {
		b.Fatal(err)
	}
	return lsn
}

// runCapture runs a capture until cond holds on its status, and returns how
// long that took.
func runCapture(b *testing.B, cfg capture.Config, bb *bustest.Bus, cond func(capture.Status) bool) time.Duration {
	b.Helper()
	c, err := capture.New(cfg, bb.Changes(), bb.State())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for !cond(c.Status()) {
		select {
		case err := <-done:
			b.Fatalf("capture stopped: %v", err)
		case <-time.After(5 * time.Millisecond): // polling interval
		}
	}
	return time.Since(began)
}

// attempts is how many times each side of a ratio is measured; the best
// time of each is kept, so that a burst of load from other processes on the
// machine does not decide the figure. WALSEARCH_BENCH_ATTEMPTS overrides it.
func attempts(b *testing.B) int { return benchRows(b, "WALSEARCH_BENCH_ATTEMPTS", 5) }

// BenchmarkCaptureSnapshot reads a table through the parallel snapshot onto
// the bus, next to a plain COPY of the same table to /dev/null in the same
// run (the ceiling); the two alternate, best of attempts(b) each.
// The snapshot is timed from the capture's start, slot creation included
// (about 50 ms), to streaming. The table has 1M rows, as in the acceptance
// test, so that the figure is the per-row cost a large table pays and not
// the fixed one; a COPY of a small table also sometimes runs in bursts far
// faster than its usual speed (100 against 160 ms for 200k rows), which a
// longer run smooths out. WALSEARCH_BENCH_SNAPSHOT_ROWS sets the size;
// WALSEARCH_BENCH_LOG=1 prints capture's log (snapshot start and duration).
func BenchmarkCaptureSnapshot(b *testing.B) {
	n := benchRows(b, "WALSEARCH_BENCH_SNAPSHOT_ROWS", 1_000_000)
	_, url := startPostgres(b)
	pgExec(b, url, `CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric, tags text[], at timestamptz)`,
		fmt.Sprintf(`INSERT INTO items SELECT i, 'item ' || i, i * 0.01, ARRAY['a', 'b'], now() FROM generate_series(1, %d) i`, n),
		`ANALYZE items`)
	for b.Loop() {
		var copyTook, took time.Duration
		for range attempts(b) {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			began := time.Now()
			if _, err := conn.PgConn().CopyTo(ctx, io.Discard, `COPY (SELECT * FROM items) TO STDOUT`); err != nil {
				b.Fatal(err)
			}
			copyTook = best(copyTook, time.Since(began))
			conn.Close(ctx)

			cfg := capture.DefaultConfig()
			cfg.URL = url
			if os.Getenv("WALSEARCH_BENCH_LOG") != "" {
				cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
			}
			took = best(took, runCapture(b, cfg, bustest.Open(b), func(s capture.Status) bool { return s.Phase == capture.PhaseStreaming }))
			dropSlot(b, url, "walsearch")
			// The next attempt has a new bus, a new owner: forget this one.
			pgExec(b, url, `DROP PUBLICATION walsearch`, `DROP TABLE walsearch_owners`)
		}
		copyRate, rate := float64(n)/copyTook.Seconds(), float64(n)/took.Seconds()
		b.ReportMetric(rate, "snapshot-rows/s")
		b.ReportMetric(copyRate, "copy-rows/s")
		b.ReportMetric(rate/copyRate, "ratio")
	}
}

// best is the shorter of two durations, zero meaning none yet.
func best(a, d time.Duration) time.Duration {
	if a == 0 || d < a {
		return d
	}
	return a
}

// BenchmarkCaptureStreaming decodes the same WAL several times: capture onto
// the bus, and pg_recvlogical with pgoutput into /dev/null (the ceiling),
// alternating, best of attempts(b) each. Every attempt has its own slot,
// created before the rows are written in transactions of 1000 rows, and is
// timed from its start until it reached the end of that WAL (for capture:
// until the bus stored the last row). WALSEARCH_BENCH_STREAM_ROWS sets the
// size.
func BenchmarkCaptureStreaming(b *testing.B) {
	n := benchRows(b, "WALSEARCH_BENCH_STREAM_ROWS", 200_000)
	c, url := startPostgres(b)
	recv := findRecvLogical(b, c)
	pgExec(b, url, `CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric, at timestamptz)`)
	for b.Loop() {
		k := attempts(b)
		buses := make([]*bustest.Bus, k)
		cfgs := make([]capture.Config, k)
		for i := range k {
			buses[i] = bustest.Open(b)
			cfgs[i] = capture.DefaultConfig()
			// One slot and one publication per instance.
			cfgs[i].URL, cfgs[i].Slot, cfgs[i].Publication = url, fmt.Sprintf("walsearch_%d", i), fmt.Sprintf("walsearch_%d", i)
			// First run: publication, slot and an empty snapshot.
			runCapture(b, cfgs[i], buses[i], func(s capture.Status) bool { return s.Phase == capture.PhaseStreaming })
			pgExec(b, url, fmt.Sprintf(`SELECT pg_create_logical_replication_slot('ceiling_%d', 'pgoutput')`, i))
		}
		pgExec(b, url, fmt.Sprintf(`DO $$ BEGIN FOR s IN 0..%d BY 1000 LOOP
			INSERT INTO items SELECT i, 'item ' || i, i * 0.01, now() FROM generate_series(s + 1, least(s + 1000, %d)) i;
			COMMIT; END LOOP; END $$`, n-1, n))
		end := pgLSN(b, url, `SELECT pg_current_wal_lsn()::text`)

		var recvTook, took time.Duration
		for i := range k {
			began := time.Now()
			cmd := exec.Command(recv, "-d", url, "--slot", fmt.Sprintf("ceiling_%d", i), "--start", "--no-loop",
				"-o", "proto_version=1", "-o", "publication_names="+cfgs[i].Publication, "-E", end.String(), "-f", "/dev/null")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("pg_recvlogical: %v\n%s", err, out)
			}
			recvTook = best(recvTook, time.Since(began))

			took = best(took, runCapture(b, cfgs[i], buses[i], func(s capture.Status) bool {
				return s.ReceivedLSN >= end && lastStoredID(b, buses[i], "items") == n
			}))
		}
		recvRate, rate := float64(n)/recvTook.Seconds(), float64(n)/took.Seconds()
		b.ReportMetric(rate, "capture-rows/s")
		b.ReportMetric(recvRate, "pg_recvlogical-rows/s")
		b.ReportMetric(rate/recvRate, "ratio")
		for i := range k {
			dropSlot(b, url, fmt.Sprintf("ceiling_%d", i))
			dropSlot(b, url, fmt.Sprintf("walsearch_%d", i))
			pgExec(b, url, `DROP PUBLICATION `+cfgs[i].Publication)
		}
		pgExec(b, url, `DROP TABLE walsearch_owners`, `TRUNCATE items`)
	}
}

// lastStoredID is the id of the last row of table the changes stream holds,
// or -1.
func lastStoredID(b *testing.B, bb *bustest.Bus, table string) int {
	ctx := context.Background()
	st, err := bb.JetStream().Stream(ctx, bus.ChangesStream)
	if err != nil {
		b.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, bus.ChangeSubject("public", table))
	if err != nil {
		return -1
	}
	cs, err := bus.DecodeChanges(m.Data)
	if err != nil {
		b.Fatal(err)
	}
	last := cs[len(cs)-1]
	if len(last.Key) == 0 {
		return -1
	}
	id, err := strconv.Atoi(fmt.Sprint(last.Key[0].Value))
	if err != nil {
		return -1
	}
	return id
}

// findRecvLogical finds pg_recvlogical next to the server, on PATH or in
// /usr/lib/postgresql/*/bin.
func findRecvLogical(b *testing.B, c *pgtest.Cluster) string {
	b.Helper()
	if p := filepath.Join(c.BinDir, "pg_recvlogical"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("pg_recvlogical"); err == nil {
		return p
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_recvlogical"); len(m) > 0 {
		return m[len(m)-1]
	}
	b.Skip("pg_recvlogical not found")
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// BenchmarkCaptureLargeTransaction streams one transaction of
// WALSEARCH_BENCH_TX_ROWS rows (default 2,000,000) onto the bus and reports
// the process's peak resident set while it does: VmHWM from
// /proc/self/status, reset through /proc/self/clear_refs just before the
// transaction is decoded, so the figure is this benchmark's peak.
func BenchmarkCaptureLargeTransaction(b *testing.B) {
	n := benchRows(b, "WALSEARCH_BENCH_TX_ROWS", 2_000_000)
	_, url := startPostgres(b)
	pgExec(b, url, `CREATE TABLE tx (id bigint PRIMARY KEY, payload text)`)
	for b.Loop() {
		bb := bustest.Open(b)
		cfg := capture.DefaultConfig()
		cfg.URL = url
		runCapture(b, cfg, bb, func(s capture.Status) bool { return s.Phase == capture.PhaseStreaming })
		pgExec(b, url, fmt.Sprintf(`INSERT INTO tx SELECT i, md5(i::text) FROM generate_series(1, %d) i`, n))
		end := pgLSN(b, url, `SELECT pg_current_wal_lsn()::text`)
		reset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
		took := runCapture(b, cfg, bb, func(s capture.Status) bool { return s.ReceivedLSN >= end })
		b.ReportMetric(float64(n)/took.Seconds(), "rows/s")
		if hwm, ok := vmHWM(); ok && reset {
			b.ReportMetric(float64(hwm)/(1<<20), "peak-rss-MiB")
		}
		dropSlot(b, url, "walsearch")
		pgExec(b, url, `DROP PUBLICATION walsearch`, `DROP TABLE walsearch_owners`, `TRUNCATE tx`)
	}
}
