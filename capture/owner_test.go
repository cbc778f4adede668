package capture

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus/bustest"
)

// other is a second instance with the same slot and publication names but
// its own state (another data dir).
func (e *env) other(tables ...string) *env {
	o := &env{t: e.t, url: e.url, bus: bustest.Open(e.t), cfg: e.cfg}
	o.cfg.Tables = tables
	return o
}

// runToError runs a capture and waits for Run to return.
func (e *env) runToError() error {
	e.t.Helper()
	r := e.start(e.bus.Changes())
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		e.t.Fatal("Run did not refuse to start within 30s")
		return nil
	}
}

func (e *env) publishedTables() []string {
	e.t.Helper()
	conn := e.connect()
	defer conn.Close(context.Background())
	names, err := publicationTables(context.Background(), conn, e.cfg.Publication)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n.String()
	}
	return out
}

func (e *env) slotExists() bool {
	e.t.Helper()
	conn := e.connect()
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, e.cfg.Slot).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n == 1
}

func TestSecondInstanceDoesNotRewriteThePublication(t *testing.T) {
	e := newEnv(t)
	e.cfg.Tables = []string{"orders", "customers"}
	e.exec(`CREATE TABLE orders (id int PRIMARY KEY, v int)`, `CREATE TABLE customers (id int PRIMARY KEY, v int)`,
		`INSERT INTO orders VALUES (1, 1)`)
	a := e.start(e.bus.Changes())
	a.waitStreaming(t)
	before := e.publishedTables()

	err := e.other("customers").runToError()
	if !errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), "postgres.publication") {
		t.Fatalf("second instance Run = %v, want ErrNotOwned saying to give it its own postgres.publication", err)
	}
	if !isSetupError(err) {
		t.Fatalf("refusal %v is not a SetupError: a supervisor would retry it", err)
	}
	if after := e.publishedTables(); !sameStrings(before, after) {
		t.Fatalf("publication holds %v after the second instance, was %v", after, before)
	}
	e.exec(`UPDATE orders SET v = 2 WHERE id = 1`)
	changes := e.readChanges(2, 30*time.Second)
	if len(changes) != 2 || changes[1].Table != "orders" || changes[1].Op != "update" {
		t.Fatalf("first instance got %+v, want the snapshot row and the update of orders", changes)
	}
	e.stopped()
}

func TestSecondInstanceDoesNotDropASlotItDidNotCreate(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v int)`, `INSERT INTO t VALUES (1, 1)`)
	c := e.start(e.bus.Changes())
	c.waitStreaming(t)
	if got := e.readChanges(1, 30*time.Second); len(got) != 1 {
		t.Fatalf("snapshot gave %d rows, want 1", len(got))
	}
	if err := c.stop(t); err != nil {
		t.Fatal(err)
	}
	confirmed := e.confirmedFlush()

	// The first instance is stopped: its slot is inactive, as in the
	// case of a second instance that took it for a leftover.
	err := e.other().runToError()
	if !errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), "teardown") {
		t.Fatalf("second instance Run = %v, want ErrNotOwned naming teardown", err)
	}
	if !e.slotExists() || e.confirmedFlush() != confirmed {
		t.Fatalf("slot dropped or moved by the second instance (confirmed %s, was %s)", e.confirmedFlush(), confirmed)
	}
	e.exec(`UPDATE t SET v = 2 WHERE id = 1`)
	e.start(e.bus.Changes()).waitStreaming(t)
	changes := e.readChanges(1, 30*time.Second)
	if len(changes) != 1 || changes[0].Op != "update" {
		t.Fatalf("first instance got %+v after restarting, want the update", changes)
	}
	e.stopped()
}

// An instance from before owners were recorded (slot, publication and data
// dir, no records) keeps running: its state proves the slot is its own.
func TestInstanceWithoutOwnerRecordsAdoptsItsSlot(t *testing.T) {
	e := newEnv(t)
	rec := &logRecorder{}
	e.cfg.Logger = slog.New(rec)
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v int)`, `INSERT INTO t VALUES (1, 1)`)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	if got := e.readChanges(1, 30*time.Second); len(got) != 1 {
		t.Fatalf("snapshot gave %d rows, want 1", len(got))
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// Back to what an older walsearch left.
	e.exec(`DROP TABLE walsearch_owners`)
	if err := e.bus.State().Put(context.Background(), ownerKey, nil); err != nil {
		t.Fatal(err)
	}

	// Another data dir proves nothing: refused.
	if err := e.other().runToError(); !errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), "no walsearch instance recorded owning it") {
		t.Fatalf("instance with another data dir: Run = %v, want ErrNotOwned", err)
	}
	e.exec(`UPDATE t SET v = 2 WHERE id = 1`)
	e.start(e.bus.Changes()).waitStreaming(t)
	// The records written on adoption, published FOR ALL TABLES, sit
	// between the two updates in the log and must not reach the bus.
	e.exec(`UPDATE t SET v = 3 WHERE id = 1`)
	if got := e.readChanges(2, 30*time.Second); len(got) != 2 || got[0].Table != "t" || got[1].Table != "t" || got[1].Op != "update" {
		t.Fatalf("after adoption got %+v, want the two updates of t", got)
	}
	if rec.count("adopted") != 1 {
		t.Fatalf("adoption not logged: %v", rec.warns)
	}
	id, err := localOwner(context.Background(), e.bus.State())
	if err != nil || id == "" {
		t.Fatalf("owner id not stored: %q, %v", id, err)
	}
	conn := e.connect()
	defer conn.Close(context.Background())
	recs, err := readOwners(context.Background(), conn, e.cfg.Slot, e.cfg.Publication)
	if err != nil || recs[kindSlot].owner != id || recs[kindPublication].owner != id {
		t.Fatalf("records %+v, %v; want both under %s", recs, err, id)
	}
	e.stopped()
}

