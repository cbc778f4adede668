package chaos

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// schema is the database the workload writes: items has large (TOASTed)
// payloads, columns added and dropped while running, and keys that change;
// accounts has a composite key and a transform script that filters rows out
// (a negative balance); events is truncated now and then; markers are the
// rows the lag is measured with.
const schema = `
CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int, v int NOT NULL DEFAULT 1, payload text);
CREATE TABLE accounts (region text NOT NULL, id int NOT NULL, balance numeric(12,2) NOT NULL, tags text[], meta jsonb,
	note text, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (region, id));
CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, body text);
CREATE TABLE markers (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
`

// accountsScript is accounts' transform.js: accounts in the red are not
// searchable, the others get a label.
const accountsScript = `function transform(doc, ctx) {
  if (doc.balance < 0) return null;
  doc.label = doc.region + "/" + doc.id;
  return doc;
}
`

// largeEvery spaces large transactions.
const largeEvery = 10 * time.Second

var regions = []string{"eu", "us", "ap", "sa"}

// Counts are the changes the workload made, counted when their transaction
// committed.
type Counts struct {
	Transactions, RolledBack, Failed          int64
	Inserted, Updated, Deleted, KeysChanged   int64
	LargeValues, LargeTransactions, Truncates int64
	ColumnsAdded, ColumnsDropped, Backfills   int64
	largestTx                                 int64
}

// Rows is the row changes in all.
func (c Counts) Rows() int64 { return c.Inserted + c.Updated + c.Deleted }

// workload writes random changes to the database until stopped, through
// several connections, and makes the scheduled ones (truncates, schema
// changes) on its own connection. Errors the harness causes (PostgreSQL
// restarting, deadlocks between its own writers) cost a transaction and a
// reconnect, nothing else.
type workload struct {
	url     string
	initial int // items rows before the run; sizes large transactions
	nextID  atomic.Int64
	nextEv  atomic.Int64
	// lastLarge is when the last large transaction began (UnixNano): at
	// most one every largeEvery, so that the pipeline keeps up.
	lastLarge atomic.Int64

	mu     sync.Mutex
	counts Counts
	extra  []string // items' added columns, oldest first
	extraN int
	errs   map[string]int // failed transactions by error, for the log
}

func newWorkload(url string, initialItems int) *workload {
	w := &workload{url: url, initial: initialItems, errs: map[string]int{}}
	w.nextID.Store(int64(initialItems))
	w.nextEv.Store(1_000_000)
	return w
}

