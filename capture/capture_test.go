package capture

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
)

func col(name string, v any) bus.Column { return bus.Column{Name: name, Value: v} }

func TestSnapshotThenStream(t *testing.T) {
	e := newEnv(t)
	e.exec(
		`CREATE TABLE items (id int PRIMARY KEY, name text, price numeric)`,
		`INSERT INTO items VALUES (1, 'apple', 1.50), (2, 'pear', 2.25)`,
		`CREATE TABLE events (region text, seq bigint, note text, PRIMARY KEY (seq, region)) PARTITION BY LIST (region)`,
		`CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu')`,
		`INSERT INTO events VALUES ('eu', 7, 'old')`,
	)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	snap := r.c.Status().SnapshotLSN
	if snap == 0 {
		t.Fatal("no snapshot LSN in Status")
	}
	reads := e.read(3)
	for _, c := range reads {
		if c.Op != bus.OpRead || c.LSN != snap || !c.CommitTime.IsZero() {
			t.Fatalf("snapshot change %+v, want a read at %s", c, snap)
		}
	}
	byTable := map[string][]bus.Change{}
	for _, c := range reads {
		byTable[c.Table] = append(byTable[c.Table], c)
	}
	if ev := byTable["events"]; len(ev) != 1 || ev[0].Schema != "public" ||
		!reflect.DeepEqual(ev[0].Key, []bus.Column{col("seq", json.Number("7")), col("region", "eu")}) {
		t.Fatalf("partition row must appear under its root keyed in key order: %s", dump(ev))
	}
	if it := byTable["items"]; len(it) != 2 || it[0].Pos != 0 || it[1].Pos != 1 {
		t.Fatalf("items reads: %s", dump(it))
	}

	e.exec(
		`BEGIN`,
		`INSERT INTO items VALUES (3, 'plum', 0.1)`,
		`UPDATE items SET price = 3 WHERE id = 1`,
		`DELETE FROM items WHERE id = 2`,
		`COMMIT`,
		`UPDATE items SET id = 30 WHERE id = 3`,
		`INSERT INTO events VALUES ('eu', 8, 'new')`,
		`TRUNCATE items`,
	)
	got := e.read(7)
	wantOps := []struct {
		op    bus.Op
		table string
		key   []bus.Column
		pos   uint64
	}{
		{bus.OpInsert, "items", []bus.Column{col("id", json.Number("3"))}, 0},
		{bus.OpUpdate, "items", []bus.Column{col("id", json.Number("1"))}, 1},
		{bus.OpDelete, "items", []bus.Column{col("id", json.Number("2"))}, 2},
		{bus.OpDelete, "items", []bus.Column{col("id", json.Number("3"))}, 0},
		{bus.OpInsert, "items", []bus.Column{col("id", json.Number("30"))}, 1},
		{bus.OpInsert, "events", []bus.Column{col("seq", json.Number("8")), col("region", "eu")}, 0},
		{bus.OpTruncate, "items", nil, 0},
	}
	for i, w := range wantOps {
		c := got[i]
		if c.Op != w.op || c.Table != w.table || !reflect.DeepEqual(c.Key, w.key) || c.Pos != w.pos {
			t.Fatalf("change %d = %s\nwant %s %s key=%v pos=%d", i, dump(got[i:i+1]), w.op, w.table, w.key, w.pos)
		}
		if c.LSN <= snap || c.CommitTime.IsZero() {
			t.Fatalf("change %d: LSN %s must follow the snapshot's %s and carry a commit time", i, c.LSN, snap)
		}
	}
	// One transaction, one LSN; later transactions, higher LSNs.
	if got[0].LSN != got[1].LSN || got[1].LSN != got[2].LSN || !(got[2].LSN < got[3].LSN && got[3].LSN == got[4].LSN &&
		got[4].LSN < got[5].LSN && got[5].LSN < got[6].LSN) {
		t.Fatalf("LSNs out of order: %s", dump(got))
	}
	if row := got[1].Row; row["price"] != json.Number("3") || row["name"] != "apple" {
		t.Fatalf("update row = %v", row)
	}
	if got[2].Row != nil || got[3].Row != nil || got[6].Row != nil || got[6].Key != nil {
		t.Fatalf("deletes and truncates carry no row: %s", dump(got))
	}
	if row := got[4].Row; row["id"] != json.Number("30") || row["name"] != "plum" {
		t.Fatalf("insert after key change = %v", row)
	}

	// Schema change while streaming: the new column arrives without a restart.
	e.exec(`ALTER TABLE items ADD COLUMN tags text[]`, `INSERT INTO items VALUES (4, 'fig', 1, '{a,b}')`)
	got = e.read(1)
	if tags := got[0].Row["tags"]; !reflect.DeepEqual(tags, []any{"a", "b"}) {
		t.Fatalf("new column after ALTER TABLE = %#v", tags)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}

func TestTablesWithoutKey(t *testing.T) {
	e := newEnv(t)
	e.exec(
		`CREATE TABLE nokey (v text)`,
		`CREATE TABLE full_nokey (a int, b text)`,
		`ALTER TABLE full_nokey REPLICA IDENTITY FULL`,
		`CREATE TABLE full_pk (id int PRIMARY KEY, big text)`,
		`ALTER TABLE full_pk REPLICA IDENTITY FULL`,
		`INSERT INTO nokey VALUES ('x')`,
		`INSERT INTO full_nokey VALUES (1, 'one')`,
	)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	got := e.read(1)
	if got[0].Table != "full_nokey" || !reflect.DeepEqual(got[0].Key, []bus.Column{col("a", json.Number("1")), col("b", "one")}) {
		t.Fatalf("FULL without a key must be keyed on all columns: %s", dump(got))
	}
	var skipped bool
	for _, ts := range r.c.Status().Tables {
		if ts.Table == "nokey" && ts.State == TableSkipped {
			skipped = true
		}
	}
	if !skipped {
		t.Fatalf("nokey not reported skipped: %+v", r.c.Status().Tables)
	}
	big := strings.Repeat("toast me ", 5000)
	e.exec(
		`INSERT INTO nokey VALUES ('y')`,
		`INSERT INTO full_pk VALUES (1, '`+big+`')`,
		`UPDATE full_pk SET id = id WHERE id = 1`,
	)
	got = e.read(2)
	for _, c := range got {
		if c.Table != "full_pk" || !reflect.DeepEqual(c.Key, []bus.Column{col("id", json.Number("1"))}) {
			t.Fatalf("FULL with a primary key must be keyed on it: %s", dump(got))
		}
	}
	if got[1].Op != bus.OpUpdate || got[1].Row["big"] != big || len(got[1].Unchanged) != 0 {
		t.Fatalf("FULL update must carry the unchanged TOAST value from the old row: op=%s unchanged=%v has big=%v",
			got[1].Op, got[1].Unchanged, got[1].Row["big"] == big)
	}
}

func TestUnchangedToastIsNamedNotFilled(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE docs (id int PRIMARY KEY, body text, title text)`)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	// Random text does not compress, so it is stored out of line.
	e.exec(`INSERT INTO docs SELECT 1, string_agg(md5(i::text), '') FROM generate_series(1, 2000) i`,
		`UPDATE docs SET title = 't' WHERE id = 1`)
	got := e.read(2)
	up := got[1]
	if _, ok := up.Row["body"]; ok || !reflect.DeepEqual(up.Unchanged, []string{"body"}) || up.Row["title"] != "t" {
		t.Fatalf("update = %s", dump(got[1:]))
	}
}

func TestConfirmedFlushWaitsForTheBus(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE t (id int PRIMARY KEY)`)
	pub := &faultyPublisher{next: e.bus.Changes()}
	r := e.start(pub)
	r.waitStreaming(t)

	// Hold the first Flush that starts after the insert's commit was
	// received: its changes are published but not acknowledged by the bus.
	gate := make(chan struct{})
	pub.mu.Lock()
	pub.flushGate = gate
	pub.holdWhen = func() bool {
		ev := pub.last()
		return ev != nil && r.c.Status().ReceivedLSN > ev.LSN
	}
	pub.mu.Unlock()
	e.exec(`INSERT INTO t VALUES (1)`)
	waitFor(t, "a flush held after the commit", func() bool { return pub.heldFlushes.Load() > 0 })
	commit := pub.last().LSN
	if st := r.c.Status(); st.ReceivedLSN <= commit || st.ConfirmedLSN > commit {
		t.Fatalf("status %+v: want the commit %s received and not confirmed", st, commit)
	}
	if cf := e.confirmedFlush(); cf > commit {
		t.Fatalf("confirmed_flush_lsn %s moved past commit %s before the bus acknowledged it", cf, commit)
	}
	close(gate)
	waitFor(t, "confirmed_flush_lsn to pass the acknowledged commit", func() bool { return e.confirmedFlush() > commit })

	// A failing flush stops Run with a PublishError and confirms nothing new.
	pub.mu.Lock()
	pub.flushGate, pub.flushErr = nil, errInjected
	pub.mu.Unlock()
	e.exec(`INSERT INTO t VALUES (2)`)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not fail on a flush error")
	}
	var pe *PublishError
	if !errors.As(r.err, &pe) || !errors.Is(r.err, errInjected) {
		t.Fatalf("Run = %v, want a PublishError wrapping the flush failure", r.err)
	}
	afterFailure := e.confirmedFlush()

	// The next Run delivers the second insert, which the failed Run never
	// confirmed, and confirms it once the bus has it.
	r2 := e.start(e.bus.Changes())
	r2.waitStreaming(t)
	got := e.read(2)
	second := got[1].LSN
	if got[1].Row["id"] != json.Number("2") {
		t.Fatalf("changes after restart: %s", dump(got))
	}
	if afterFailure > second {
		t.Fatalf("confirmed_flush_lsn %s moved past commit %s whose flush failed", afterFailure, second)
	}
	waitFor(t, "the second commit to be confirmed", func() bool { return e.confirmedFlush() > second })
}

