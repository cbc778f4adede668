package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/e2e"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/internal/pgtest"
)

// BenchmarkE2E runs the walsearch binary (built for the benchmark) from a
// real PostgreSQL into (a) a discard-everything Elasticsearch endpoint in
// this process (e2e.DiscardES) and (b) its embedded engine, next to
// pg_recvlogical streaming the same workload with pgoutput into this
// process (the ceiling: PostgreSQL decoding the WAL for a client that does
// nothing else), measured in the same run. Workloads, each on the table
// items (id bigint primary key, name, price numeric, tags text[], at
// timestamptz):
//
//   - insert-200k: one INSERT … SELECT generate_series of
//     WALSEARCH_BENCH_E2E_ROWS rows (default 200,000);
//   - tx-1000: as many rows in transactions of 1,000;
//   - rate-500, rate-2000: single-row transactions at that steady rate for
//     WALSEARCH_BENCH_E2E_SECONDS (default 10), from one connection.
//
// Every run has its own database, slot and consumer, started before a
// warm-up (one 1,000-row transaction, or a second of the fixed rate) that
// it must have received before the workload begins; the writer commits
// with synchronous_commit on. A row counts as delivered when the discard
// endpoint received its bulk request (commit → acknowledged), when it is
// found by a search through walsearch's API (commit → searchable: the
// benchmark searches for the ids above the highest up to which every row
// was found, every 10 ms at a fixed rate and every 250 ms under the bulk
// workloads), or when pg_recvlogical received its bytes. A run fails
// unless every row arrived exactly once.
//
// Each workload reports, per target and for pg_recvlogical: rows/s from the
// first commit to the last row delivered, CPU µs per row of the consumer
// process (/proc/<pid>/stat; its walsender's in the log), peak RSS (VmHWM,
// reset before the workload), seconds from the first commit to the first
// row and from the last commit to the last row, and commit → delivered
// p50/p99/max; the ratios to pg_recvlogical are in the metrics (rows/s,
// p99) and in the log line of each target. The ceiling, walsearch into
// the discard endpoint and walsearch with the embedded engine run in turn,
// WALSEARCH_BENCH_ATTEMPTS times (default 1); each side keeps its best run
// (most rows/s, or lowest p99 at a fixed rate).
//
// WALSEARCH_BENCH_E2E_CPUPROFILE=dir writes a CPU profile of each walsearch
// process (start to stop, warm-up included) to dir/<workload>-<target>.pprof.
// WALSEARCH_BENCH_E2E_MEMPROFILE=dir writes a profile of each process's
// allocations to dir/<workload>-<target>.allocs.pprof.
// WALSEARCH_BENCH_E2E_TARGETS, a comma list of recvlogical, discard and
// embedded (default all three), runs only those; a ratio to pg_recvlogical
// is reported only when it ran. Select workloads with -bench, e.g.
// -bench 'E2E/rate-'.
func BenchmarkE2E(b *testing.B) {
	rows := benchRows(b, "WALSEARCH_BENCH_E2E_ROWS", 200_000)
	secs := benchRows(b, "WALSEARCH_BENCH_E2E_SECONDS", 10)
	// A run takes from seconds to minutes (the embedded engine's bulk runs
	// the longest): one attempt by default.
	k := benchRows(b, "WALSEARCH_BENCH_ATTEMPTS", 1)
	targets := e2eTargets(b)
	cluster, _ := startPostgres(b)
	env := e2eEnv{cluster: cluster, recv: findRecvLogical(b, cluster), bin: buildWalsearch(b)}
	for _, w := range []e2eWorkload{
		{name: fmt.Sprintf("insert-%dk", rows/1000), rows: rows, tx: rows},
		{name: "tx-1000", rows: rows, tx: 1000},
		{name: "rate-500", rows: 500 * secs, rate: 500},
		{name: "rate-2000", rows: 2000 * secs, rate: 2000},
	} {
		b.Run(w.name, func(b *testing.B) {
			for range b.N {
				var ceil, discard, embedded e2eFigures
				for range k {
					if targets["recvlogical"] {
						ceil = w.better(ceil, runCeiling(b, env, w).figures())
					}
					if targets["discard"] {
						discard = w.better(discard, runWalsearch(b, env, w, false).figures())
					}
					if targets["embedded"] {
						embedded = w.better(embedded, runWalsearch(b, env, w, true).figures())
					}
				}
				reportE2E(b, w, ceil, discard, embedded)
			}
		})
	}
}

