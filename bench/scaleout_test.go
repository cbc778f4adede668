package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/internal/e2e"
)

// BenchmarkScaleOut runs walsearch as separate processes — capture,
// transform and sink, each its own process — on a three-node NATS cluster
// (nats-server processes on 127.0.0.1, built from the module version in
// go.mod), into the discard Elasticsearch endpoint.
//
//   - insert-200k: one INSERT … SELECT of WALSEARCH_BENCH_E2E_ROWS rows
//     (default 200,000), measured as BenchmarkE2E measures it (commit →
//     acknowledged by the endpoint), next to pg_recvlogical (the ceiling)
//     and the single-process `walsearch run` (embedded NATS, the same
//     endpoint) on the same workload in the same run. CPU is the sum over
//     the three walsearch processes; the nats-servers' CPU (warm-up
//     included) is reported apart.
//   - failover: two capture processes (leader and standby, lease TTL 5s)
//     under a steady writer (100 single-row transactions a second). The
//     leader is killed (SIGKILL) WALSEARCH_BENCH_FAILOVERS times (default
//     5; a new standby is started after each takeover), and the time from
//     the kill to the first change the new leader published (received on
//     the cluster, carrying the new lease token) is reported as p50/max,
//     with the time to the lease's change. Its floor, measured in the same
//     run as many times, is the clean handover: the leader stopped with
//     SIGTERM releases the lease and the standby takes it at once.
//   - workers: WALSEARCH_BENCH_WORKERS_ROWS rows (default 50,000) in
//     1,000-row transactions through a capture process and one, then two
//     `transform,sink` workers sharing nats.partitions 2, next to
//     pg_recvlogical in the same run.
func BenchmarkScaleOut(b *testing.B) {
	rows := benchRows(b, "WALSEARCH_BENCH_E2E_ROWS", 200_000)
	k := benchRows(b, "WALSEARCH_BENCH_ATTEMPTS", 1)
	cluster, _ := startPostgres(b)
	env := e2eEnv{cluster: cluster, recv: findRecvLogical(b, cluster), bin: buildWalsearch(b)}
	natsBin, err := bustest.BuildNATSServer(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("insert-%dk", rows/1000), func(b *testing.B) {
		w := e2eWorkload{name: fmt.Sprintf("insert-%dk", rows/1000), rows: rows, tx: rows}
		for range b.N {
			var ceil, single, separate e2eFigures
			var natsUS float64
			for range k {
				ceil = w.better(ceil, runCeiling(b, env, w).figures())
				single = w.better(single, runWalsearch(b, env, w, false).figures())
				run, natsCPU := runSeparate(b, env, natsBin, w)
				f := run.figures()
				if f.rowsPerSec > separate.rowsPerSec {
					separate, natsUS = f, float64(natsCPU.Microseconds())/float64(w.rows)
				}
			}
			b.ReportMetric(ceil.rowsPerSec, "recvlogical-rows/s")
			b.ReportMetric(single.rowsPerSec, "single-rows/s")
			b.ReportMetric(separate.rowsPerSec, "separate-rows/s")
			b.ReportMetric(single.rowsPerSec/ceil.rowsPerSec, "single-ratio-to-recvlogical")
			b.ReportMetric(separate.rowsPerSec/ceil.rowsPerSec, "separate-ratio-to-recvlogical")
			b.ReportMetric(separate.rowsPerSec/single.rowsPerSec, "separate-ratio-to-single")
			b.ReportMetric(single.cpuUS, "single-cpu-us/row")
			b.ReportMetric(separate.cpuUS, "separate-cpu-us/row")
			b.ReportMetric(natsUS, "separate-nats-cpu-us/row")
			b.Logf("%s: separate processes (capture, transform, sink on 3 nats-servers) %.0f rows/s = %.2f× pg_recvlogical (%.0f rows/s) = %.2f× one process (%.0f rows/s); "+
				"CPU %.1f µs/row in walsearch + %.1f µs/row in the nats-servers (one process: %.1f µs/row, NATS embedded); peak RSS %.0f MiB summed (one process %.0f MiB); "+
				"commit → acknowledged p50/p99/max %.0f/%.0f/%.0f ms (one process %.0f/%.0f/%.0f ms, pg_recvlogical %.0f/%.0f/%.0f ms)",
				w.name, separate.rowsPerSec, separate.rowsPerSec/ceil.rowsPerSec, ceil.rowsPerSec, separate.rowsPerSec/single.rowsPerSec, single.rowsPerSec,
				separate.cpuUS, natsUS, single.cpuUS, separate.rssMiB, single.rssMiB,
				separate.p50, separate.p99, separate.max, single.p50, single.p99, single.max, ceil.p50, ceil.p99, ceil.max)
		}
	})
	b.Run("workers", func(b *testing.B) {
		// 1,000-row transactions, so that rows hash over both partitions
		// while capture keeps up.
		n := benchRows(b, "WALSEARCH_BENCH_WORKERS_ROWS", 50_000)
		w := e2eWorkload{name: fmt.Sprintf("tx1000-%dk", n/1000), rows: n, tx: 1000}
		for range b.N {
			var ceil, one, two e2eFigures
			for range k {
				ceil = w.better(ceil, runCeiling(b, env, w).figures())
				one = w.better(one, runWorkers(b, env, natsBin, w, 1).figures())
				two = w.better(two, runWorkers(b, env, natsBin, w, 2).figures())
			}
			b.ReportMetric(ceil.rowsPerSec, "recvlogical-rows/s")
			b.ReportMetric(one.rowsPerSec, "1-worker-rows/s")
			b.ReportMetric(two.rowsPerSec, "2-workers-rows/s")
			b.ReportMetric(one.rowsPerSec/ceil.rowsPerSec, "1-worker-ratio-to-recvlogical")
			b.ReportMetric(two.rowsPerSec/ceil.rowsPerSec, "2-workers-ratio-to-recvlogical")
			b.ReportMetric(two.rowsPerSec/one.rowsPerSec, "2-workers-ratio-to-1")
			b.Logf("%s with nats.partitions 2 on 3 nats-servers: one transform,sink worker %.0f rows/s (%.2f× pg_recvlogical), two workers %.0f rows/s (%.2f×; %.2f× one worker); "+
				"pg_recvlogical %.0f rows/s; CPU %.1f / %.1f µs/row in walsearch; commit → acknowledged p50/p99/max %.0f/%.0f/%.0f ms and %.0f/%.0f/%.0f ms",
				w.name, one.rowsPerSec, one.rowsPerSec/ceil.rowsPerSec, two.rowsPerSec, two.rowsPerSec/ceil.rowsPerSec, two.rowsPerSec/one.rowsPerSec,
				ceil.rowsPerSec, one.cpuUS, two.cpuUS, one.p50, one.p99, one.max, two.p50, two.p99, two.max)
		}
	})
	b.Run("failover", func(b *testing.B) {
		n := benchRows(b, "WALSEARCH_BENCH_FAILOVERS", 5)
		for range b.N {
			runFailover(b, env, natsBin, n)
		}
	})
}

