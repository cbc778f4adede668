// Package chaos runs the walsearch binary through a random workload against
// a real PostgreSQL while it breaks things on purpose, and then proves that
// nothing was lost: the index equals the tables (verify reports no drift).
//
// The workload inserts, updates (large TOASTed values included, and
// updates that leave them out of the WAL), deletes, changes keys, truncates,
// adds and drops columns, filters rows through a transform script, and
// writes multi-row, rolled-back and large transactions. Meanwhile the
// harness kills `walsearch run` with SIGKILL again and again — during the
// initial snapshot, while streaming, with a bulk request in flight or its
// answer lost, right after a start — restarts PostgreSQL once, and makes
// the search engine (the embedded engine served over HTTP behind
// internal/faultes) refuse connections, answer 429 and 5xx, and hang. A
// marker row written every few hundred milliseconds measures the commit →
// indexed lag.
//
// At the end, once the pipeline is quiet (the bus drained and the applied
// position past PostgreSQL's WAL position), verify.Run compares every table
// with its index. Errors the harness causes are expected; the run fails only
// on drift, a walsearch that crashes or does not come back, or a pipeline
// that makes no progress within a deadline that grows with the work
// waiting.
//
// It is test support only: nothing in the product imports it.
package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/e2e"
	"github.com/walsearch/walsearch/internal/faultes"
	"github.com/walsearch/walsearch/internal/pgtest"
)

// Defaults for Config.
const (
	DefaultDuration      = 45 * time.Second
	DefaultInitialItems  = 5000
	DefaultRecoverWithin = 3 * time.Minute
	slot                 = "chaos"
)

