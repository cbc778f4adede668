package api_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// indexNames returns the names GET /indices lists.
func (lp *livePipeline) indexNames(t *testing.T) []string {
	t.Helper()
	r := lp.do(t, "GET", "/indices", "")
	if r.code != 200 {
		t.Fatalf("indices: %d %s", r.code, r.body)
	}
	var ir struct {
		Indices []struct{ Name string } `json:"indices"`
	}
	r.decode(t, &ir)
	var out []string
	for _, i := range ir.Indices {
		out = append(out, i.Name)
	}
	slices.Sort(out)
	return out
}

// snapshotLines returns each /status table line as "index state rows".
func (lp *livePipeline) snapshotLines(t *testing.T) ([]string, error) {
	t.Helper()
	r := lp.do(t, "GET", "/status", "")
	if r.code != 200 {
		return nil, fmt.Errorf("status: %d %s", r.code, r.body)
	}
	var st struct {
		Tables []struct {
			Index    string `json:"index"`
			Snapshot string `json:"snapshot"`
			Rows     uint64 `json:"snapshot_rows"`
		} `json:"tables"`
	}
	r.decode(t, &st)
	var out []string
	for _, ts := range st.Tables {
		out = append(out, fmt.Sprintf("%s %s %d", ts.Index, ts.Snapshot, ts.Rows))
	}
	slices.Sort(out)
	return out, nil
}

// TestLiveStatusAndIndicesAfterARestart snapshots a plain table, a
// partitioned one and one without a key, restarts the pipeline, and checks
// that /status still tells each snapshot's outcome and rows, and that
// /indices lists only indices a search can reach, before and after.
func TestLiveStatusAndIndicesAfterARestart(t *testing.T) {
	t.Parallel()
	const users = 300
	lp := startLivePipelineWith(t, users, liveOpts{
		setup: []string{
			`CREATE TABLE events (id bigint, at date, kind text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`,
			`CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
			`CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
			`INSERT INTO events SELECT g, DATE '2024-06-01' + g, 'k' FROM generate_series(1, 40) g`,
			`CREATE TABLE audit_log (msg text)`,
			`INSERT INTO audit_log SELECT 'm' || g FROM generate_series(1, 5) g`,
		},
		ready: func(lp *livePipeline) error {
			if n, err := lp.total(`{"index":"users","page_size":1}`); err != nil || n != users {
				return fmt.Errorf("users: %d documents, %v", n, err)
			}
			if n, err := lp.total(`{"index":"events","page_size":1}`); err != nil || n != 40 {
				return fmt.Errorf("events: %d documents, %v", n, err)
			}
			return nil
		},
	})
	wantStatus := []string{"audit_log skipped 0", "events done 40", "users done 300"}
	wantIndices := []string{"events", "users"}
	check := func(when string) {
		t.Helper()
		lp.waitFor(t, 60*time.Second, func(lp *livePipeline) error {
			got, err := lp.snapshotLines(t)
			if err != nil {
				return err
			}
			if !slices.Equal(got, wantStatus) {
				return fmt.Errorf("%s: /status snapshot lines %q, want %q", when, got, wantStatus)
			}
			return nil
		})
		if got := lp.indexNames(t); !slices.Equal(got, wantIndices) {
			t.Errorf("%s: /indices lists %q, want %q", when, got, wantIndices)
		}
		for _, name := range lp.indexNames(t) {
			if r := lp.search(t, `{"index":"`+name+`","page_size":1}`); r.code != 200 {
				t.Errorf("%s: /indices lists %s, whose search answers %d %s", when, name, r.code, r.body)
			}
		}
	}
	// Changes streamed into a partition made after the start, and into
	// the table without a key.
	for _, stmt := range []string{
		`CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`,
		`INSERT INTO events VALUES (1000, DATE '2026-02-01', 'late'), (1001, DATE '2025-02-01', 'late')`,
		`INSERT INTO audit_log VALUES ('late')`,
	} {
		if _, err := lp.conn.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	lp.waitFor(t, 60*time.Second, func(lp *livePipeline) error {
		if n, err := lp.total(`{"index":"events","page_size":1}`); err != nil || n != 42 {
			return fmt.Errorf("events: %d documents, %v", n, err)
		}
		return nil
	})
	check("before the restart")
	lp.restart(t)
	lp.waitFor(t, 120*time.Second, func(lp *livePipeline) error {
		_, err := lp.total(`{"index":"users","page_size":1}`)
		return err
	})
	check("after the restart")
}
