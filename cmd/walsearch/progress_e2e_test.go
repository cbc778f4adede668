package main

import (
	"strings"
	"testing"
	"time"
)

// TestSnapshotIsDoneOnlyWhenSearchable: /status said a table's snapshot
// was "done" as soon as its rows were read, while searches stayed partial
// for many seconds more. Polled throughout a 100k-row snapshot, "done" must
// come with a search that finds every row.
func TestSnapshotIsDoneOnlyWhenSearchable(t *testing.T) {
	t.Parallel()
	const rows = 100000
	dbURL, _ := testDB(t, `CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100000) g;`)
	r := runPipelineNoWait(t, dbURL, slotName(dbURL), "")
	waitHealthy(t, r.base, r.p)
	type table struct {
		Table        string `json:"table"`
		Snapshot     string `json:"snapshot"`
		SnapshotRows uint64 `json:"snapshot_rows"`
	}
	var states []string
	// Generous for a race-detector build on a loaded machine; polling
	// stops at "done".
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var st struct {
			Tables []table `json:"tables"`
		}
		if err := r.apiJSON("GET", "/status", "", &st); err == nil {
			for _, tb := range st.Tables {
				if tb.Table != "items" {
					continue
				}
				if len(states) == 0 || states[len(states)-1] != tb.Snapshot {
					states = append(states, tb.Snapshot)
				}
				if tb.Snapshot == "done" {
					var sr struct {
						Meta struct {
							Total int64 `json:"total_records"`
						} `json:"meta"`
					}
					if err := r.apiJSON("POST", "/search", `{"index":"items","page_size":1}`, &sr); err != nil {
						t.Fatal(err)
					}
					if sr.Meta.Total != rows || tb.SnapshotRows != rows {
						t.Fatalf("status says done (states %v, %d rows read) while a search finds %d of %d rows",
							states, tb.SnapshotRows, sr.Meta.Total, rows)
					}
					t.Logf("snapshot states seen: %v", states)
					// The log says so too, after its rows were read.
					logDeadline := time.Now().Add(time.Minute)
					for !strings.Contains(r.p.output(), `msg="snapshot searchable" rows=100000`) {
						if time.Now().After(logDeadline) {
							t.Fatal(`no "snapshot searchable" log line with the snapshot's rows`)
						}
						time.Sleep(100 * time.Millisecond) // polling interval
					}
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot not done within 10m; states %v", states)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}