// Config configures a chaos run.
type Config struct {
	// Cluster is the PostgreSQL server; it is restarted once. Required, and
	// used by nothing else meanwhile.
	Cluster *pgtest.Cluster
	// Binary is the walsearch binary to run. Required.
	Binary string
	// Duration is how long the chaos lasts, before the pipeline is left to
	// settle and verified. Default: 45s.
	Duration time.Duration
	// Seed makes the random choices. Default: 0 (a fixed seed).
	Seed uint64
	// InitialItems is how many rows items has before walsearch starts.
	// Default: 5,000.
	InitialItems int
	// RecoverWithin is how long walsearch may take to index a change made
	// after a disruption ended, on top of a millisecond per row changed
	// since the previous recovery. Default: 3m.
	RecoverWithin time.Duration
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Cluster == nil {
		errs = append(errs, errors.New("chaos: a PostgreSQL cluster is required"))
	}
	if c.Binary == "" {
		errs = append(errs, errors.New("chaos: the walsearch binary is required"))
	}
	if c.Duration < 0 || c.InitialItems < 0 || c.RecoverWithin < 0 {
		errs = append(errs, errors.New("chaos: duration, initial items and recover within must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.InitialItems == 0 {
		c.InitialItems = DefaultInitialItems
	}
	if c.RecoverWithin == 0 {
		c.RecoverWithin = DefaultRecoverWithin
	}
	return c
}

// Summary is what a run did and found.
type Summary struct {
	Seed     uint64
	Duration time.Duration // chaos, then settling and verification
	// Kills counts the SIGKILLs by the moment they hit; Starts the
	// processes started; Exits those that ended on their own (a start
	// refused while PostgreSQL or the engine was down).
	Kills  map[string]int
	Starts int
	Exits  int
	// PostgresRestarts, EngineOutages and FaultedRequests: the other
	// disruptions, and the engine requests a fault was applied to.
	PostgresRestarts, EngineOutages int
	FaultedRequests                 int64
	Changes                         Counts
	// Rows and Documents checked by verify over every table, Rechecked
	// the documents that were still changing when first compared, Drift
	// what differs (must be 0).
	Rows, Documents, Rechecked uint64
	Drift                      int
	DeadLetters                uint64
	Lag                        LagStats
	// StatusLag is the largest lag_seconds GET /status reported.
	StatusLag time.Duration
}

// KillCount is the number of kills in all.
func (s Summary) KillCount() int {
	n := 0
	for _, k := range s.Kills {
		n += k
	}
	return n
}

func (s Summary) String() string {
	var b strings.Builder
	kinds := make([]string, 0, len(s.Kills))
	for k, n := range s.Kills {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	c := s.Changes
	fmt.Fprintf(&b, "chaos summary (seed %d, %s)\n", s.Seed, s.Duration.Round(time.Second))
	fmt.Fprintf(&b, "  kills:        %d (%s); %d walsearch starts, %d exits on its own\n", s.KillCount(), strings.Join(kinds, ", "), s.Starts, s.Exits)
	fmt.Fprintf(&b, "  restarts:     PostgreSQL %d\n", s.PostgresRestarts)
	fmt.Fprintf(&b, "  faults:       %d engine outages (refused, 429, 5xx, hung), %d requests faulted\n", s.EngineOutages, s.FaultedRequests)
	fmt.Fprintf(&b, "  changes:      %d rows in %d transactions (%d inserted, %d updated, %d deleted, %d keys changed, %d large values), "+
		"%d large transactions (largest %d rows), %d truncates, %d columns added, %d dropped, %d backfills; %d rolled back, %d failed\n",
		c.Rows(), c.Transactions, c.Inserted, c.Updated, c.Deleted, c.KeysChanged, c.LargeValues, c.LargeTransactions, c.largestTx,
		c.Truncates, c.ColumnsAdded, c.ColumnsDropped, c.Backfills, c.RolledBack, c.Failed)
	fmt.Fprintf(&b, "  checked:      %d rows, %d documents (%d rechecked while in flight), %d dead letters\n", s.Rows, s.Documents, s.Rechecked, s.DeadLetters)
	fmt.Fprintf(&b, "  drift:        %d\n", s.Drift)
	fmt.Fprintf(&b, "  lag:          longest commit → indexed %s (marker committed %s), median %s, p99 %s over %d markers; /status lag_seconds max %s",
		s.Lag.Worst.Round(time.Millisecond), s.Lag.WorstCommitted.Format("15:04:05"), s.Lag.Median.Round(time.Millisecond),
		s.Lag.P99.Round(time.Millisecond), s.Lag.Markers, s.StatusLag.Round(time.Millisecond))
	return b.String()
}

// run is one chaos run in progress.
type run struct {
	tb     testing.TB
	cfg    Config
	rng    *rand.Rand
	dbURL  string
	base   string // walsearch's API
	engine *e2e.Engine
	sup    *supervisor
	work   *workload
	lag    *lagMeter
	status *statusWatch
	logDir string

	kills    map[string]int
	restarts int
	outages  int
	// faults are the disruptions that may make a start fail (PostgreSQL
	// down, the engine failing), from when to when (zero while it lasts).
	faultMu  sync.Mutex
	faults   [][2]time.Time
	lastRows int64 // rows changed at the last recovery
	started  time.Time
	// gap is the mean time between random kills; during a long catch-up
	// (after a migration, an outage) walsearch is killed as often.
	gap      time.Duration
	lastKill time.Time
	inChaos  bool // random kills are on (not during the snapshot or the final settle)
}

// Run plays a chaos run and fails tb on drift, a crash, a walsearch that
// does not come back or a pipeline that makes no progress.
func Run(tb testing.TB, cfg Config) Summary {
	tb.Helper()
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	r := &run{tb: tb, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), kills: map[string]int{}, started: time.Now()}
	ctx := context.Background()
	r.dbURL = cfg.Cluster.NewDatabase(tb)
	r.work = newWorkload(r.dbURL, cfg.InitialItems)
	if err := r.work.setup(ctx); err != nil {
		tb.Fatal(err)
	}
	r.engine = e2e.StartEngine(tb)
	r.logDir = tb.TempDir()
	scripts := filepath.Join(r.logDir, "scripts")
	if err := os.MkdirAll(filepath.Join(scripts, "accounts"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scripts, "accounts", "transform.js"), []byte(accountsScript), 0o644); err != nil {
		tb.Fatal(err)
	}
	addr, natsAddr := e2e.FreeAddr(tb), e2e.FreeAddr(tb)
	r.base = "http://" + addr
	// Small chunks and batches: more snapshot progress records, more bulk
	// requests, more moments to be killed at.
	cfgPath := e2e.WriteConfig(tb, e2e.Config{DataDir: filepath.Join(r.logDir, "data"), PostgresURL: r.dbURL, Slot: slot,
		ElasticsearchURL: r.engine.URL, APIListen: addr,
		Extra: "nats:\n  listen: " + natsAddr + "\nscripts_dir: " + scripts +
			"\ncapture:\n  chunk_rows: 2000\n  snapshot_workers: 2\nsink:\n  max_batch_size: 500\n"})
	logPath := filepath.Join(r.logDir, "walsearch.log")
	r.sup = newSupervisor(cfg.Binary, cfgPath, logPath, append(os.Environ(), "WALSEARCH_API_RATE_LIMIT=0"))
	tb.Logf("chaos: seed %d, %s of chaos; walsearch log %s", cfg.Seed, cfg.Duration, logPath)

	r.status = &statusWatch{base: r.base, up: func() time.Duration { return r.sup.Uptime() }}
	r.status.fast.Store(true)
	// Writers start before walsearch: the snapshot runs under writes.
	wctx, stopWriters := context.WithCancel(ctx)
	var writers sync.WaitGroup
	defer func() { stopWriters(); writers.Wait() }()
	for i := range 2 {
		rng := rand.New(rand.NewPCG(cfg.Seed+uint64(i)+1, 7))
		writers.Go(func() { r.work.run(wctx, rng, 40*time.Millisecond, r.status.Busy) })
	}
	r.lag = newLagMeter(r.dbURL, r.engine.Transport())
	writers.Go(func() { r.lag.write(wctx, 250*time.Millisecond) })
	pctx, stopPolls := context.WithCancel(ctx)
	var polls sync.WaitGroup
	defer func() { stopPolls(); polls.Wait() }()
	polls.Go(func() { r.lag.poll(pctx, 100*time.Millisecond) })
	polls.Go(func() { r.status.watch(pctx) })

	supervised := make(chan struct{})
	go func() { r.sup.run(); close(supervised) }()
	stopped := false
	tb.Cleanup(func() {
		if !stopped {
			_ = r.sup.Stop()
		}
		<-supervised
		if tb.Failed() {
			tb.Logf("chaos: the last lines of walsearch's log (%s):\n%s", logPath, logTail(logPath, 150))
			if dir := os.Getenv("CHAOS_KEEP_LOG"); dir != "" {
				if raw, err := os.ReadFile(logPath); err == nil && os.MkdirAll(dir, 0o755) == nil {
					kept := filepath.Join(dir, fmt.Sprintf("walsearch-%d.log", cfg.Seed))
					if os.WriteFile(kept, raw, 0o644) == nil {
						tb.Logf("chaos: walsearch's whole log kept in %s (CHAOS_KEEP_LOG)", kept)
					}
				}
			}
		}
	})

	r.killDuringSnapshot()
	r.chaos()
	stopWriters()
	writers.Wait()
	sum := r.settleAndVerify(ctx)
	stopped = true
	if err := r.sup.Stop(); err != nil {
		tb.Errorf("walsearch did not stop cleanly on SIGTERM after the run: %v", err)
	}
	stopPolls()
	polls.Wait()
	for _, c := range crashes(logPath) {
		tb.Errorf("walsearch crashed during the run:\n%s", c)
	}
	r.checkExits()
	sum.Lag = r.lag.Stats()
	sum.StatusLag = r.status.MaxLag()
	sum.Duration = time.Since(r.started)
	return sum
}

// killDuringSnapshot starts walsearch and kills it while its initial
// snapshot runs; a snapshot too quick to be caught is logged.
func (r *run) killDuringSnapshot() {
	defer r.status.fast.Store(false)
	deadline := time.Now().Add(r.cfg.RecoverWithin)
	for time.Now().Before(deadline) {
		st, ok := r.status.Last()
		if ok && st.Capture.Phase == "snapshot" {
			r.kill("snapshot")
			return
		}
		if ok && st.Capture.Phase == "streaming" {
			r.tb.Logf("chaos: the initial snapshot ended before it could be killed")
			return
		}
		pause(time.Second)
	}
	r.stuck("the initial snapshot to start", time.Now())
}

// backfillRunning reports whether walsearch's log says that a backfill of
// table started and has not finished.
func backfillRunning(logPath, table string) bool {
	raw, _ := os.ReadFile(logPath)
	log := string(raw)
	started := strings.LastIndex(log, `msg="backfill started" component=capture slot=`+slot+" table="+table+" ")
	return started >= 0 && !strings.Contains(log[started:], `msg="backfill finished" component=capture slot=`+slot+" table="+table+" ")
}

// kill kills walsearch and counts the moment it hit.
func (r *run) kill(moment string) {
	r.sup.Kill()
	r.lastKill = time.Now()
	r.kills[moment]++
	r.tb.Logf("chaos %s: killed walsearch (%s)", r.elapsed(), moment)
}

func (r *run) elapsed() string { return time.Since(r.started).Round(100 * time.Millisecond).String() }

// event is something planned at a point of the run, as a fraction of its
// duration.
type event struct {
	at   float64
	name string
	do   func()
}

// chaos runs the planned events, and kills walsearch at random moments
// between them, until the duration has passed.
func (r *run) chaos() {
	begin := time.Now()
	end := begin.Add(r.cfg.Duration)
	outage := min(max(r.cfg.Duration/8, 12*time.Second), 70*time.Second)
	special := func(what string) func() {
		return func() {
			done, err := r.work.special(context.Background(), what)
			if err != nil {
				r.tb.Logf("chaos %s: %v (the workload goes on)", r.elapsed(), err)
				return
			}
			r.tb.Logf("chaos %s: %s", r.elapsed(), done)
		}
	}
	// A backfill, and walsearch killed while it (probably) runs.
	backfill := func(table string) func() {
		return func() {
			if _, err := capture.RequestBackfill(context.Background(), r.dbURL, slot, table, 0); err != nil {
				r.tb.Logf("chaos %s: backfill of %s not requested: %v", r.elapsed(), table, err)
				return
			}
			r.work.countBackfill()
			r.tb.Logf("chaos %s: backfill of %s requested", r.elapsed(), table)
			pause(time.Duration(300+r.rng.IntN(1500)) * time.Millisecond)
			moment := "streaming"
			if backfillRunning(r.sup.logPath, "public."+table) {
				moment = "backfill in flight"
			}
			r.kill(moment)
		}
	}
	events := []event{
		{0.12, "add column", special("add column")},
		{0.2, "backfill", backfill("accounts")},
		{0.25, "truncate", special("truncate")},
		{0.3, "engine outage", func() { r.engineOutage(outage) }},
		{0.45, "postgres restart", r.restartPostgres},
		{0.55, "drop column", special("drop column")},
		{0.65, "truncate", special("truncate")},
		{0.7, "backfill", backfill("items")},
	}
	if r.cfg.Duration >= 5*time.Minute {
		events = append(events, event{0.8, "engine outage", func() { r.engineOutage(outage / 2) }},
			event{0.85, "add column", special("add column")})
		sort.Slice(events, func(i, j int) bool { return events[i].at < events[j].at })
	}
	// About one kill every 10–20 s of a long run (each waits until walsearch
	// indexes again), so that a 10-minute run kills it 20 times or more.
	r.gap = min(max(r.cfg.Duration/60, 5*time.Second), 10*time.Second)
	gap := r.gap
	r.inChaos = true
	defer func() { r.inChaos = false }()
	for time.Now().Before(end) {
		if len(events) > 0 && time.Since(begin) >= time.Duration(events[0].at*float64(r.cfg.Duration)) {
			ev := events[0]
			events = events[1:]
			ev.do()
			r.recovered(ev.name)
			continue
		}
		wait := time.Duration(float64(gap) * (0.5 + r.rng.Float64()))
		until := time.Now().Add(wait)
		if len(events) > 0 {
			until = minTime(until, begin.Add(time.Duration(events[0].at*float64(r.cfg.Duration))))
		}
		until = minTime(until, end)
		pause(time.Until(until))
		if time.Now().Before(until) {
			continue
		}
		if len(events) > 0 && time.Since(begin) >= time.Duration(events[0].at*float64(r.cfg.Duration)) {
			continue
		}
		if !time.Now().Before(end) {
			break
		}
		r.randomKill()
	}
	for _, ev := range events {
		ev.do()
		r.recovered(ev.name)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// randomKill kills walsearch at a moment of a random kind, and waits until
// it indexes again — or, half of the time, only until it has run again for
// a few seconds, so that kills also hit it while it catches up.
func (r *run) randomKill() {
	switch k := r.rng.IntN(10); {
	case k < 3:
		r.kill("streaming")
	case k < 5:
		r.killHeld("bulk request in flight", faultes.Fault{Hold: true, Count: 1})
	case k < 7:
		r.killHeld("bulk applied, answer lost", faultes.Fault{HoldAnswer: true, Count: 1})
	default:
		// Killed, then killed again while it starts up.
		r.kill("streaming")
		r.waitUp(time.Duration(r.rng.Int64N(int64(3 * time.Second))))
		r.kill("starting up")
	}
	if r.rng.IntN(2) == 0 {
		// The next kill may hit it while it catches up: only make sure it
		// runs again for a moment.
		r.waitUp(time.Duration(1+r.rng.IntN(4)) * time.Second)
		return
	}
	r.recovered("a kill")
}

// waitUp returns once walsearch has run for d.
func (r *run) waitUp(d time.Duration) {
	deadline := time.Now().Add(r.cfg.RecoverWithin)
	for r.sup.Uptime() < d {
		if time.Now().After(deadline) {
			r.stuck("walsearch to start", time.Now())
		}
		pause(10 * time.Millisecond)
	}
}

// killHeld makes the engine hold the next bulk request (or its answer) and
// kills walsearch while it is held; when no bulk request comes within 10s
// (nothing to index), it kills anyway.
func (r *run) killHeld(moment string, f faultes.Fault) {
	r.engine.Inject(f)
	deadline := time.Now().Add(10 * time.Second)
	for r.engine.Held() == 0 && time.Now().Before(deadline) {
		pause(5 * time.Millisecond)
	}
	if r.engine.Held() == 0 {
		moment = "streaming"
	}
	r.kill(moment)
	r.engine.Clear()
	r.engine.Release()
}

// engineOutage makes the engine fail for d: connections dropped, then 429,
// then 5xx, then requests hung; walsearch is killed once in the middle
// (its restart is refused while the engine fails, and retried).
func (r *run) engineOutage(d time.Duration) {
	r.outages++
	r.faultBegins()
	phases := []struct {
		name  string
		fault faultes.Fault
	}{
		{"refused (connections dropped)", faultes.Fault{Drop: true, All: true}},
		{"429 Too Many Requests", faultes.Fault{Status: 429, All: true}},
		{"503 and 500", faultes.Fault{Status: 503, All: true}},
		{"hung", faultes.Fault{Hold: true}},
	}
	killAt := r.rng.IntN(len(phases))
	for i, p := range phases {
		r.engine.Inject(p.fault)
		if p.fault.Status == 503 {
			pause(d / 8)
			r.engine.Inject(faultes.Fault{Status: 500, All: true})
		}
		r.tb.Logf("chaos %s: search engine %s", r.elapsed(), p.name)
		pause(d / time.Duration(2*len(phases)))
		if i == killAt {
			r.kill("engine failing")
		}
		pause(d / time.Duration(2*len(phases)))
	}
	r.engine.Clear()
	r.engine.Release()
	r.faultEnds()
	r.tb.Logf("chaos %s: search engine back after %s", r.elapsed(), d)
}

// restartPostgres restarts the PostgreSQL server (fast shutdown).
func (r *run) restartPostgres() {
	r.faultBegins()
	r.tb.Logf("chaos %s: restarting PostgreSQL", r.elapsed())
	if err := r.cfg.Cluster.Restart(); err != nil {
		r.tb.Fatalf("restart PostgreSQL: %v\n%s", err, r.cfg.Cluster.Log())
	}
	r.restarts++
	r.faultEnds()
	r.tb.Logf("chaos %s: PostgreSQL is back", r.elapsed())
}

func (r *run) faultBegins() {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	r.faults = append(r.faults, [2]time.Time{time.Now()})
}

func (r *run) faultEnds() {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	r.faults[len(r.faults)-1][1] = time.Now()
}

// exitGrace is how long after a disruption ended a start may still fail
// because of it (a start begun while it lasted).
const exitGrace = 30 * time.Second

// checkExits fails the run for every exit of walsearch on its own that no
// disruption explains: walsearch must not stop by itself.
func (r *run) checkExits() {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	for _, e := range r.sup.Exits() {
		explained := false
		for _, f := range r.faults {
			explained = explained || !e.at.Before(f[0]) && (f[1].IsZero() || e.at.Before(f[1].Add(exitGrace)))
		}
		if !explained {
			r.tb.Errorf("walsearch exited on its own at %s with no disruption to explain it: %s; last line: %s",
				e.at.Format("15:04:05.000"), e.err, e.reason)
		}
	}
}

// recovered waits until a marker committed now is indexed: walsearch is
// back and indexes again. The deadline grows with the rows changed since
// the last recovery.
func (r *run) recovered(after string) {
	since := time.Now()
	rows := r.work.Counts().Rows()
	within := r.cfg.RecoverWithin + time.Duration(rows-r.lastRows)*time.Millisecond
	deadline := since.Add(within)
	nextKill := time.Now().Add(r.gap + time.Duration(r.rng.Int64N(int64(r.gap)+1)))
	for !r.lag.IndexedSince(since) {
		if time.Now().After(deadline) {
			r.stuck("a change made after "+after+" to be indexed", since)
		}
		if r.inChaos && time.Now().After(nextKill) {
			// A long catch-up: kill it in the middle, and give it the time
			// a restart takes.
			r.kill("catching up")
			r.waitUp(time.Second)
			deadline = deadline.Add(r.gap)
			nextKill = time.Now().Add(r.gap + time.Duration(r.rng.Int64N(int64(r.gap)+1)))
		}
		pause(50 * time.Millisecond)
	}
	r.lastRows = rows
}

// stuck fails the run: the pipeline made no progress within its deadline.
func (r *run) stuck(what string, since time.Time) {
	st, _ := r.status.Last()
	raw, _ := json.Marshal(st)
	var exits []string
	for _, e := range r.sup.Exits() {
		exits = append(exits, fmt.Sprintf("%s %s (%s)", e.at.Format("15:04:05"), e.err, e.reason))
	}
	r.tb.Fatalf("stuck: waited since %s for %s, in vain; walsearch up for %s; last status %s; exits on its own: %s",
		since.Format("15:04:05"), what, r.sup.Uptime().Round(time.Second), raw, strings.Join(exits, "; "))
}

// status is the part of GET /status the harness reads.
type status struct {
	AppliedLSN bus.LSN           `json:"applied_lsn"`
	LagSeconds float64           `json:"lag_seconds"`
	Backlog    map[string]uint64 `json:"bus_backlog"`
	DLQCount   uint64            `json:"dlq_count"`
	Capture    struct {
		Phase string `json:"phase"`
	} `json:"capture"`
	Tables []struct {
		Table        string `json:"table"`
		Snapshot     string `json:"snapshot"`
		SnapshotRows uint64 `json:"snapshot_rows"`
	} `json:"tables"`
}

// statusWatch polls GET /status and keeps the last answer and the largest
// lag seen.
type statusWatch struct {
	base string

	fast atomic.Bool
	// up says how long walsearch has been running.
	up func() time.Duration

	mu     sync.Mutex
	last   status
	ok     bool
	maxLag float64
}

// watch polls every 250ms, or every 20ms while fast is set (to catch the
// short initial snapshot): GET /status is not free for walsearch.
func (s *statusWatch) watch(ctx context.Context) {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		interval := 250 * time.Millisecond
		if s.fast.Load() {
			interval = 20 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		st, err := getStatus(ctx, client, s.base)
		s.mu.Lock()
		s.last, s.ok = st, err == nil
		if err == nil {
			s.maxLag = max(s.maxLag, st.LagSeconds)
		}
		s.mu.Unlock()
	}
}

func getStatus(ctx context.Context, client *http.Client, base string) (status, error) {
	var st status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	if err != nil {
		return st, err
	}
	res, err := client.Do(req)
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return st, err
	}
	if res.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: HTTP %d", res.StatusCode)
	}
	return st, json.Unmarshal(raw, &st)
}

// Last is the last answer, and whether the last poll got one.
func (s *statusWatch) Last() (status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.ok
}

// busyBacklog is the bus backlog (messages waiting for the transform and
// sink stages) above which the workload pauses.
const busyBacklog = 2000

// Busy reports whether the pipeline has a backlog large enough that the
// workload should wait: it lets the pipeline catch up on a slow machine.
// While walsearch is down (killed), the workload goes on.
func (s *statusWatch) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ok {
		// Not answering while it has run a while: overloaded.
		return s.up() > 5*time.Second
	}
	return s.last.Backlog["transform"]+s.last.Backlog["sink"] > busyBacklog
}

// MaxLag is the largest lag_seconds seen.
func (s *statusWatch) MaxLag() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.maxLag * float64(time.Second))
}

// walPosition is PostgreSQL's current WAL insert position.
func walPosition(ctx context.Context, conn *pgx.Conn) (bus.LSN, error) {
	var s string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s); err != nil {
		return 0, fmt.Errorf("read the WAL position: %w", err)
	}
	return bus.ParseLSN(s)
}