// setup creates the tables and their first rows: initial items (one in
// ten with a large payload), 2,000 accounts, 1,000 events.
func (w *workload) setup(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, w.url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, schema); err != nil {
		return fmt.Errorf("create the tables: %w", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO items (id, name, n, payload)
		SELECT g, 'item ' || g, g % 1000, CASE WHEN g % 10 = 0 THEN (SELECT string_agg(md5(g::text || r::text), '') FROM generate_series(1, 200) r)
			ELSE repeat(md5(g::text), 8) END
		FROM generate_series(1, $1::bigint) g`, w.initial); err != nil {
		return fmt.Errorf("insert items: %w", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO accounts (region, id, balance, tags, meta, note)
		SELECT (ARRAY['eu','us','ap','sa'])[1 + g % 4], g, (g % 200) - 20, ARRAY['t' || g % 7], jsonb_build_object('g', g), 'account ' || g
		FROM generate_series(1, 2000) g`); err != nil {
		return fmt.Errorf("insert accounts: %w", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO events (id, kind, body) SELECT g, 'seed', 'event ' || g FROM generate_series(1, 1000) g`); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// run writes random transactions on one connection until ctx is done,
// about one every pace, and none while busy says the pipeline has enough
// to do: the workload must not outrun a slow machine (or walsearch built
// with the race detector) for good, or no lag would ever recover.
func (w *workload) run(ctx context.Context, rng *rand.Rand, pace time.Duration, busy func() bool) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if busy() {
			continue
		}
		if conn == nil || conn.IsClosed() {
			c, err := pgx.Connect(ctx, w.url)
			if err != nil {
				continue // PostgreSQL is restarting: try again at the next tick
			}
			conn = c
		}
		w.transaction(ctx, conn, rng)
	}
}

// tx runs fn in a transaction and counts its changes once it committed;
// rollback asks fn's work to be rolled back instead (counted as such).
func (w *workload) tx(ctx context.Context, conn *pgx.Conn, rollback bool, fn func(tx pgx.Tx, c *Counts) error) {
	var c Counts
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := fn(tx, &c); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == errRollback:
		w.counts.RolledBack++
	case err != nil:
		if ctx.Err() == nil {
			w.counts.Failed++
			w.errs[errorKind(err)]++
		}
	default:
		w.counts.add(c)
	}
}

var errRollback = fmt.Errorf("rolled back on purpose")

func (c *Counts) add(d Counts) {
	c.Transactions++
	c.Inserted += d.Inserted
	c.Updated += d.Updated
	c.Deleted += d.Deleted
	c.KeysChanged += d.KeysChanged
	c.LargeValues += d.LargeValues
	c.Truncates += d.Truncates
	c.ColumnsAdded += d.ColumnsAdded
	c.ColumnsDropped += d.ColumnsDropped
	if n := d.Rows(); n >= 1000 {
		c.LargeTransactions++
	}
	c.largestTx = max(c.largestTx, d.Rows())
}

// errorKind shortens an error to what tells failures apart in the log.
func errorKind(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// execCounted runs sql and adds its affected rows to *n.
func execCounted(ctx context.Context, tx pgx.Tx, n *int64, sql string, args ...any) error {
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if n != nil {
		*n += tag.RowsAffected()
	}
	return nil
}

// largeValue is an incompressible text of 4 to 40 KiB: stored out of line
// (TOASTed), so that updates which do not touch it leave it out of the WAL.
func largeValue(rng *rand.Rand) string {
	b := make([]byte, 2048+rng.IntN(18*1024))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return hex.EncodeToString(b)
}

func smallValue(rng *rand.Rand) string {
	return fmt.Sprintf("small %x", rng.Uint64())
}

// randomID is an items id that probably exists.
func (w *workload) randomID(rng *rand.Rand) int64 {
	return 1 + rng.Int64N(w.nextID.Load())
}

// transaction writes one random transaction.
func (w *workload) transaction(ctx context.Context, conn *pgx.Conn, rng *rand.Rand) {
	switch k := rng.IntN(100); {
	case k < 45: // a few single-row changes in one transaction
		w.tx(ctx, conn, false, func(tx pgx.Tx, c *Counts) error {
			for range 1 + rng.IntN(4) {
				if err := w.change(ctx, tx, rng, c); err != nil {
					return err
				}
			}
			return nil
		})
	case k < 60: // multi-row statements
		w.tx(ctx, conn, false, func(tx pgx.Tx, c *Counts) error { return w.multiRow(ctx, tx, rng, c) })
	case k < 85: // accounts: the script filters rows in and out
		w.tx(ctx, conn, false, func(tx pgx.Tx, c *Counts) error { return w.account(ctx, tx, rng, c) })
	case k < 93: // events
		w.tx(ctx, conn, false, func(tx pgx.Tx, c *Counts) error {
			from := w.nextEv.Add(int64(20)) - 19
			if err := execCounted(ctx, tx, &c.Inserted, `INSERT INTO events (id, kind, body) SELECT g, 'e', 'event ' || g FROM generate_series($1::bigint, $1::bigint + 19) g`, from); err != nil {
				return err
			}
			return execCounted(ctx, tx, &c.Deleted, `DELETE FROM events WHERE id = (SELECT min(id) FROM events)`)
		})
	case k < 97: // work that is rolled back leaves no trace
		w.tx(ctx, conn, true, func(tx pgx.Tx, c *Counts) error {
			if err := w.change(ctx, tx, rng, c); err != nil {
				return err
			}
			return w.multiRow(ctx, tx, rng, c)
		})
	default: // a large transaction, or a multi-row one when one ran lately
		last := w.lastLarge.Load()
		if time.Since(time.Unix(0, last)) < largeEvery || !w.lastLarge.CompareAndSwap(last, time.Now().UnixNano()) {
			w.tx(ctx, conn, false, func(tx pgx.Tx, c *Counts) error { return w.multiRow(ctx, tx, rng, c) })
			return
		}
		w.tx(ctx, conn, false, func(tx pgx.Tx, c *Counts) error { return w.large(ctx, tx, rng, c) })
	}
}

// change makes one single-row change to items.
func (w *workload) change(ctx context.Context, tx pgx.Tx, rng *rand.Rand, c *Counts) error {
	id := w.randomID(rng)
	switch k := rng.IntN(100); {
	case k < 30:
		payload := smallValue(rng)
		if rng.IntN(5) == 0 {
			payload = largeValue(rng)
			c.LargeValues++
		}
		return execCounted(ctx, tx, &c.Inserted, `INSERT INTO items (id, name, n, payload) VALUES ($1, $2, $3, $4)`,
			w.nextID.Add(1), fmt.Sprintf("item %x", rng.Uint32()), rng.IntN(1000), payload)
	case k < 65: // the payload is left alone: a TOASTed one is not in the WAL
		return execCounted(ctx, tx, &c.Updated, `UPDATE items SET v = v + 1, name = $2, n = $3 WHERE id = $1`,
			id, fmt.Sprintf("renamed %x", rng.Uint32()), rng.IntN(1000))
	case k < 75:
		c.LargeValues++
		return execCounted(ctx, tx, &c.Updated, `UPDATE items SET v = v + 1, payload = $2 WHERE id = $1`, id, largeValue(rng))
	case k < 80:
		return execCounted(ctx, tx, &c.Updated, `UPDATE items SET payload = NULL WHERE id = $1`, id)
	case k < 92:
		return execCounted(ctx, tx, &c.Deleted, `DELETE FROM items WHERE id = $1`, id)
	default: // a changed key: a delete and an insert
		var n int64
		if err := execCounted(ctx, tx, &n, `UPDATE items SET id = $2 WHERE id = $1`, id, w.nextID.Add(1)); err != nil {
			return err
		}
		c.KeysChanged += n
		c.Updated += n
		return nil
	}
}

// multiRow changes a range of items with one statement.
func (w *workload) multiRow(ctx context.Context, tx pgx.Tx, rng *rand.Rand, c *Counts) error {
	n := int64(2 + rng.IntN(100))
	switch rng.IntN(4) {
	case 0:
		from := w.nextID.Add(n) - n + 1
		return execCounted(ctx, tx, &c.Inserted, `INSERT INTO items (id, name, n, payload)
			SELECT g, 'bulk ' || g, g % 1000, repeat(md5(random()::text), 4) FROM generate_series($1::bigint, $2::bigint) g`, from, from+n-1)
	case 1, 2:
		from := w.randomID(rng)
		return execCounted(ctx, tx, &c.Updated, `UPDATE items SET v = v + 1, n = coalesce(n, 0) + 1 WHERE id BETWEEN $1 AND $2`, from, from+n)
	default:
		from := w.randomID(rng)
		return execCounted(ctx, tx, &c.Deleted, `DELETE FROM items WHERE id BETWEEN $1 AND $2`, from, from+n/4)
	}
}

// account changes accounts: balances cross zero (the document leaves the
// index, then comes back), rows are added and deleted.
func (w *workload) account(ctx context.Context, tx pgx.Tx, rng *rand.Rand, c *Counts) error {
	region, id := regions[rng.IntN(len(regions))], 1+rng.IntN(3000)
	switch rng.IntN(5) {
	case 0, 1:
		return execCounted(ctx, tx, &c.Updated, `UPDATE accounts SET balance = balance + $3, updated_at = clock_timestamp() WHERE region = $1 AND id = $2`,
			region, id, rng.IntN(100)-50)
	case 2:
		return execCounted(ctx, tx, &c.Inserted, `INSERT INTO accounts (region, id, balance, tags, meta, note) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (region, id) DO UPDATE SET balance = excluded.balance, tags = excluded.tags, meta = excluded.meta`,
			region, id, rng.IntN(200)-20, []string{fmt.Sprintf("t%d", rng.IntN(7)), "x"}, map[string]any{"r": rng.IntN(100), "s": "a\"b"}, smallValue(rng))
	case 3:
		return execCounted(ctx, tx, &c.Updated, `UPDATE accounts SET balance = -balance, meta = meta || '{"flipped": true}' WHERE region = $1 AND id BETWEEN $2 AND $2 + 20`,
			region, id)
	default:
		return execCounted(ctx, tx, &c.Deleted, `DELETE FROM accounts WHERE region = $1 AND id = $2`, region, id)
	}
}

// large writes one large transaction: thousands of inserted rows, or an
// update of a tenth of items.
func (w *workload) large(ctx context.Context, tx pgx.Tx, rng *rand.Rand, c *Counts) error {
	n := int64(max(2000, w.initial/5))
	if rng.IntN(2) == 0 {
		from := w.nextID.Add(n) - n + 1
		return execCounted(ctx, tx, &c.Inserted, `INSERT INTO items (id, name, n, payload)
			SELECT g, 'large ' || g, g % 1000, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g`, from, from+n-1)
	}
	from := w.randomID(rng)
	return execCounted(ctx, tx, &c.Updated, `UPDATE items SET v = v + 1 WHERE id BETWEEN $1 AND $2`, from, from+n)
}

// special makes one scheduled change on a connection of its own and says
// what it did.
func (w *workload) special(ctx context.Context, what string) (string, error) {
	conn, err := pgx.Connect(ctx, w.url)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var c Counts
	var done string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// The schema change waits for the writers' transactions, which
		// then wait for it: let it have the lock quickly or fail.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '20s'`); err != nil {
			return err
		}
		switch what {
		case "truncate":
			done = "TRUNCATE events"
			c.Truncates++
			return execCounted(ctx, tx, nil, `TRUNCATE events`)
		case "add column":
			w.mu.Lock()
			w.extraN++
			col := fmt.Sprintf("extra_%d", w.extraN)
			w.mu.Unlock()
			done = "ALTER TABLE items ADD COLUMN " + col + ", and every row given a value"
			c.ColumnsAdded++
			if err := execCounted(ctx, tx, nil, `ALTER TABLE items ADD COLUMN `+col+` text`); err != nil {
				return err
			}
			// Rows that existed get the column without a change in the
			// WAL: writing them is how a migration shows them to capture.
			if err := execCounted(ctx, tx, &c.Updated, `UPDATE items SET `+col+` = 'x' || id`); err != nil {
				return err
			}
			w.mu.Lock()
			w.extra = append(w.extra, col)
			w.mu.Unlock()
			return nil
		case "drop column":
			w.mu.Lock()
			if len(w.extra) == 0 {
				w.mu.Unlock()
				done = "no added column to drop"
				return nil
			}
			col := w.extra[0]
			w.mu.Unlock()
			done = "ALTER TABLE items DROP COLUMN " + col + ", and every row written again"
			c.ColumnsDropped++
			if err := execCounted(ctx, tx, nil, `ALTER TABLE items DROP COLUMN `+col); err != nil {
				return err
			}
			if err := execCounted(ctx, tx, &c.Updated, `UPDATE items SET v = v + 1`); err != nil {
				return err
			}
			w.mu.Lock()
			w.extra = w.extra[1:]
			w.mu.Unlock()
			return nil
		}
		return fmt.Errorf("unknown special change %q", what)
	})
	if err != nil {
		w.mu.Lock()
		w.counts.Failed++
		w.errs[errorKind(err)]++
		w.mu.Unlock()
		return "", fmt.Errorf("%s: %w", what, err)
	}
	w.mu.Lock()
	w.counts.add(c)
	w.mu.Unlock()
	return done, nil
}

// Counts returns the changes made so far.
func (w *workload) Counts() Counts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts
}

func (w *workload) countBackfill() {
	w.mu.Lock()
	w.counts.Backfills++
	w.mu.Unlock()
}

// Errors returns the failed transactions by error.
func (w *workload) Errors() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.errs))
	for k, v := range w.errs {
		out[k] = v
	}
	return out
}
