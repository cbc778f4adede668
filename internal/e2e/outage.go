package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/faultes"
	"github.com/walsearch/walsearch/internal/pgtest"
	"github.com/walsearch/walsearch/transform"
)

// Outage describes the scenario RunOutage plays: walsearch indexes a table
// into an engine that then becomes unreachable (every connection dropped)
// while Changes rows change in PostgreSQL; then the engine returns.
type Outage struct {
	// Changes is how many row changes are made during the outage: half
	// inserts, 30% updates, 20% deletes (some of updated rows), in
	// transactions of at most 1,000 rows. A fifth as many rows exist
	// before it.
	Changes int
	// PayloadBytes is the size of each row's text payload column.
	PayloadBytes int
	// Command makes the walsearch command for these arguments.
	Command func(args ...string) *exec.Cmd
	// Within bounds each wait: the first indexing, the backlog building up,
	// the drain.
	Within time.Duration
	// WhileDown, if set, is called when the whole backlog is on the bus,
	// before the engine returns (to look at the process then).
	WhileDown func(p *Process)
}

// OutageResult is what RunOutage measured.
type OutageResult struct {
	// Backlog is the row changes waiting on the bus when the engine came
	// back (every change made during the outage); Delivered how many bus
	// messages the stages had fetched (held in memory, waiting for the
	// engine), the rest being on disk.
	Backlog, Delivered uint64
	// RSSBefore is walsearch's resident memory when the outage began;
	// PeakRSSDown its peak while the engine was down; PeakRSS its peak
	// from the outage to the end of the drain.
	RSSBefore, PeakRSSDown, PeakRSS uint64
	// Written is how long the row changes took in PostgreSQL; Queued until
	// every change was stored on the bus.
	Written, Queued time.Duration
	// Resumed is the time from the engine's return to the first documents
	// confirmed (the sink's retry backoff); Drain from then until the
	// backlog was empty.
	Resumed, Drain time.Duration
}

// Durable consumers of walsearch's streams (pipeline.TransformConsumer and
// pipeline.SinkConsumer).
const (
	TransformConsumer = "transform"
	SinkConsumer      = "sink"
)

// MaxFetched bounds the bus messages walsearch's stages may hold fetched at
// once whatever the backlog: the sink's largest fetch (10,000 documents)
// and three transform rounds (one mapping, one waiting, one being written)
// of at most transform.DefaultBatchSize messages each.
const MaxFetched = 10000 + 3*transform.DefaultBatchSize

// consumerInfo reads a consumer's state from the NATS server at url.
func consumerInfo(ctx context.Context, url, stream, consumer string) (*jetstream.ConsumerInfo, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream at %s: %w", url, err)
	}
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s of %s: %w", consumer, stream, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer %s of %s: %w", consumer, stream, err)
	}
	return info, nil
}

// DrainRate is row changes per second applied from the backlog.
func (r OutageResult) DrainRate() float64 { return float64(r.Backlog) / r.Drain.Seconds() }

