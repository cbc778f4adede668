package api_test

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
)

// liveStatus is the part of GET /status the live tests read.
type liveStatus struct {
	Tables []struct {
		Schema   string `json:"schema"`
		Table    string `json:"table"`
		Index    string `json:"index"`
		DLQCount uint64 `json:"dlq_count"`
	} `json:"tables"`
	DLQCount   uint64            `json:"dlq_count"`
	DLQByTable map[string]uint64 `json:"dlq_by_table"`
	Sink       struct {
		Indexed   uint64 `json:"documents_indexed"`
		Dead      uint64 `json:"dead_lettered"`
		BatchSize int    `json:"batch_size"`
	} `json:"sink"`
}

func (lp *livePipeline) status(t *testing.T) liveStatus {
	t.Helper()
	r := lp.do(t, "GET", "/status", "")
	if r.code != 200 {
		t.Fatalf("status: %d %s", r.code, r.body)
	}
	var st liveStatus
	r.decode(t, &st)
	return st
}

// tableDLQ returns the dlq_count of index's line in /status.
func (st liveStatus) tableDLQ(index string) (uint64, bool) {
	for _, ts := range st.Tables {
		if ts.Index == index {
			return ts.DLQCount, true
		}
	}
	return 0, false
}

// wantDeadLetters checks /status's dead-letter counts: the total, by table,
// and on each table's line.
func (st liveStatus) wantDeadLetters(total uint64, byTable map[string]uint64) error {
	if st.DLQCount != total || !maps.Equal(st.DLQByTable, byTable) {
		return fmt.Errorf("dlq_count %d, dlq_by_table %v; want %d, %v", st.DLQCount, st.DLQByTable, total, byTable)
	}
	for index, table := range map[string]string{"users": "public.users", "orders": "public.orders"} {
		if n, ok := st.tableDLQ(index); !ok || n != byTable[table] {
			return fmt.Errorf("line of %s: dlq_count %d (listed %v), want %d", index, n, ok, byTable[table])
		}
	}
	return nil
}