func TestRestartResumesWithoutLoss(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE t (id int PRIMARY KEY)`)
	const n = 60
	seen := make(map[string]bool)
	for round := range 3 {
		r := e.start(e.bus.Changes())
		r.waitStreaming(t)
		for i := range n / 3 {
			e.exec("INSERT INTO t VALUES (" + itoa(round*n/3+i) + ")")
		}
		if round == 1 {
			// Close stops a running Run cleanly, like a cancelled context.
			if err := r.c.Close(); err != nil {
				t.Fatal(err)
			}
			<-r.done
			if r.err != nil {
				t.Fatalf("Run after Close = %v, want nil", r.err)
			}
			continue
		}
		if err := r.stop(t); err != nil {
			t.Fatalf("round %d: Run = %v", round, err)
		}
	}
	// Commits after the last stop are picked up by the next Run.
	last := e.start(e.bus.Changes())
	last.waitStreaming(t)
	// The bus drops republished duplicates by message id; read everything.
	for _, c := range e.readChanges(n, 30*time.Second) {
		seen[bus.DocumentID(c.Key)] = true
	}
	for i := range n {
		if !seen[itoa(i)] {
			t.Fatalf("row %d missing after restarts (have %d of %d)", i, len(seen), n)
		}
	}
}

// TestSnapshotProgressWaitsForTheBus holds every flush while a snapshot
// reads its chunks: none may be recorded as read (which a restart would
// skip) before the bus acknowledged it.
func TestSnapshotProgressWaitsForTheBus(t *testing.T) {
	e := newEnv(t)
	e.cfg.ChunkRows, e.cfg.SnapshotWorkers = 100, 1
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v text)`,
		`INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 350) i`)
	gate := make(chan struct{})
	pub := &faultyPublisher{next: e.bus.Changes(), flushGate: gate}
	r := e.start(pub)
	waitFor(t, "chunks published and a flush held", func() bool { return pub.count() >= 200 && pub.heldFlushes.Load() > 0 })
	progress := func() tableProgress {
		var p tableProgress
		if _, err := r.c.getJSON(t.Context(), r.c.progressKey("snapshot", "public", "t"), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := progress(); len(p.Ranges) != 1 || p.Ranges[0].Rows != 0 || p.Ranges[0].Done {
		t.Fatalf("progress before the bus acknowledged anything = %+v, want nothing read", p)
	}
	if st := r.c.Status(); st.Snapshot == nil || st.Snapshot.RowsDone != 0 {
		t.Fatalf("status before the bus acknowledged anything = %+v, want no rows done", st.Snapshot)
	}
	close(gate)
	r.waitStreaming(t)
	if p := progress(); len(p.Ranges) != 1 || p.Ranges[0].Rows != 350 || !p.Ranges[0].Done {
		t.Fatalf("progress once acknowledged = %+v, want 350 rows, done", p)
	}
}

func TestCrashMidSnapshotResumesFromTheLastChunk(t *testing.T) {
	e := newEnv(t)
	e.cfg.ChunkRows, e.cfg.SnapshotWorkers = 100, 1
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v text)`,
		`INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 500) i`)
	pub := &faultyPublisher{next: e.bus.Changes(), blockAfter: 150}
	r := e.start(pub)
	waitFor(t, "the snapshot to be under way, its first chunk recorded", func() bool {
		st := r.c.Status()
		return pub.count() == 150 && st.Snapshot != nil && st.Snapshot.RowsDone == 100
	})
	if st := r.c.Status(); st.Phase != PhaseSnapshot || st.Snapshot == nil || st.Snapshot.RowsDone != 100 {
		t.Fatalf("status mid-snapshot = %+v, want phase snapshot with the first chunk done", st)
	}
	first := r.c.Status().SnapshotLSN
	if err := r.stop(t); err != nil {
		t.Fatalf("Run cancelled mid-snapshot = %v, want nil", err)
	}
	if done, err := r.c.snapshotDone(t.Context()); err != nil || done {
		t.Fatalf("an unfinished snapshot was recorded as done (err=%v)", err)
	}
	// Changes after the crash, to rows already read and rows not read yet.
	e.exec(`UPDATE t SET v = 'changed' WHERE id IN (1, 500)`, `DELETE FROM t WHERE id IN (2, 499)`)

	r2 := e.start(e.bus.Changes())
	r2.waitStreaming(t)
	waitFor(t, "the resumed snapshot to finish", func() bool {
		done, err := r2.c.snapshotDone(t.Context())
		return err == nil && done
	})
	// Bus message ids drop the rows the first Run published past its last
	// recorded chunk; everything else arrives once.
	all := e.readChanges(1000, 5*time.Second)
	var rereads int
	for _, c := range all {
		if c.Op == bus.OpRead && c.LSN != first {
			rereads++
		}
	}
	if rereads == 0 || rereads >= 500 {
		t.Fatalf("resumed snapshot read %d rows again, want fewer than the table's 500 (only the chunks not recorded)", rereads)
	}
	want := e.tableDocs("t", `SELECT id::text, v FROM t`)
	if d := sameDocs(want, indexDocs(fold(all), "t", "id", "v")); d != "" {
		t.Fatal(d)
	}
	if r2.c.Status().SnapshotLSN != 0 && r2.c.Status().SnapshotLSN != first {
		t.Fatalf("a new snapshot was taken at %s", r2.c.Status().SnapshotLSN)
	}
}

func TestPublicationFollowsConfig(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE a (id int PRIMARY KEY)`, `CREATE TABLE b (id int PRIMARY KEY)`, `CREATE SCHEMA s`,
		`CREATE TABLE s.c (id int PRIMARY KEY)`)
	conn := e.connect()
	defer conn.Close(t.Context())
	check := func(tables []string, want string) {
		t.Helper()
		if _, err := ensurePublication(t.Context(), conn, "walsearch", mustTables(t, tables)); err != nil {
			t.Fatal(err)
		}
		var all bool
		var list string
		if err := conn.QueryRow(t.Context(), `SELECT puballtables, coalesce((SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY 1)
			FROM pg_publication_tables WHERE pubname = 'walsearch'), '') FROM pg_publication WHERE pubname = 'walsearch'`).Scan(&all, &list); err != nil {
			t.Fatal(err)
		}
		if all {
			list = "ALL:" + list
		}
		if list != want {
			t.Fatalf("tables %v: publication has %q, want %q", tables, list, want)
		}
	}
	check([]string{"a"}, "public.a")
	check([]string{"a", "s.c"}, "public.a,s.c")
	check(nil, "ALL:public.a,public.b,s.c")
	check([]string{"b"}, "public.b")
	if _, err := ensurePublication(t.Context(), conn, "walsearch", mustTables(t, []string{"missing"})); err == nil ||
		!strings.Contains(err.Error(), "remove it from postgres.tables") {
		t.Fatalf("missing table: %v", err)
	}
}

func mustTables(t *testing.T, names []string) []tableName {
	t.Helper()
	var out []tableName
	for _, n := range names {
		tn, err := parseTableName(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tn)
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestMissingPrivilegesSayWhatToDo(t *testing.T) {
	e := newEnv(t)
	role := "r_" + e.cfg.Slot
	e.exec(`CREATE ROLE ` + role + ` LOGIN`)
	t.Cleanup(func() { e.exec(`DROP ROLE IF EXISTS ` + role) })
	e.cfg.URL = strings.Replace(e.url, "postgres@", role+"@", 1)
	r := e.start(e.bus.Changes())
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not fail without privileges")
	}
	if r.err == nil || !strings.Contains(r.err.Error(), "REPLICATION attribute") {
		t.Fatalf("Run = %v, want an error that says which privileges to grant", r.err)
	}
}