// e2eTargets reads WALSEARCH_BENCH_E2E_TARGETS.
func e2eTargets(b *testing.B) map[string]bool {
	all := map[string]bool{"recvlogical": true, "discard": true, "embedded": true}
	v := os.Getenv("WALSEARCH_BENCH_E2E_TARGETS")
	if v == "" {
		return all
	}
	out := map[string]bool{}
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		if !all[t] {
			b.Fatalf("WALSEARCH_BENCH_E2E_TARGETS: unknown target %q (recvlogical, discard, embedded)", t)
		}
		out[t] = true
	}
	return out
}

// e2eWorkload writes the rows 1..rows of items.
type e2eWorkload struct {
	name string
	rows int
	tx   int // rows per transaction, as fast as they go
	rate int // or single-row transactions per second
}

// warmRows is how many rows the warm-up writes (ids -warmRows..-1).
func (w e2eWorkload) warmRows() int {
	if w.rate > 0 {
		return w.rate // a second
	}
	return 1000
}

// better is the better of two runs of w (zero meaning none yet).
func (w e2eWorkload) better(a, f e2eFigures) e2eFigures {
	switch {
	case a.rows == 0:
		return f
	case w.rate > 0 && f.p99 < a.p99, w.rate == 0 && f.rowsPerSec > a.rowsPerSec:
		return f
	}
	return a
}

// e2eStall is how long a consumer may receive nothing before a run fails.
const e2eStall = 60 * time.Second

const e2eTableDDL = `CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric, tags text[], at timestamptz)`

type e2eEnv struct {
	cluster   *pgtest.Cluster
	recv, bin string
}

// e2eRun is what one run measured.
type e2eRun struct {
	commits, seen     []time.Time // per row (id-1)
	cpu, walsenderCPU time.Duration
	peakRSS           uint64
}

// e2eFigures are the figures of one run.
type e2eFigures struct {
	rows                   int
	rowsPerSec, commitRate float64
	cpuUS, walsenderUS     float64 // per row
	rssMiB                 float64
	firstS, lastS          float64
	p50, p99, max          float64 // ms
}

func (r e2eRun) figures() e2eFigures {
	n := len(r.commits)
	firstCommit, lastCommit := r.commits[0], r.commits[n-1]
	firstSeen, lastSeen := slices.MinFunc(r.seen, time.Time.Compare), slices.MaxFunc(r.seen, time.Time.Compare)
	lat := make([]float64, n)
	for i := range n {
		lat[i] = r.seen[i].Sub(r.commits[i]).Seconds() * 1000
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return lat[max(0, int(math.Ceil(p*float64(n)))-1)] }
	f := e2eFigures{
		rows:        n,
		rowsPerSec:  float64(n) / lastSeen.Sub(firstCommit).Seconds(),
		cpuUS:       float64(r.cpu.Microseconds()) / float64(n),
		walsenderUS: float64(r.walsenderCPU.Microseconds()) / float64(n),
		rssMiB:      float64(r.peakRSS) / (1 << 20),
		firstS:      firstSeen.Sub(firstCommit).Seconds(),
		lastS:       lastSeen.Sub(lastCommit).Seconds(),
		p50:         pct(0.50), p99: pct(0.99), max: lat[n-1],
	}
	if d := lastCommit.Sub(firstCommit); d > 0 {
		f.commitRate = float64(n-1) / d.Seconds()
	}
	return f
}