// runSeparate streams w through capture, transform and sink processes on
// a three-node NATS cluster of its own, into the discard endpoint. It
// returns the run and the CPU time the nats-servers used meanwhile.
func runSeparate(b *testing.B, env e2eEnv, natsBin string, w e2eWorkload) (e2eRun, time.Duration) {
	return runProcesses(b, env, natsBin, w, []string{"capture", "transform", "sink"}, 1)
}

// runWorkers streams w through a capture process and workers
// `transform,sink` processes sharing nats.partitions 2, on a three-node
// NATS cluster of its own, into the discard endpoint. Every worker holds
// its share of the partitions before the workload starts.
func runWorkers(b *testing.B, env e2eEnv, natsBin string, w e2eWorkload, workers int) e2eRun {
	roles := []string{"capture"}
	for range workers {
		roles = append(roles, "transform,sink")
	}
	run, _ := runProcesses(b, env, natsBin, w, roles, 2)
	return run
}

// runProcesses streams w through one walsearch process per role (the
// first a capture) with nats.partitions partitions, on a three-node NATS
// cluster of its own, into the discard endpoint. With more than one
// partition the workload starts once every process that is not the
// capture holds its share. It returns the run and the CPU time the
// nats-servers used meanwhile.
func runProcesses(b *testing.B, env e2eEnv, natsBin string, w e2eWorkload, roles []string, partitions int) (e2eRun, time.Duration) {
	nc, db, slot := startScaleOut(b, env, natsBin)
	defer stopCluster(nc)
	arr := e2e.NewArrivals(w.rows)
	es := e2e.StartDiscardES(b, arr)
	var procs processGroup
	for _, role := range roles {
		cfg := e2e.WriteConfig(b, e2e.Config{DataDir: b.TempDir(), PostgresURL: db, Slot: slot, ElasticsearchURL: es.URL, APIListen: e2e.FreeAddr(b),
			Extra: fmt.Sprintf("role: %s\nnats:\n  url: %s\n  partitions: %d\n", role, nc.URL, partitions)})
		procs = append(procs, e2e.Start(b, exec.Command(env.bin, "run", "--config", cfg)))
	}
	walsender := waitSlotActive(b, db, slot, procs[0])
	if partitions > 1 {
		waitPartitionsShared(b, nc.URL, len(roles)-1)
	}
	alive := func() error {
		for _, p := range procs {
			select {
			case <-p.Exited():
				return fmt.Errorf("walsearch (pid %d) exited: %s", p.PID(), p.Output())
			default:
			}
		}
		return nil
	}
	natsCPU := func() time.Duration {
		var sum time.Duration
		for i := range nc.Size() {
			d, err := e2e.CPUTime(nc.PID(i))
			if err != nil {
				b.Fatal(err)
			}
			sum += d
		}
		return sum
	}
	nats0 := natsCPU()
	run := measure(b, db, w, procs, walsender, arr, alive, nil)
	natsUsed := natsCPU() - nats0
	for _, p := range procs {
		if err := p.Stop(); err != nil {
			b.Fatalf("walsearch (pid %d) did not stop cleanly: %v", p.PID(), err)
		}
	}
	dropSlot(b, db, slot)
	pgExec(b, db, `DROP PUBLICATION `+slot)
	return run, natsUsed
}