// RunOutage plays o against a fresh database of cluster and fails the test
// unless every change was still on the bus when the engine returned, the
// backlog drained, and the index then equals the table row for row.
func RunOutage(tb testing.TB, cluster *pgtest.Cluster, o Outage) OutageResult {
	tb.Helper()
	ctx := context.Background()
	dbURL := cluster.NewDatabase(tb)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	initial := o.Changes / 5
	pad := max(1, o.PayloadBytes/32)
	exec := func(sql string, args ...any) {
		tb.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int, payload text, v int NOT NULL DEFAULT 1)`)
	insert := func(from, to int) {
		exec(`INSERT INTO items (id, name, n, payload) SELECT g, 'item ' || g, g % 1000, repeat(md5(g::text), $3) FROM generate_series($1::bigint, $2::bigint) g`, from, to, pad)
	}
	insert(1, initial)

	engine := StartEngine(tb)
	addr, natsAddr := FreeAddr(tb), FreeAddr(tb)
	base := "http://" + addr
	// Slots are named cluster-wide: name it after the database, which is
	// unique in the cluster.
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	slot := strings.TrimPrefix(u.Path, "/")
	cfg := WriteConfig(tb, Config{DataDir: tb.TempDir(), PostgresURL: dbURL, Slot: slot, ElasticsearchURL: engine.URL, APIListen: addr,
		Extra: "nats:\n  listen: " + natsAddr + "\n"})
	p := Start(tb, o.Command("run", "--config", cfg))
	engine.WaitEqual(tb, conn, "items", "id", "items", o.Within)
	st := WaitStatus(tb, p, base, "the initial rows confirmed", o.Within, func(st Status) bool {
		return st.Backlog["sink"] == 0 && st.Backlog["transform"] == 0
	})
	indexedBefore, deletedBefore := st.Sink.Indexed, st.Sink.Deleted

	var res OutageResult
	if err := p.ResetPeakRSS(); err != nil {
		tb.Fatal(err)
	}
	if res.RSSBefore, err = p.RSS(); err != nil {
		tb.Fatal(err)
	}
	engine.Inject(faultes.Fault{Drop: true, All: true})
	began := time.Now()
	chunks := func(from, to int, f func(a, b int)) {
		for a := from; a <= to; a += 1000 {
			f(a, min(to, a+999))
		}
	}
	inserts, updates, deletes := o.Changes/2, o.Changes*3/10, o.Changes-o.Changes/2-o.Changes*3/10
	chunks(initial+1, initial+inserts, insert)
	chunks(1, updates, func(a, b int) {
		exec(`UPDATE items SET v = v + 1, name = 'updated ' || id, n = NULL, payload = repeat(md5((id + v)::text), $3) WHERE id BETWEEN $1 AND $2`, a, b, pad)
	})
	// Deleted rows include updated ones: their documents' last word is the
	// delete.
	chunks(updates/3+1, updates/3+deletes, func(a, b int) { exec(`DELETE FROM items WHERE id BETWEEN $1 AND $2`, a, b) })
	res.Written = time.Since(began)
	var walText string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&walText); err != nil {
		tb.Fatal(err)
	}
	target, err := bus.ParseLSN(walText)
	if err != nil {
		tb.Fatal(err)
	}
	// Every change is stored on the bus once capture confirmed past the
	// last commit.
	st = WaitStatus(tb, p, base, "every change on the bus", o.Within, func(st Status) bool {
		return st.Capture.ConfirmedLSN >= target
	})
	res.Queued = time.Since(began)
	res.Backlog = uint64(o.Changes)
	if st.Sink.Indexed != indexedBefore || st.Sink.Deleted != deletedBefore {
		tb.Fatalf("during the outage %d documents were indexed and %d deleted (was %d and %d): something was acknowledged without the engine",
			st.Sink.Indexed, st.Sink.Deleted, indexedBefore, deletedBefore)
	}
	if st.Sink.LastError == "" || st.Sink.Retries == 0 {
		tb.Fatalf("the sink reports no failure during the outage: %+v", st.Sink)
	}
	// The backlog waits on disk: the stages hold a few fetched batches, not
	// the backlog.
	for _, c := range []struct{ stream, consumer string }{{bus.ChangesStream, TransformConsumer}, {bus.DocsStream, SinkConsumer}} {
		info, err := consumerInfo(ctx, "nats://"+natsAddr, c.stream, c.consumer)
		if err != nil {
			tb.Fatal(err)
		}
		res.Delivered += uint64(info.NumAckPending)
	}
	if res.Delivered > MaxFetched {
		tb.Fatalf("during the outage the stages hold %d bus messages fetched: want at most %d, the rest on disk", res.Delivered, MaxFetched)
	}
	if res.PeakRSSDown, err = p.PeakRSS(); err != nil {
		tb.Fatal(err)
	}
	if o.WhileDown != nil {
		o.WhileDown(p)
	}

	engine.Clear()
	back := time.Now()
	WaitStatus(tb, p, base, "the first documents after the outage", o.Within, func(st Status) bool { return st.Sink.Indexed > indexedBefore })
	resumed := time.Now()
	res.Resumed = resumed.Sub(back)
	st = WaitStatus(tb, p, base, "the backlog drained", o.Within, func(st Status) bool {
		return st.Backlog[TransformConsumer] == 0 && st.Backlog[SinkConsumer] == 0
	})
	res.Drain = time.Since(resumed)
	if st.DLQCount != 0 {
		tb.Fatalf("%d documents dead-lettered by an outage", st.DLQCount)
	}
	if res.PeakRSS, err = p.PeakRSS(); err != nil {
		tb.Fatal(err)
	}
	engine.WaitEqual(tb, conn, "items", "id", "items", o.Within)
	if err := p.Stop(); err != nil {
		tb.Fatalf("walsearch did not stop cleanly: %v", err)
	}
	return res
}

// String formats r for a test log.
func (r OutageResult) String() string {
	return fmt.Sprintf("backlog %d row changes, %d bus messages of them fetched (written in %s, on the bus after %s); walsearch RSS %d MiB before, peak %d MiB while down, %d MiB through the drain; first documents %s after the engine returned, drained in %s (%.0f changes/s)",
		r.Backlog, r.Delivered, r.Written.Round(time.Millisecond), r.Queued.Round(time.Millisecond), r.RSSBefore>>20, r.PeakRSSDown>>20, r.PeakRSS>>20,
		r.Resumed.Round(time.Millisecond), r.Drain.Round(time.Millisecond), r.DrainRate())
}