// slotName names the slot (and publication) of a run after its database,
// which is unique in the cluster, as slot names must be.
func slotName(b *testing.B, dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// runCeiling streams w through pg_recvlogical.
func runCeiling(b *testing.B, env e2eEnv, w e2eWorkload) e2eRun {
	db := env.cluster.NewDatabase(b)
	slot := slotName(b, db)
	pgExec(b, db, e2eTableDDL, `CREATE PUBLICATION `+slot+` FOR TABLE items`,
		fmt.Sprintf(`SELECT pg_create_logical_replication_slot('%s', 'pgoutput')`, slot))
	arr := e2e.NewArrivals(w.rows)
	r := e2e.StartRecvLogical(b, env.recv, db, slot, slot, arr)
	walsender := waitSlotActive(b, db, slot, r.Process)
	alive := func() error {
		if err := r.Err(); err != nil {
			return err
		}
		select {
		case <-r.Exited():
			return fmt.Errorf("pg_recvlogical exited: %s", r.Output())
		default:
			return nil
		}
	}
	run := measure(b, db, w, r.Process, walsender, arr, alive, nil)
	if err := r.Stop(); err != nil {
		b.Fatal(err)
	}
	dropSlot(b, db, slot)
	return run
}

// runWalsearch streams w through walsearch into the discard endpoint, or
// into its embedded engine.
func runWalsearch(b *testing.B, env e2eEnv, w e2eWorkload, embedded bool) e2eRun {
	db := env.cluster.NewDatabase(b)
	slot := slotName(b, db)
	pgExec(b, db, e2eTableDDL)
	arr := e2e.NewArrivals(w.rows)
	esURL := ""
	if !embedded {
		esURL = e2e.StartDiscardES(b, arr).URL
	}
	dataDir, err := os.MkdirTemp("", "walsearch-e2e-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dataDir) })
	addr, natsAddr := e2e.FreeAddr(b), e2e.FreeAddr(b)
	base := "http://" + addr
	cfg := e2e.WriteConfig(b, e2e.Config{DataDir: dataDir, PostgresURL: db, Slot: slot, ElasticsearchURL: esURL, APIListen: addr,
		Extra: "nats:\n  listen: " + natsAddr + "\n"})
	args := []string{"run", "--config", cfg}
	if dir := os.Getenv("WALSEARCH_BENCH_E2E_CPUPROFILE"); dir != "" {
		target := "discard"
		if embedded {
			target = "embedded"
		}
		args = append(args, "--cpuprofile", filepath.Join(dir, w.name+"-"+target+".pprof"))
	}
	if dir := os.Getenv("WALSEARCH_BENCH_E2E_MEMPROFILE"); dir != "" {
		target := "discard"
		if embedded {
			target = "embedded"
		}
		args = append(args, "--memprofile", filepath.Join(dir, w.name+"-"+target+".allocs.pprof"))
	}
	cmd := exec.Command(env.bin, args...)
	// The benchmark polls the search API faster than its default rate limit.
	cmd.Env = append(os.Environ(), "WALSEARCH_API_RATE_LIMIT=0")
	p := e2e.Start(b, cmd)
	e2e.WaitStatus(b, p, base, "capture streaming", 2*time.Minute, func(st e2e.Status) bool { return st.Capture.Phase == "streaming" })
	walsender := waitSlotActive(b, db, slot, p)
	alive := func() error {
		select {
		case <-p.Exited():
			return fmt.Errorf("walsearch exited: %s", p.Output())
		default:
			return nil
		}
	}
	var observe func(ctx context.Context, warm int)
	if embedded {
		s := &searcher{base: base, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
		observe = func(ctx context.Context, warm int) { s.observe(ctx, b, w, warm, arr) }
	}
	run := measure(b, db, w, p, walsender, arr, alive, observe)
	if err := p.Stop(); err != nil {
		b.Fatalf("walsearch did not stop cleanly: %v", err)
	}
	dropSlot(b, db, slot)
	pgExec(b, db, `DROP PUBLICATION `+slot)
	if err := os.RemoveAll(dataDir); err != nil {
		b.Fatal(err)
	}
	return run
}

// waitSlotActive waits until a consumer streams from slot and returns the
// process id of its walsender.
func waitSlotActive(b *testing.B, db, slot string, p *e2e.Process) int {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(time.Minute)
	for {
		var pid *int
		if err := conn.QueryRow(ctx, `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&pid); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			b.Fatal(err)
		}
		if pid != nil {
			return *pid
		}
		select {
		case <-p.Exited():
			b.Fatalf("consumer of slot %s exited: %s", slot, p.Output())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("no consumer on slot %s within a minute", slot)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// measure writes the warm-up rows and waits for them, then writes w and
// waits for every row, measuring consumer (the consumer process) on the
// way. observe, if set, records what arrives in arr (searching for it)
// until its context ends; otherwise the consumer records it.
func measure(b *testing.B, db string, w e2eWorkload, consumer measured, walsender int, arr *e2e.Arrivals, alive func() error,
	observe func(ctx context.Context, warm int)) e2eRun {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET synchronous_commit = on`); err != nil {
		b.Fatal(err)
	}
	if observe != nil {
		octx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); observe(octx, w.warmRows()) }()
		defer func() { cancel(); wg.Wait() }()
	}
	warm := w.warmRows()
	writeRows(b, conn, w, -warm, warm)
	waitArrivals(b, "the warm-up rows", warm, func() int { _, n, _, _ := arr.Counts(); return n }, alive)

	var run e2eRun
	cpu0, err := consumer.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	ws0, wsErr := e2e.CPUTime(walsender)
	if err := consumer.ResetPeakRSS(); err != nil {
		b.Fatal(err)
	}
	run.commits = writeRows(b, conn, w, 1, w.rows)
	waitArrivals(b, "the workload's rows", w.rows, func() int { n, _, _, _ := arr.Counts(); return n }, alive)
	cpu1, err := consumer.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	ws1, err := e2e.CPUTime(walsender)
	if wsErr == nil && err == nil {
		run.walsenderCPU = ws1 - ws0
	}
	run.cpu = cpu1 - cpu0
	if run.peakRSS, err = consumer.PeakRSS(); err != nil {
		b.Fatal(err)
	}
	run.seen = arr.Times()
	rows, _, dup, stray := arr.Counts()
	if observe != nil {
		dup = 0 // searches find rows again until every row below them is found
	}
	if rows != w.rows || dup != 0 || stray != 0 {
		b.Fatalf("%d of %d rows received, %d twice, %d ids that are no row", rows, w.rows, dup, stray)
	}
	return run
}

// measured is the process, or processes, whose CPU time and memory a run
// measures: an *e2e.Process, or a processGroup.
type measured interface {
	CPUTime() (time.Duration, error)
	ResetPeakRSS() error
	PeakRSS() (uint64, error)
}

// processGroup measures processes together: the sum of their CPU times
// and of their peak RSS.
type processGroup []*e2e.Process

func (g processGroup) CPUTime() (time.Duration, error) {
	var sum time.Duration
	for _, p := range g {
		d, err := p.CPUTime()
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

func (g processGroup) ResetPeakRSS() error {
	for _, p := range g {
		if err := p.ResetPeakRSS(); err != nil {
			return err
		}
	}
	return nil
}

func (g processGroup) PeakRSS() (uint64, error) {
	var sum uint64
	for _, p := range g {
		n, err := p.PeakRSS()
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// waitArrivals polls count until it reaches want; the run fails when
// nothing more arrived for e2eStall, or alive reports the consumer gone.
func waitArrivals(b *testing.B, what string, want int, count func() int, alive func() error) {
	last, progress := -1, time.Now()
	for {
		n := count()
		if n >= want {
			return
		}
		if n != last {
			last, progress = n, time.Now()
		}
		if err := alive(); err != nil {
			b.Fatalf("%s: %d of %d received: %v", what, n, want, err)
		}
		if time.Since(progress) > e2eStall {
			b.Fatalf("%s: %d of %d received, nothing more for %s", what, n, want, e2eStall)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// writeRows writes the rows first..first+n-1 the way w does, and returns
// when each was committed (the commit's return to this client).
func writeRows(b *testing.B, conn *pgx.Conn, w e2eWorkload, first, n int) []time.Time {
	ctx := context.Background()
	commits := make([]time.Time, n)
	if w.rate == 0 {
		for s := 0; s < n; s += w.tx {
			e := min(s+w.tx, n)
			if _, err := conn.Exec(ctx, `INSERT INTO items SELECT i, 'item ' || i, i * 0.01, ARRAY['a', 'b'], now() FROM generate_series($1::bigint, $2::bigint) i`,
				first+s, first+e-1); err != nil {
				b.Fatal(err)
			}
			t := time.Now()
			for i := s; i < e; i++ {
				commits[i] = t
			}
		}
		return commits
	}
	const insert = `INSERT INTO items VALUES ($1::bigint, 'item ' || $1::bigint, $1::bigint * 0.01, ARRAY['a', 'b'], now())`
	if _, err := conn.Prepare(ctx, "insert_item", insert); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := range n {
		// Each transaction has its slot in time; a late one goes at once,
		// so a writer that fell behind catches up by what it lost, no more.
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(w.rate))); d > 0 {
			time.Sleep(d) // pacing the writes, not waiting for anything
		}
		if _, err := conn.Exec(ctx, "insert_item", int64(first+i)); err != nil {
			b.Fatal(err)
		}
		commits[i] = time.Now()
	}
	return commits
}

// searcher finds rows through walsearch's search API.
type searcher struct {
	base   string
	client *http.Client
}

type searchResult struct {
	Data []struct {
		ID int64 `json:"id"`
	} `json:"data"`
	Meta struct {
		TotalRecords int `json:"total_records"`
	} `json:"meta"`
}

// search posts a search of items; an index that does not exist yet is an
// empty result.
func (s *searcher) search(ctx context.Context, body map[string]any) (searchResult, error) {
	var res searchResult
	body["index"] = "items"
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", s.base+"/search", bytes.NewReader(raw))
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return res, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.Unmarshal(out, &res); err != nil {
			return res, fmt.Errorf("search items: %w", err)
		}
		return res, nil
	case http.StatusNotFound:
		return res, nil
	}
	return res, fmt.Errorf("search items: HTTP %d: %s", resp.StatusCode, out)
}

// observe records in arr when rows become searchable, until ctx ends:
// first the warm-up rows, by their count; then the workload's rows, by
// searching for the ids above the highest up to which all were found.
func (s *searcher) observe(ctx context.Context, b *testing.B, w e2eWorkload, warm int, arr *e2e.Arrivals) {
	// Every poll matches the searchable rows above the lowest one missing;
	// under a bulk workload those are thousands (the sink's lanes advance
	// unevenly), so polls there are rarer, which the latencies of seconds
	// they measure allow.
	interval := 250 * time.Millisecond
	if w.rate > 0 {
		interval = 10 * time.Millisecond
	}
	for {
		rows, warmSeen, _, _ := arr.Counts()
		if rows == w.rows {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval): // polling interval
		}
		if warmSeen < warm {
			res, err := s.search(ctx, map[string]any{"query_fields": map[string]any{"id": map[string]any{"lt": 0}}, "page_size": 1, "fields": []string{"id"}})
			if err != nil {
				if ctx.Err() == nil {
					b.Errorf("count items: %v", err)
				}
				return
			}
			// The count stands for the warm-up rows found.
			var ids []int64
			for id := -min(res.Meta.TotalRecords, warm); id < -warmSeen; id++ {
				ids = append(ids, int64(id))
			}
			arr.Record(time.Now(), ids...)
			continue
		}
		const page = 1000
		lo := contiguous(arr)
		for {
			res, err := s.search(ctx, map[string]any{"query_fields": map[string]any{"id": map[string]any{"gt": lo}},
				"fields": []string{"id"}, "sort_by": map[string]string{"id": "asc"}, "page_size": page})
			if err != nil {
				if ctx.Err() == nil {
					b.Errorf("search items: %v", err)
				}
				return
			}
			now := time.Now()
			ids := make([]int64, 0, len(res.Data))
			for _, d := range res.Data {
				ids = append(ids, d.ID)
			}
			arr.Record(now, ids...)
			if len(res.Data) < page {
				break
			}
			lo = res.Data[len(res.Data)-1].ID
		}
	}
}

// contiguous is the highest id up to which every row has been found.
func contiguous(arr *e2e.Arrivals) int64 {
	if m := arr.Missing(1); len(m) > 0 {
		return m[0] - 1
	}
	n, _, _, _ := arr.Counts()
	return int64(n)
}

// reportE2E reports the best runs of each side of w.
func reportE2E(b *testing.B, w e2eWorkload, ceil, discard, embedded e2eFigures) {
	if ceil.rows > 0 {
		b.ReportMetric(ceil.rowsPerSec, "recvlogical-rows/s")
		b.ReportMetric(ceil.cpuUS, "recvlogical-cpu-us/row")
		b.ReportMetric(ceil.p99, "recvlogical-p99-ms")
	}
	for _, t := range []struct {
		name, delivered string
		f               e2eFigures
	}{{"discard", "ack", discard}, {"embedded", "searchable", embedded}} {
		f := t.f
		if f.rows == 0 {
			continue // not run
		}
		b.ReportMetric(f.rowsPerSec, t.name+"-rows/s")
		if ceil.rows > 0 {
			b.ReportMetric(f.rowsPerSec/ceil.rowsPerSec, t.name+"-ratio-to-recvlogical")
			b.ReportMetric(f.p99/ceil.p99, t.name+"-p99-ratio-to-recvlogical")
		}
		b.ReportMetric(f.cpuUS, t.name+"-cpu-us/row")
		b.ReportMetric(f.rssMiB, t.name+"-peak-rss-MiB")
		b.ReportMetric(f.firstS, t.name+"-first-s")
		b.ReportMetric(f.lastS, t.name+"-last-s")
		b.ReportMetric(f.p50, t.name+"-commit-"+t.delivered+"-p50-ms")
		b.ReportMetric(f.p99, t.name+"-commit-"+t.delivered+"-p99-ms")
		b.ReportMetric(f.max, t.name+"-commit-"+t.delivered+"-max-ms")
		x := func(a, c float64) string {
			if c <= 0 || a < 0 {
				return "no ratio" // a row arrived before its commit returned to the writer
			}
			return fmt.Sprintf("%.2f×", a/c)
		}
		what := "acknowledged"
		if t.delivered == "searchable" {
			what = "searchable (refresh interval " + eslite.DefaultRefreshInterval + ")"
		}
		rate := ""
		if w.rate > 0 {
			rate = fmt.Sprintf(" (commits at %.0f/s, pg_recvlogical's at %.0f/s)", f.commitRate, ceil.commitRate)
		}
		b.Logf("%s → %s: %.0f rows/s = %s pg_recvlogical (%.0f)%s; CPU %.1f µs/row = %.3f s per 1,000 rows (pg_recvlogical %.1f µs/row, %s; walsender %.1f against %.1f µs/row); "+
			"peak RSS %.0f MiB (pg_recvlogical %.1f MiB, %s); commit → first row %.3f s (pg_recvlogical %.3f s, %s), last commit → last row %.3f s (%.3f s, %s); "+
			"commit → %s p50/p99/max %.0f/%.0f/%.0f ms (pg_recvlogical %.0f/%.0f/%.0f ms: %s/%s/%s)",
			w.name, t.name, f.rowsPerSec, x(f.rowsPerSec, ceil.rowsPerSec), ceil.rowsPerSec, rate,
			f.cpuUS, f.cpuUS/1000, ceil.cpuUS, x(f.cpuUS, ceil.cpuUS), f.walsenderUS, ceil.walsenderUS,
			f.rssMiB, ceil.rssMiB, x(f.rssMiB, ceil.rssMiB),
			f.firstS, ceil.firstS, x(f.firstS, ceil.firstS), f.lastS, ceil.lastS, x(f.lastS, ceil.lastS),
			what, f.p50, f.p99, f.max, ceil.p50, ceil.p99, ceil.max, x(f.p50, ceil.p50), x(f.p99, ceil.p99), x(f.max, ceil.max))
	}
}