// metricValue returns the value of the sample line that starts with series.
func metricValue(body, series string) (float64, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// TestLiveStatusCountsDeadLettersPerTable makes real dead letters in two
// tables — a script that throws (dead-lettered by transform) and a script
// that returns a value the index's mapping rejects (dead-lettered by the
// sink) — and checks /status and /metrics count them per table, also after
// an entry is removed (as a replay does), more arrive, and a stage's entries
// are purged.
func TestLiveStatusCountsDeadLettersPerTable(t *testing.T) {
	t.Parallel()
	const batch = 37
	lp := startLivePipelineWith(t, 50, liveOpts{
		setup: []string{
			`CREATE TABLE orders (id bigint PRIMARY KEY, amount int NOT NULL)`,
			`INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 60) g`,
		},
		scripts: map[string]string{
			// ids 10, 20, ..., 50: five transform dead letters.
			"users": `function transform(doc, ctx) { if (doc.id % 10 === 0) { throw new Error("no tens"); } return doc; }`,
			// ids 7, 14, ..., 56: eight documents the engine rejects.
			"orders": `function transform(doc, ctx) { if (doc.id % 7 === 0) { doc.amount = "not a number"; } return doc; }`,
		},
		cfg: func(c *config.Config) { c.Sink.MaxBatchSize = batch },
		ready: func(lp *livePipeline) error {
			if n, err := lp.total(`{"index":"orders"}`); err != nil || n != 52 {
				return fmt.Errorf("orders: %d documents, %v", n, err)
			}
			if n, err := lp.total(`{"index":"users"}`); err != nil || n != 45 {
				return fmt.Errorf("users: %d documents, %v", n, err)
			}
			return nil
		},
	})
	check := func(total uint64, byTable map[string]uint64) {
		t.Helper()
		lp.waitFor(t, 60*time.Second, func(lp *livePipeline) error { return lp.status(t).wantDeadLetters(total, byTable) })
	}
	check(13, map[string]uint64{"public.users": 5, "public.orders": 8})

	st := lp.status(t)
	m := lp.do(t, "GET", "/metrics", "")
	body := string(m.body)
	for series, want := range map[string]float64{
		`walsearch_dlq_messages`:                              13,
		`walsearch_dlq_table_messages{table="public.users"}`:  5,
		`walsearch_dlq_table_messages{table="public.orders"}`: 8,
		`walsearch_sink_dead_lettered_total`:                  8,
	} {
		if v, ok := metricValue(body, series); !ok || v != want {
			t.Errorf("metrics: %s = %v (found %v), want %v", series, v, ok, want)
		}
	}
	// The sink's batch size: a real value within the configured bounds,
	// the same as /status reports (nothing flows now, so it holds still).
	bs, ok := metricValue(body, "walsearch_sink_batch_size")
	if !ok || bs < 1 || bs > batch || int(bs) != st.Sink.BatchSize {
		t.Errorf("walsearch_sink_batch_size = %v (found %v), /status batch_size %d, want 1..%d and equal", bs, ok, st.Sink.BatchSize, batch)
	}
	if v, ok := metricValue(body, "walsearch_sink_bulk_requests_in_flight"); !ok || v < 0 {
		t.Errorf("walsearch_sink_bulk_requests_in_flight = %v (found %v)", v, ok)
	}
	if v, ok := metricValue(body, "walsearch_sink_documents_indexed_total"); !ok || v < 97 {
		t.Errorf("walsearch_sink_documents_indexed_total = %v (found %v), want at least the 97 documents indexed", v, ok)
	}
	// Documents per bulk request: every request holds at most the batch
	// size (37, so all fall at or below the 50 bucket), and they add up to
	// at least the documents indexed and dead-lettered by the engine.
	requests, ok1 := metricValue(body, "walsearch_sink_bulk_request_documents_count")
	docs, ok2 := metricValue(body, "walsearch_sink_bulk_request_documents_sum")
	upTo50, ok3 := metricValue(body, `walsearch_sink_bulk_request_documents_bucket{le="50"}`)
	upTo10, ok4 := metricValue(body, `walsearch_sink_bulk_request_documents_bucket{le="10"}`)
	upTo1, ok5 := metricValue(body, `walsearch_sink_bulk_request_documents_bucket{le="1"}`)
	// The buckets must account for the documents: no more than each
	// request's bucket bound allows.
	most := upTo1*1 + (upTo10-upTo1)*10 + (upTo50-upTo10)*batch
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || requests < 1 || upTo50 != requests || upTo1 > upTo10 || upTo10 > upTo50 ||
		docs < 97+8 || docs > most {
		t.Errorf("bulk request documents: count %v sum %v le=10 %v le=50 %v (found %v %v %v %v); want every request at most %d documents, %d in all at least",
			requests, docs, upTo10, upTo50, ok1, ok2, ok3, ok4, batch, 97+8)
	}

	// Removing one entry, as `walsearch dlq replay` does once the event is
	// published again.
	ctx := context.Background()
	dlq, err := lp.p.Bus.JetStream().Stream(ctx, bus.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	first, err := dlq.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(bus.DLQSubject("transform")))
	if err != nil {
		t.Fatal(err)
	}
	if err := dlq.DeleteMsg(ctx, first.Sequence); err != nil {
		t.Fatal(err)
	}
	check(12, map[string]uint64{"public.users": 4, "public.orders": 8})

	// New dead letters after that.
	for _, stmt := range []string{
		`INSERT INTO users (id, name) VALUES (1000, 'ten')`,
		`INSERT INTO orders VALUES (700, 1), (701, 2)`,
	} {
		if _, err := lp.conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	check(14, map[string]uint64{"public.users": 5, "public.orders": 9})

	// Purging the sink's entries.
	if err := dlq.Purge(ctx, jetstream.WithPurgeSubject(bus.DLQSubject("sink"))); err != nil {
		t.Fatal(err)
	}
	check(5, map[string]uint64{"public.users": 5})
	if strings.Contains(string(lp.do(t, "GET", "/metrics", "").body), `walsearch_dlq_table_messages{table="public.orders"}`) {
		t.Error("metrics still count the purged dead letters of orders")
	}
}
