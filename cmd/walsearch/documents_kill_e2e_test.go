package main

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// countMatching is how many documents of index query_fields match.
func countMatching(r running, index, queryFields string) (int64, error) {
	var sr struct {
		Meta struct {
			Total int64 `json:"total_records"`
		} `json:"meta"`
	}
	err := r.apiJSON("POST", "/search", fmt.Sprintf(`{"index":%q,"page_size":1,"query_fields":%s}`, index, queryFields), &sr)
	return sr.Meta.Total, err
}

// renameWave renames customers ids in one transaction and returns the
// query_fields filter that matches their orders' rebuilt documents, and the
// position of the WAL after the commit.
func renameWave(t *testing.T, conn *pgx.Conn, wave int, ids []int) (filter string, lsn string) {
	t.Helper()
	ctx := context.Background()
	var names []string
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	for _, id := range ids {
		name := fmt.Sprintf("renamed %d in wave %d", id, wave)
		names = append(names, name)
		if _, err := tx.Exec(ctx, `UPDATE customers SET name = $1 WHERE id = $2`, name, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	quoted, _ := json.Marshal(names)
	return `{"customer.name":` + string(quoted) + `}`, lsn
}

// TestDocumentsSurviveKillDuringFanOut renames customers, each with 1,500
// orders, three in a transaction, and kills walsearch (SIGKILL) while the
// orders' documents are being rebuilt. Each customer is renamed once, so a
// rebuild lost by a kill would leave its orders stale for good: no later
// change rebuilds them. After the restarts every order's document equals
// a fresh query of its definition.
//
//   - The first kill lands once a third of a wave's documents are
//     searchable (the index refreshes every 20ms): the rest are still to
//     be read, written or confirmed.
//   - The second kill lands while a wave's rebuild waits for a lock on
//     order_items, after the slot was confirmed past the wave: PostgreSQL
//     will not send the renames again, so only the bus's redelivery of
//     the round, unacknowledged until its documents are stored, can
//     rebuild them.
func TestDocumentsSurviveKillDuringFanOut(t *testing.T) {
	t.Parallel()
	const customers, perCustomer = 6, 1500
	const slot = "docskill"
	dbURL, conn := testDB(t, shopSchema+fmt.Sprintf(`
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, %[1]d) g;
INSERT INTO products VALUES (1, 'pen');
INSERT INTO orders SELECT g, 1 + g %% %[1]d, 'new' FROM generate_series(1, %[2]d) g;
INSERT INTO order_items SELECT g, g, 1, 1, 1 FROM generate_series(1, %[2]d, 97) g;
ANALYZE;`, customers, customers*perCustomer))
	r := runDocuments(t, dbURL, slot, "indices:\n  orders:\n    settings:\n      index:\n        refresh_interval: 20ms\n")
	waitDocuments(t, r, conn, "orders", ordersOracle, "snapshot")
	ctx := context.Background()

	// Wave 0: killed part way through its documents.
	filter, _ := renameWave(t, conn, 0, []int{1, 2, 3})
	total := int64(3 * perCustomer)
	deadline := time.Now().Add(convergeWithin)
	var seen int64
	for {
		n, err := countMatching(r, "orders", filter)
		if err == nil && n >= total {
			t.Fatalf("wave 0: all %d documents were rebuilt before the kill; the kill must land during the rebuilds", total)
		}
		if err == nil && n >= total/3 {
			seen = n
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wave 0: a third of the renamed customers' orders did not reach the index within %s (last error %v)", convergeWithin, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	_ = r.p.stop(syscall.SIGKILL)
	t.Logf("wave 0: killed with %d of %d documents rebuilt and searchable", seen, total)
	r = restartPipeline(t, r)
	waitDocuments(t, r, conn, "orders", ordersOracle, "after a kill part way through a fan-out")

	// Wave 1: its rebuild waits on a lock while the slot moves past it.
	locker, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(context.Background())
	lock, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `LOCK TABLE order_items IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	filter, lsn := renameWave(t, conn, 1, []int{4, 5, 6})
	deadline = time.Now().Add(convergeWithin)
	for {
		var confirmed, waiting bool
		err := conn.QueryRow(ctx, `SELECT s.confirmed_flush_lsn >= $2::pg_lsn,
  EXISTS (SELECT FROM pg_locks l WHERE NOT l.granted AND l.relation = 'order_items'::regclass)
  FROM pg_replication_slots s WHERE s.slot_name = $1`, slot, lsn).Scan(&confirmed, &waiting)
		if err != nil {
			t.Fatal(err)
		}
		if confirmed && waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wave 1: within %s, the slot was confirmed past the wave (%v) and a rebuild waited for the lock (%v): want both", convergeWithin, confirmed, waiting)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if n, err := countMatching(r, "orders", filter); err != nil || n != 0 {
		t.Fatalf("wave 1: %d documents rebuilt (%v) while order_items was locked", n, err)
	}
	_ = r.p.stop(syscall.SIGKILL)
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("wave 1: killed while its rebuild waited, the slot confirmed past %s", lsn)
	r = restartPipeline(t, r)
	waitDocuments(t, r, conn, "orders", ordersOracle, "after a kill while a fan-out waited, past the slot")
	if err := r.p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("final shutdown exited with %v", err)
	}
}
