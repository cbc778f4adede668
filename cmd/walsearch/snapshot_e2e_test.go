package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledMidSnapshotResumes kills walsearch (SIGKILL) while its initial
// snapshot is part way through a table, changes rows on both sides of where
// it got to, and restarts it: the snapshot must go on from its last recorded
// chunk, not from the start, and the index must end equal to the table.
func TestKilledMidSnapshotResumes(t *testing.T) {
	t.Parallel()
	const rows = 20000
	dbURL, conn := testDB(t, fmt.Sprintf(`
CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text, age int, v int NOT NULL DEFAULT 1);
INSERT INTO users (id, name, email, age)
  SELECT g, 'user ' || g, 'u' || g || '@example.com', 20 + g %% 50 FROM generate_series(1, %d) g;
ANALYZE users;`, rows))
	// Tiny chunks read by one worker: the snapshot records its progress
	// thousands of times and lasts long enough to be caught between two
	// records, even before the API is up. The restart reads on in larger
	// chunks.
	r := runPipelineNoWait(t, dbURL, "killsnap", "capture:\n  snapshot_workers: 1\n  chunk_rows: 2\n")

	var read uint64
	deadline := time.Now().Add(60 * time.Second)
	for read == 0 {
		var st struct {
			Tables []struct {
				Table        string `json:"table"`
				Snapshot     string `json:"snapshot"`
				SnapshotRows uint64 `json:"snapshot_rows"`
			} `json:"tables"`
		}
		if err := getJSON(r.base+"/status", &st); err == nil {
			for _, tb := range st.Tables {
				if tb.Table != "users" {
					continue
				}
				if tb.Snapshot == "done" {
					t.Fatalf("the snapshot of %d rows finished before it could be killed", rows)
				}
				read = tb.SnapshotRows
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the snapshot recorded no progress within 60s")
		}
		if read == 0 {
			time.Sleep(5 * time.Millisecond) // polling interval
		}
	}
	_ = r.p.stop(syscall.SIGKILL)
	t.Logf("killed with %d of %d rows recorded as read", read, rows)

	// Rows read before the kill and rows not read yet, updated and deleted
	// while walsearch is down, then random changes as it comes back.
	ctx := context.Background()
	for _, sql := range []string{
		`UPDATE users SET v = v + 1, name = 'changed while down' WHERE id IN (1, 2, $1::bigint - 1)`,
		`DELETE FROM users WHERE id IN (3, $1::bigint)`,
	} {
		if _, err := conn.Exec(ctx, sql, rows); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := os.ReadFile(r.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.cfgPath, bytes.Replace(cfg, []byte("chunk_rows: 2\n"), []byte("chunk_rows: 1000\n"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	r2 := restartPipeline(t, r)
	w := usersWriter(conn, rand.New(rand.NewPCG(5, 6)), rows)
	for range 300 {
		if err := w.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitConverged(t, r2.base, conn, "after a kill -9 mid-snapshot")

	out := r2.p.output()
	i := strings.Index(out, "resuming the initial snapshot after its last recorded chunks")
	if i < 0 {
		t.Fatalf("the restarted process did not resume the snapshot (killed after %d rows recorded)", read)
	}
	if line, _, _ := strings.Cut(out[i:], "\n"); strings.Contains(line, "rows_already_read=0") {
		t.Fatalf("the snapshot resumed from the start: %s", line)
	}
	if err := r2.p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("final shutdown exited with %v", err)
	}
}

// getJSON decodes the 200 answer of a GET.
func getJSON(url string, out any) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("GET %s: HTTP %d", url, res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(out)
}
