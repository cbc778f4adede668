package main

import (
	"context"
	"encoding/json"

	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/e2e"
	"github.com/walsearch/walsearch/internal/faultes"
	"github.com/walsearch/walsearch/internal/pgtest"
)

// walsearchCommand runs this test binary as the walsearch binary (see
// TestMain).
func walsearchCommand(args ...string) *exec.Cmd {
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(raw))
	return cmd
}

// itemsWriter writes to the items table of the sink tests, whose ids run
// to next.
func itemsWriter(conn *pgx.Conn, rng *rand.Rand, next int64) *writer {
	return &writer{conn: conn, rng: rng, next: next,
		insert: `INSERT INTO items (id, name, n) VALUES ($1::bigint, 'item ' || $1::bigint, $1::bigint % 1000)`,
		update: `UPDATE items SET v = v + 1, name = 'changed ' || v, n = NULL WHERE id = $1`,
		del:    `DELETE FROM items WHERE id = $1`}
}

// TestSinkKilledDuringBulkFlush kills walsearch (SIGKILL) at the moment a
// bulk request is in flight — the engine's fault injector holds it, received
// and unanswered — while rows keep changing, restarts it, and checks that
// the index equals the table, every document compared with its row. Twice:
// once with the request never reaching the engine (a sink that acknowledged
// before the engine confirmed would lose its documents), once with the
// engine having applied it but the answer lost (the replay must change
// nothing it should not).
func TestSinkKilledDuringBulkFlush(t *testing.T) {
	c := pgtest.Require(t, cluster)
	t.Parallel()
	ctx := context.Background()
	dbURL := c.NewDatabase(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const initial = 2000
	if _, err := conn.Exec(ctx, `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int, v int NOT NULL DEFAULT 1);
INSERT INTO items (id, name, n) SELECT g, 'item ' || g, g % 1000 FROM generate_series(1, `+strconv.Itoa(initial)+`) g`); err != nil {
		t.Fatal(err)
	}
	engine := e2e.StartEngine(t)
	addr := e2e.FreeAddr(t)
	cfg := e2e.WriteConfig(t, e2e.Config{DataDir: t.TempDir(), PostgresURL: dbURL, Slot: "sinkkill",
		ElasticsearchURL: engine.URL, APIListen: addr})
	p := e2e.Start(t, walsearchCommand("run", "--config", cfg))
	engine.WaitEqual(t, conn, "items", "id", "items", convergeWithin)

	wconn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer wconn.Close(ctx)
	w := itemsWriter(wconn, rand.New(rand.NewPCG(5, 6)), initial)
	for _, round := range []struct {
		name  string
		fault faultes.Fault
	}{
		{"request held before the engine saw it", faultes.Fault{Hold: true, Count: 1}},
		{"answer held after the engine applied it", faultes.Fault{HoldAnswer: true, Count: 1}},
	} {
		engine.Inject(round.fault)
		// 500 new rows in one transaction: the held request carries some
		// of them, and most are not touched again, so a lost write stays
		// visible. Then random changes, bounded by count, go on while the
		// process is killed and restarted.
		from := w.next + 1
		w.next += 500
		if _, err := wconn.Exec(ctx, `INSERT INTO items (id, name, n) SELECT g, 'batch ' || g, g % 1000 FROM generate_series($1::bigint, $2::bigint) g`, from, w.next); err != nil {
			t.Fatal(err)
		}
		var insertEnd string
		if err := wconn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&insertEnd); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			for range 1000 {
				if err := w.step(ctx); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		deadline := time.Now().Add(convergeWithin)
		for engine.Held() == 0 {
			select {
			case <-p.Exited():
				t.Fatalf("%s: walsearch exited before sending a bulk request", round.name)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no bulk request reached the engine within %s", round.name, convergeWithin)
			}
			time.Sleep(5 * time.Millisecond) // polling interval
		}
		// Kill only once the changes of the 500 rows are past PostgreSQL:
		// the slot confirmed past their commit. Otherwise the restart would
		// replay them from PostgreSQL (the slot is confirmed every 10s) and
		// hide a stage that acknowledged them too early: from here on only
		// the bus holds them until the engine confirms.
		for {
			var confirmed bool
			if err := conn.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn >= $1::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = 'sinkkill'`,
				insertEnd).Scan(&confirmed); err != nil {
				t.Fatal(err)
			}
			if confirmed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the slot was not confirmed past the held rows within %s", round.name, convergeWithin)
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
		if engine.Held() != 1 {
			t.Fatalf("%s: the held request ended before the kill", round.name)
		}
		p.Kill()
		// The held request ends with its connection, unanswered.
		for engine.Held() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the held request outlived the killed process", round.name)
			}
			time.Sleep(5 * time.Millisecond) // polling interval
		}
		p = e2e.Start(t, walsearchCommand("run", "--config", cfg))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		engine.WaitEqual(t, conn, "items", "id", "items", convergeWithin)
		t.Logf("%s: killed with a bulk request in flight; after the restart the index equals the table", round.name)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("clean shutdown exited with %v", err)
	}
}

// TestSinkOutageDrivenByPostgres makes the search engine unreachable while
// rows change in PostgreSQL: every change must wait on the bus (nothing
// acknowledged), on disk — the sink holds at most one fetched batch — and
// when the engine returns the backlog drains into an index equal to the
// table. It reports walsearch's peak RSS (VmHWM) while the engine was down.
// WALSEARCH_TEST_OUTAGE_CHANGES sets the size (default 20,000; the 200,000
// run is BenchmarkSinkOutage in ./bench).
func TestSinkOutageDrivenByPostgres(t *testing.T) {
	c := pgtest.Require(t, cluster)
	t.Parallel()
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("WALSEARCH_TEST_OUTAGE_CHANGES")); err == nil && v > 0 {
		n = v
	}
	res := e2e.RunOutage(t, c, e2e.Outage{Changes: n, PayloadBytes: 1024, Command: walsearchCommand, Within: convergeWithin})
	t.Logf("outage of %d row changes: %s", n, res)
	// A guard against gross growth; what keeps the backlog out of memory
	// is checked exactly by RunOutage (documents fetched by the sink).
	if res.PeakRSSDown > res.RSSBefore+outageRSSGrowth {
		t.Fatalf("walsearch's peak RSS grew from %d MiB to %d MiB during the outage, more than %d MiB",
			res.RSSBefore>>20, res.PeakRSSDown>>20, outageRSSGrowth>>20)
	}
}

// outageRSSGrowth bounds how much walsearch's resident memory (race
// detector included) may grow while the engine is down.
const outageRSSGrowth = 512 << 20
