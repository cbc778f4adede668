package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/config"
)

// TestLivePartitionedPipelineInOneProcess: with nats.partitions 3, one
// process (the embedded NATS) works on every partition. Read-your-writes
// waits for the lowest partition's applied LSN: a row written a moment
// earlier, in whichever partition, is found every time; a key change, a
// delete and a TRUNCATE followed by inserts end as in the table; /status
// lists the partitions.
func TestLivePartitionedPipelineInOneProcess(t *testing.T) {
	lp := startLivePipelineWith(t, 300, liveOpts{cfg: func(c *config.Config) { c.NATS.Partitions = 3 }})
	ctx := context.Background()
	lsnNow := func() string {
		var lsn string
		if err := lp.conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		return lsn
	}
	totalAt := func(body, lsn string) int {
		t.Helper()
		r := lp.search(t, body, "X-Walsearch-Min-LSN", lsn)
		var sr struct {
			Meta struct {
				Total int `json:"total_records"`
			} `json:"meta"`
		}
		r.decode(t, &sr)
		if r.code != 200 {
			t.Fatalf("search %s at %s: %d %s", body, lsn, r.code, r.body)
		}
		return sr.Meta.Total
	}
	for i := range 12 {
		id := 100000 + i
		if _, err := lp.conn.Exec(ctx, `INSERT INTO users (id, name, status) VALUES ($1, 'fresh', 'new')`, id); err != nil {
			t.Fatal(err)
		}
		if n := totalAt(fmt.Sprintf(`{"index":"users","query_fields":{"id":%d}}`, id), lsnNow()); n != 1 {
			t.Fatalf("row %d, written before the search's min_lsn, found %d times", id, n)
		}
	}
	// A key change (delete of the old key, insert of the new, possibly in
	// two partitions' worth of history) and a delete.
	if _, err := lp.conn.Exec(ctx, `UPDATE users SET id = 200005, name = 'moved' WHERE id = 5; DELETE FROM users WHERE id = 6`); err != nil {
		t.Fatal(err)
	}
	lsn := lsnNow()
	if n := totalAt(`{"index":"users","query_fields":{"id":5}}`, lsn); n != 0 {
		t.Fatalf("the old key of a key change is still found (%d)", n)
	}
	if n := totalAt(`{"index":"users","query_fields":{"id":200005}}`, lsn); n != 1 {
		t.Fatalf("the new key of a key change found %d times", n)
	}
	if n := totalAt(`{"index":"users","query_fields":{"id":6}}`, lsn); n != 0 {
		t.Fatal("a deleted row is still found")
	}
	// A TRUNCATE reaches every partition; rows written after it stay.
	if _, err := lp.conn.Exec(ctx, `TRUNCATE users; INSERT INTO users (id, name) SELECT g, 'after' FROM generate_series(1, 7) g`); err != nil {
		t.Fatal(err)
	}
	lp.waitTotal(t, `{"index":"users","page_size":1}`, 7, 2*time.Minute)
	r := lp.do(t, "GET", "/status", "")
	var st struct {
		Partitions []struct {
			Partition int               `json:"partition"`
			Backlog   map[string]uint64 `json:"backlog"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(r.body, &st); err != nil || len(st.Partitions) != 3 {
		t.Fatalf("/status lists %d partitions (%v), want 3: %s", len(st.Partitions), err, r.body)
	}
	m := lp.do(t, "GET", "/metrics", "")
	for _, want := range []string{`walsearch_partition_backlog_messages{partition="2",stage="sink"}`,
		`walsearch_bus_backlog_messages{consumer="transform-1"}`} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("GET /metrics lacks %s", want)
		}
	}
}