// waitPartitionsShared waits until both partition leases of the
// transform,sink workers are held, by as many processes as workers.
func waitPartitionsShared(b *testing.B, url string, workers int) {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		holders := map[string]bool{}
		if kv, err := js.KeyValue(ctx, bus.LeaseBucket); err == nil {
			for k := range 2 {
				if e, err := kv.Get(ctx, "transform_sink."+strconv.Itoa(k)); err == nil {
					var rec bus.LeaseRecord
					if json.Unmarshal(e.Value(), &rec) == nil {
						holders[rec.Holder] = true
					}
				}
			}
		}
		if len(holders) == min(workers, 2) {
			n := 0
			for h := range holders {
				if h != "" {
					n++
				}
			}
			if n == min(workers, 2) {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the partitions were not shared by %d workers within 2 minutes: %v", workers, holders)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// firstChanges records when the first change message under each lease
// token arrived on the cluster.
type firstChanges struct {
	mu    sync.Mutex
	first map[uint64]time.Time
}

func (f *firstChanges) add(m *nats.Msg) {
	now := time.Now()
	tok, _ := strconv.ParseUint(m.Header.Get(bus.LeaseHeader), 10, 64)
	f.mu.Lock()
	if _, ok := f.first[tok]; !ok {
		f.first[tok] = now
	}
	f.mu.Unlock()
}

// newer returns the first change under a token above old, if one arrived.
func (f *firstChanges) newer(old uint64) (time.Time, uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for tok, at := range f.first {
		if tok > old {
			return at, tok, true
		}
	}
	return time.Time{}, 0, false
}

// runFailover kills (SIGKILL) the capture leader n times, then stops it
// (SIGTERM) n times, and reports how long each handover took.
func runFailover(b *testing.B, env e2eEnv, natsBin string, n int) {
	const ttl = 5 * time.Second
	nc, db, slot := startScaleOut(b, env, natsBin)
	defer stopCluster(nc)
	es := e2e.StartDiscardES(b, e2e.NewArrivals(0))
	cfg := e2e.WriteConfig(b, e2e.Config{DataDir: b.TempDir(), PostgresURL: db, Slot: slot, ElasticsearchURL: es.URL, APIListen: e2e.FreeAddr(b),
		Extra: fmt.Sprintf("role: capture\nnats:\n  url: %s\ncapture:\n  lease_ttl: %s\n", nc.URL, ttl)})
	captures := map[int]*e2e.Process{}
	startCapture := func() {
		p := e2e.Start(b, exec.Command(env.bin, "run", "--config", cfg))
		captures[p.PID()] = p
	}
	startCapture()
	startCapture()

	conn, err := nats.Connect(nc.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	seen := &firstChanges{first: map[uint64]time.Time{}}
	if _, err := conn.Subscribe(bus.ChangePrefix+">", seen.add); err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(conn)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	lease := func() bus.LeaseRecord {
		kv, err := js.KeyValue(ctx, bus.LeaseBucket)
		if err != nil {
			return bus.LeaseRecord{} // not created yet
		}
		e, err := kv.Get(ctx, bus.CaptureLease)
		if err != nil {
			return bus.LeaseRecord{}
		}
		var rec bus.LeaseRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			b.Fatalf("lease: %v", err)
		}
		if rec.Token == 0 {
			rec.Token = e.Revision()
		}
		return rec
	}

	// The writer: a row every 10 ms, until the end.
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		wconn, err := pgx.Connect(ctx, db)
		if err != nil {
			done <- err
			return
		}
		defer wconn.Close(ctx)
		tick := time.NewTicker(10 * time.Millisecond) // pacing the writes
		defer tick.Stop()
		for id := 1; ; id++ {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
			if _, err := wconn.Exec(ctx, `INSERT INTO items VALUES ($1::bigint, 'item', 1, ARRAY['a'], now())`, id); err != nil {
				done <- err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			b.Fatalf("writer: %v", err)
		}
	}()

	// leading waits until the lease's holder published a change under it.
	leading := func(what string) (bus.LeaseRecord, *e2e.Process) {
		deadline := time.Now().Add(2 * time.Minute) // a first start builds the slot and snapshot
		for {
			rec := lease()
			if rec.Token != 0 {
				if _, _, ok := seen.newer(rec.Token - 1); ok {
					parts := strings.Split(rec.Holder, "/")
					if len(parts) == 3 {
						pid, _ := strconv.Atoi(parts[1])
						if p := captures[pid]; p != nil {
							return rec, p
						}
					}
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: no leader publishing within 2 minutes; lease %+v", what, rec)
			}
			time.Sleep(10 * time.Millisecond) // polling interval
		}
	}
	handover := func(kill bool) (toLease, toChange time.Duration) {
		rec, p := leading("before the handover")
		began := time.Now()
		if kill {
			p.Kill()
		} else if err := p.Stop(); err != nil {
			b.Fatalf("capture (pid %d) did not stop cleanly: %v", p.PID(), err)
		}
		ended := time.Now() // the process is gone
		delete(captures, p.PID())
		deadline := ended.Add(2*ttl + time.Minute)
		for {
			if toLease == 0 {
				if l := lease(); l.Token > rec.Token {
					toLease = time.Since(began)
				}
			}
			if at, _, ok := seen.newer(rec.Token); ok {
				toChange = at.Sub(began)
				if toLease == 0 || toLease > toChange {
					toLease = toChange // polled after the change arrived
				}
				break
			}
			select {
			case err := <-done:
				b.Fatalf("writer: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				b.Fatalf("no change from a new leader within %s of the leader's end", time.Since(ended).Round(time.Second))
			}
			time.Sleep(5 * time.Millisecond) // polling interval
		}
		startCapture() // the next standby
		return toLease, toChange
	}
	var killLease, killChange, termLease, termChange []time.Duration
	for range n {
		l, c := handover(true)
		killLease, killChange = append(killLease, l), append(killChange, c)
	}
	for range n {
		l, c := handover(false)
		termLease, termChange = append(termLease, l), append(termChange, c)
	}
	p50 := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[max(0, int(math.Ceil(0.5*float64(len(s))))-1)].Seconds()
	}
	maxS := func(d []time.Duration) float64 { return slices.Max(d).Seconds() }
	b.ReportMetric(p50(killChange), "kill-first-change-p50-s")
	b.ReportMetric(maxS(killChange), "kill-first-change-max-s")
	b.ReportMetric(p50(killLease), "kill-lease-p50-s")
	b.ReportMetric(p50(termChange), "term-first-change-p50-s")
	b.ReportMetric(maxS(termChange), "term-first-change-max-s")
	b.ReportMetric(p50(killChange)/ttl.Seconds(), "kill-p50-ratio-to-ttl")
	round := func(d []time.Duration) string {
		var s []string
		for _, x := range d {
			s = append(s, x.Round(10*time.Millisecond).String())
		}
		return strings.Join(s, " ")
	}
	b.Logf("capture failover, lease TTL %s: leader killed (SIGKILL) → first change from the new leader p50 %.2f s, max %.2f s (%s) = %.2f× the TTL; → lease taken p50 %.2f s (%s); "+
		"leader stopped (SIGTERM, lease released) → first change p50 %.2f s, max %.2f s (%s); killed p50 = %.1f× stopped p50",
		ttl, p50(killChange), maxS(killChange), round(killChange), p50(killChange)/ttl.Seconds(), p50(killLease), round(killLease),
		p50(termChange), maxS(termChange), round(termChange), p50(killChange)/p50(termChange))
}

// startScaleOut starts a three-node NATS cluster (stop it with
// stopCluster once measured, so that the next run has the machine to
// itself) and a database of its own holding the workload's table, with the
// slot name to use.
func startScaleOut(b *testing.B, env e2eEnv, natsBin string) (nc *bustest.Cluster, db, slot string) {
	nc = bustest.StartCluster(b, natsBin, 3)
	db = env.cluster.NewDatabase(b)
	pgExec(b, db, e2eTableDDL)
	return nc, db, slotName(b, db)
}

// stopCluster kills every server of nc.
func stopCluster(nc *bustest.Cluster) {
	for i := range nc.Size() {
		nc.Kill(i)
	}
}
