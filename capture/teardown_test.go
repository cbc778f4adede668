package capture

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func (e *env) teardown(state StateStore, owner string, apply bool) (TeardownReport, error) {
	return Teardown(context.Background(), TeardownOptions{URL: e.url, Slot: e.cfg.Slot, Publication: e.cfg.Publication,
		State: state, Owner: owner, Apply: apply})
}

func (e *env) helperTables() int {
	e.t.Helper()
	conn := e.connect()
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('walsearch_watermarks', 'walsearch_owners')`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestTeardownRemovesOnlyWhatIsItsOwn(t *testing.T) {
	a := newEnv(t)
	a.exec(`CREATE TABLE t (id int PRIMARY KEY, v int)`)
	b := a.other()
	b.cfg.Slot, b.cfg.Publication = a.cfg.Slot+"_b", "pub_"+a.cfg.Slot
	for _, e := range []*env{a, b} {
		r := e.start(e.bus.Changes())
		r.waitStreaming(t)
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
	}

	// A's state owns nothing of B's; B's owner id, given, does.
	if _, err := b.teardown(a.bus.State(), "", true); !errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), "--owner") {
		t.Fatalf("teardown of B's objects with A's state = %v, want ErrNotOwned naming --owner", err)
	}
	if !b.slotExists() {
		t.Fatal("a refused teardown dropped the slot")
	}
	rep, err := a.teardown(a.bus.State(), "", false)
	if err != nil || !slices.Contains(rep.Removed, "replication slot "+a.cfg.Slot) || !a.slotExists() {
		t.Fatalf("dry run = %+v, %v (slot exists %v); want the slot listed and kept", rep, err, a.slotExists())
	}
	rep, err = a.teardown(a.bus.State(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	if a.slotExists() || !b.slotExists() || a.helperTables() != 2 {
		t.Fatalf("after A's teardown: A's slot %v, B's slot %v, helper tables %d; want false, true, 2", a.slotExists(), b.slotExists(), a.helperTables())
	}
	if len(rep.Kept) != 1 || !strings.Contains(rep.Kept[0], b.cfg.Slot) {
		t.Fatalf("report %+v does not say B still uses the helper tables", rep)
	}

	// B runs: its slot is in use.
	r := b.start(b.bus.Changes())
	r.waitStreaming(t)
	if _, err := b.teardown(b.bus.State(), "", true); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("teardown of an active slot = %v, want a refusal", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	id, err := localOwner(context.Background(), b.bus.State())
	if err != nil {
		t.Fatal(err)
	}
	rep, err = b.teardown(nil, id, true)
	if err != nil {
		t.Fatal(err)
	}
	if b.slotExists() || b.helperTables() != 0 || !slices.Contains(rep.Removed, "table public.walsearch_owners") {
		t.Fatalf("after B's teardown by owner id: slot %v, helper tables %d, report %+v", b.slotExists(), b.helperTables(), rep)
	}
	if rep, err := b.teardown(b.bus.State(), "", true); err != nil || len(rep.Removed) != 0 {
		t.Fatalf("second teardown = %+v, %v; want nothing to remove", rep, err)
	}
}
