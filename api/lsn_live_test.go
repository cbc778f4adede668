package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
)

// A commit whose record ends exactly where a WAL page starts leaves
// pg_current_wal_insert_lsn() past the next page's header. On an idle
// database no later record ever arrives, so the wait must count that header
// as applied once the commit is indexed.
func TestLiveReadYourWritesCommitEndingOnPageBoundary(t *testing.T) {
	lp := startLivePipelineWith(t, 1, liveOpts{cfg: func(c *config.Config) {
		c.API.MinLSNTimeout = 10 * time.Second
	}})
	w := newWALPadder(t, lp.conn)
	// Background WAL (the server's periodic standby snapshot, autovacuum,
	// checkpoints) lets a wait end without the fix and proves nothing:
	// such an attempt is repeated.
	const attempts = 6
	for attempt := range attempts {
		id := 500000 + attempt
		boundary, want := w.commitOnPageBoundary(t, id)
		body := fmt.Sprintf(`{"index":"users","query_fields":{"id":%d},"min_lsn":%q}`, id, want)
		r := lp.search(t, body)
		if after := insertLSN(t, lp.conn); after != want {
			t.Logf("attempt %d: other WAL was written during the wait (insert position %s, then %s); again", attempt, want, after)
			continue
		}
		var sr struct {
			Data []map[string]any `json:"data"`
		}
		r.decode(t, &sr)
		if r.code != 200 || len(sr.Data) != 1 || sr.Data[0]["name"] != "boundary" {
			st := lp.do(t, "GET", "/status", "")
			t.Fatalf("commit ending on the page boundary %s, min_lsn %s, idle database: %d %s\nstatus: %s", boundary, want, r.code, r.body, st.body)
		}
		t.Logf("commit ended on the page boundary %s; min_lsn %s answered on an idle database", boundary, want)
		return
	}
	t.Fatalf("the cluster never stayed idle through a wait in %d attempts", attempts)
}

// walPadder makes a transaction's commit record end exactly on a WAL page
// boundary, by writing non-transactional logical messages of computed sizes
// before the commit.
type walPadder struct {
	conn     *pgx.Conn
	page     uint64 // wal_block_size
	segment  uint64 // wal_segment_size
	overhead uint64 // a pad message's bytes besides its content
	commit   uint64 // a commit record's bytes
}

// padContent is the content size of the messages that measure the layout;
// every pad message has at least this much, so that all have the same
// record header.
const padContent = 512

func newWALPadder(t *testing.T, conn *pgx.Conn) *walPadder {
	t.Helper()
	ctx := context.Background()
	w := &walPadder{conn: conn}
	if err := conn.QueryRow(ctx, `SELECT current_setting('wal_block_size')::int8, pg_size_bytes(current_setting('wal_segment_size'))`).
		Scan(&w.page, &w.segment); err != nil {
		t.Fatal(err)
	}
	// Measure a pad message and a commit of the shape used below, each
	// within one page so that no page header is counted.
	for range 20 {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, name) VALUES (-1, 'calibration') ON CONFLICT (id) DO UPDATE SET v = users.v + 1`); err != nil {
			t.Fatal(err)
		}
		a := insertLSN(t, tx)
		pad(t, tx, padContent)
		b := insertLSN(t, tx)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		c := insertLSN(t, conn)
		if uint64(a)/w.page == uint64(b)/w.page && uint64(b)/w.page == uint64(c)/w.page {
			w.overhead, w.commit = uint64(b-a)-padContent, uint64(c-b)
			return w
		}
	}
	t.Fatal("could not measure a commit record within one WAL page")
	return nil
}

// commitOnPageBoundary inserts the row id in a transaction whose commit
// record ends exactly on a page boundary, and returns that boundary and the
// insert position read after the commit, as a client would.
func (w *walPadder) commitOnPageBoundary(t *testing.T, id int) (boundary, after bus.LSN) {
	t.Helper()
	ctx := context.Background()
	for range 20 {
		tx, err := w.conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, name) VALUES ($1, 'boundary') ON CONFLICT (id) DO UPDATE SET v = users.v + 1`, id); err != nil {
			t.Fatal(err)
		}
		var end uint64
		for range 10 {
			at := uint64(insertLSN(t, tx))
			end = (at/w.page + 1) * w.page // insert positions never sit on a boundary
			if at+w.commit+w.overhead+padContent > end {
				// Too close to the boundary: move on to the next page.
				pad(t, tx, padContent)
				continue
			}
			pad(t, tx, int(end-w.commit-at-w.overhead))
			if uint64(insertLSN(t, tx)) == end-w.commit {
				break
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		after = insertLSN(t, w.conn)
		header := uint64(24) // SizeOfXLogShortPHD; the first page of a segment has a long one
		if end%w.segment == 0 {
			header = 40
		}
		if uint64(after) == end+header {
			return bus.LSN(end), after
		}
		// Other WAL got in between: try again.
	}
	t.Fatal("could not end a commit on a WAL page boundary")
	return 0, 0
}

// pad writes a non-transactional logical message of n bytes of content.
func pad(t *testing.T, q querier, n int) {
	t.Helper()
	if _, err := q.Exec(context.Background(), `SELECT pg_logical_emit_message(false, 'walsearch-test-pad', repeat('x', $1))`, n); err != nil {
		t.Fatal(err)
	}
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func insertLSN(t *testing.T, q querier) bus.LSN {
	t.Helper()
	var s string
	if err := q.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := bus.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}