func TestLostSlotIsAnErrorNotARebuild(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v int)`, `INSERT INTO t VALUES (1, 1)`)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	e.exec(`SELECT pg_drop_replication_slot('` + e.cfg.Slot + `')`)
	err := e.runToError()
	if !errors.Is(err, ErrSlotLost) || !strings.Contains(err.Error(), "fresh snapshot") || !isSetupError(err) {
		t.Fatalf("Run = %v, want a fatal ErrSlotLost naming the recovery", err)
	}
	if e.slotExists() {
		t.Fatal("a new slot was created in place of the lost one")
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// A data dir whose snapshot is younger than the slot's position did not
// come from that slot: the two disagree, and capture says so.
func TestDataDirAndSlotThatDisagreeAreRefused(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v int)`)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	confirmed := e.confirmedFlush()
	c, err := New(e.cfg, e.bus.Changes(), e.bus.State())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.putJSON(context.Background(), c.snapshotStartKey(), snapshotStart{LSN: confirmed + 1<<30}); err != nil {
		t.Fatal(err)
	}
	err = e.runToError()
	if !errors.Is(err, ErrSlotLost) || !strings.Contains(err.Error(), "do not belong together") || !isSetupError(err) {
		t.Fatalf("Run = %v, want a fatal ErrSlotLost saying the data dir and slot disagree", err)
	}
	if e.confirmedFlush() != confirmed {
		t.Fatal("the slot moved")
	}
}

// Instances that start at once with the same names: one wins both the slot
// and the publication, the others are refused and leave no record.
func TestInstancesStartingAtOnceLeaveOneOwner(t *testing.T) {
	e := newEnv(t)
	// Created before, so that the claims race on records, not on the DDL.
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v int)`, ownersDDL)
	envs := []*env{e, e.other(), e.other(), e.other()}
	runs := make([]*running, len(envs))
	for i, x := range envs {
		runs[i] = x.start(x.bus.Changes())
	}
	var winner *env
	for i, r := range runs {
		waitFor(t, "each instance to stream or be refused", func() bool {
			select {
			case <-r.done:
				return true
			default:
				return r.c.Status().Phase == PhaseStreaming
			}
		})
		select {
		case <-r.done:
			if !errors.Is(r.err, ErrNotOwned) {
				t.Fatalf("instance %d: Run = %v, want ErrNotOwned", i, r.err)
			}
		default:
			if winner != nil {
				t.Fatal("two instances stream from one slot")
			}
			winner = envs[i]
		}
	}
	if winner == nil {
		t.Fatal("no instance won")
	}
	id, err := localOwner(context.Background(), winner.bus.State())
	if err != nil {
		t.Fatal(err)
	}
	conn := e.connect()
	defer conn.Close(context.Background())
	var owners []string
	rows, err := conn.Query(context.Background(), `SELECT DISTINCT owner FROM walsearch_owners`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			t.Fatal(err)
		}
		owners = append(owners, o)
	}
	if len(owners) != 1 || owners[0] != id {
		t.Fatalf("owners %v, want only the winner %s", owners, id)
	}
}
