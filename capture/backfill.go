package capture

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
)

// backfillJob is one table to read while streaming continues: a backfill
// requested by `walsearch backfill`, a table new to the publication, or the
// rest of an initial snapshot that a crash cut short.
type backfillJob struct {
	name     tableName
	key      string // state key of its progress
	prog     tableProgress
	rate     float64 // rows per second, 0: no limit
	snapshot bool    // continues the initial snapshot
	// keys, for a repair, are the only rows to read (as PostgreSQL prints
	// their keys); a repair keeps no progress: asked again, it runs again.
	keys [][]string
}

// chunkWindow is one backfill chunk between its watermarks, shared by the
// backfill goroutine (which reads the rows) and the streaming goroutine
// (which sees the watermarks and the changes in the log).
type chunkWindow struct {
	table     tableName
	open      bool            // low watermark seen in the log
	changed   map[string]bool // keys changed in the log since the low watermark
	truncated bool
	rows      []*bus.Change // the chunk, set before the high watermark is written
	emitted   chan struct{} // closed once the chunk's rows are on the bus
}

// backfiller runs backfill jobs one after the other with the DBLog watermark
// algorithm: for each chunk it writes a low watermark, reads the chunk by
// key, writes a high watermark; the streaming goroutine collects the keys
// changed in the log between the two, and at the high watermark publishes
// the chunk's other rows, in log order, at the high watermark's commit LSN.
// A row changed between the watermarks is dropped from the chunk: the log
// already carries a version at least as new.
type backfiller struct {
	c    *Capture
	jobs chan *backfillJob

	mu      sync.Mutex
	windows map[int64]*chunkWindow
	queued  []string // tables queued or running, for Status
	// snapshotLeft counts snapshot continuation jobs not finished yet.
	snapshotLeft int
	snapshotLSN  bus.LSN
}

func newBackfiller(c *Capture) *backfiller {
	return &backfiller{c: c, jobs: make(chan *backfillJob, 1024), windows: make(map[int64]*chunkWindow)}
}

// enqueue adds a job; it never blocks the streaming goroutine for long: the
// queue is large and a full queue drops the request with an error log.
func (b *backfiller) enqueue(j *backfillJob) {
	select {
	case b.jobs <- j:
		b.mu.Lock()
		b.queued = append(b.queued, j.name.String())
		b.mu.Unlock()
		b.c.track.setBackfills(b.status())
	default:
		b.c.log.Error("too many backfills queued: request dropped, ask again later", "table", j.name.String())
	}
}

func (b *backfiller) status() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.queued)
}

func (b *backfiller) dequeued(name string) {
	b.mu.Lock()
	if i := slices.Index(b.queued, name); i >= 0 {
		b.queued = slices.Delete(b.queued, i, i+1)
	}
	b.mu.Unlock()
	b.c.track.setBackfills(b.status())
}

// run executes jobs until ctx is done. It owns its own connection.
func (b *backfiller) run(ctx context.Context) error {
	cfg, err := queryConfig(b.c.cfg.URL)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect backfill to %s: %w", bus.RedactURL(b.c.cfg.URL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-b.jobs:
			err := b.runJob(ctx, conn, j)
			b.dequeued(j.name.String())
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("backfill %s: %w", j.name, err)
			}
		}
	}
}

func (b *backfiller) runJob(ctx context.Context, conn *pgx.Conn, j *backfillJob) error {
	c := b.c
	t, found, err := findTable(ctx, conn, c.cfg.Publication, j.name)
	if err != nil {
		return err
	}
	if !found || t.rel.skipped() {
		if !found {
			c.log.Warn("backfill skipped: the table is not published (any more)", "table", j.name.String())
		} else {
			c.warnNoKey(t.rel)
		}
		if j.keys != nil {
			return nil
		}
		j.prog.Ranges = []keyRange{{Done: true}}
		return b.finish(ctx, j)
	}
	if j.keys != nil {
		if !t.chunkable() {
			c.log.Warn("repair skipped: the table has no unique key", "table", j.name.String())
			return nil
		}
		began := time.Now()
		if err := b.repairKeys(ctx, conn, t, j.keys); err != nil {
			return err
		}
		c.track.backfillRows.Add(uint64(len(j.keys)))
		c.log.Info("repair finished", "table", j.name.String(), "keys", len(j.keys),
			"duration", time.Since(began).Round(time.Millisecond))
		return nil
	}
	if len(j.prog.Ranges) == 0 {
		j.prog.Ranges = []keyRange{{}}
	}
	limit := c.cfg.ChunkRows
	if j.rate > 0 {
		limit = max(1, min(limit, int(j.rate)))
	}
	if !t.chunkable() {
		limit = 0
	}
	began := time.Now()
	c.log.Info("backfill started", "table", j.name.String(), "snapshot", j.snapshot, "rate", j.rate, "rows_done", j.prog.rows())
	for i := range j.prog.Ranges {
		for !j.prog.Ranges[i].Done {
			start := time.Now()
			rg := j.prog.Ranges[i]
			res, err := b.chunk(ctx, conn, t, rg, limit)
			if err != nil {
				return err
			}
			if res.last != nil {
				rg.Last = res.last
			}
			rg.Rows += res.rows
			rg.Done = limit == 0 || res.rows < uint64(limit)
			j.prog.Ranges[i] = rg
			if err := c.putJSON(ctx, j.key, &j.prog); err != nil {
				return err
			}
			c.track.backfillRows.Add(res.rows)
			if j.rate > 0 && res.rows > 0 {
				wait := time.Duration(float64(res.rows)/j.rate*float64(time.Second)) - time.Since(start)
				if wait > 0 {
					timer := time.NewTimer(wait)
					select {
					case <-ctx.Done():
						timer.Stop()
						return ctx.Err()
					case <-timer.C:
					}
				}
			}
		}
	}
	c.log.Info("backfill finished", "table", j.name.String(), "rows", j.prog.rows(),
		"duration", time.Since(began).Round(time.Millisecond))
	return b.finish(ctx, j)
}

// finish records a finished job; the last continuation job of a snapshot
// records the snapshot as complete.
func (b *backfiller) finish(ctx context.Context, j *backfillJob) error {
	c := b.c
	if err := c.putJSON(ctx, j.key, &j.prog); err != nil {
		return err
	}
	if !j.snapshot {
		return c.removeActiveBackfill(ctx, j.name)
	}
	b.mu.Lock()
	b.snapshotLeft--
	left, lsn := b.snapshotLeft, b.snapshotLSN
	b.mu.Unlock()
	if left == 0 {
		if err := c.finishSnapshot(ctx, lsn); err != nil {
			return err
		}
		c.log.Info("snapshot finished", "lsn", lsn)
	}
	return nil
}

// chunk reads one chunk between a low and a high watermark and waits until
// the streaming goroutine published it.
func (b *backfiller) chunk(ctx context.Context, conn *pgx.Conn, t snapshotTable, rg keyRange, limit int) (chunkResult, error) {
	var res chunkResult
	err := b.window(ctx, conn, t, func(enc *rowEncoder, rows *[]*bus.Change) error {
		var err error
		res, err = readChunk(ctx, conn.PgConn(), t, rg, limit, func(fields []copyField) error {
			ev, err := enc.change(fields, 0, uint64(len(*rows)))
			*rows = append(*rows, ev)
			return err
		})
		return err
	})
	return res, err
}

// window writes a low watermark, reads rows with read in a read-only
// transaction, writes a high watermark and waits until the streaming
// goroutine published the rows not changed in the log in between.
func (b *backfiller) window(ctx context.Context, conn *pgx.Conn, t snapshotTable,
	read func(enc *rowEncoder, rows *[]*bus.Change) error) error {
	c := b.c
	name := tableName{t.rel.schema, t.rel.table}
	id := time.Now().UnixNano()
	w := &chunkWindow{table: name, changed: make(map[string]bool), emitted: make(chan struct{})}
	b.mu.Lock()
	b.windows[id] = w
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.windows, id)
		b.mu.Unlock()
	}()
	if _, err := writeSignal(ctx, conn, c.cfg.Slot, signalLow, name.String(), id, 0); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin chunk: %w", err)
	}
	var rows []*bus.Change
	if err := read(newRowEncoder(c.codec, t.rel), &rows); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("end chunk: %w", err)
	}
	if c.faultAfterChunkRead != nil {
		c.faultAfterChunkRead()
	}
	b.mu.Lock()
	w.rows = rows
	b.mu.Unlock()
	if _, err := writeSignal(ctx, conn, c.cfg.Slot, signalHigh, name.String(), id, 0); err != nil {
		return err
	}
	select {
	case <-w.emitted:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onChange notes, on the streaming goroutine, a change of the log for the
// open chunk windows of its table.
func (b *backfiller) onChange(ev *bus.Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.windows) == 0 {
		return
	}
	var id string
	for _, w := range b.windows {
		if !w.open || w.table.schema != ev.Schema || w.table.table != ev.Table {
			continue
		}
		if ev.Op == bus.OpTruncate {
			w.truncated = true
			continue
		}
		if id == "" {
			id = bus.DocumentID(ev.Key)
		}
		w.changed[id] = true
	}
}

// onSignal handles, on the streaming goroutine, a row of the watermark table
// committed at lsn. A high watermark publishes its chunk.
func (b *backfiller) onSignal(ctx context.Context, s signal, lsn bus.LSN) error {
	c := b.c
	if s.slot != c.cfg.Slot {
		return nil
	}
	switch s.kind {
	case signalLow:
		b.mu.Lock()
		if w := b.windows[s.chunk]; w != nil {
			w.open = true
		}
		b.mu.Unlock()
	case signalHigh:
		b.mu.Lock()
		w := b.windows[s.chunk]
		var rows []*bus.Change
		if w != nil && w.open && !w.truncated {
			for _, ev := range w.rows {
				if !w.changed[bus.DocumentID(ev.Key)] {
					rows = append(rows, ev)
				}
			}
		}
		b.mu.Unlock()
		if w == nil {
			return nil // a watermark of a chunk before a restart
		}
		for i, ev := range rows {
			ev.LSN, ev.Pos = lsn, uint64(i)
		}
		if err := c.publish(ctx, rows...); err != nil {
			return err
		}
		if err := c.flush(ctx); err != nil {
			return err
		}
		close(w.emitted)
	case signalBackfill:
		return c.requestedBackfill(ctx, b, s)
	}
	return nil
}

// activeBackfills is the state of the backfills requested and not finished,
// so that a restart resumes them.
type activeBackfills struct {
	Tables []string `json:"tables"`
}

func (c *Capture) activeKey() string { return "capture." + c.cfg.Slot + ".backfills" }

// requestedBackfill queues the backfill a request row asked for, unless the
// row is a replay of a request already taken.
func (c *Capture) requestedBackfill(ctx context.Context, b *backfiller, s signal) error {
	name, err := parseTableName(s.table)
	if err != nil {
		c.log.Warn("backfill request ignored", "error", err)
		return nil
	}
	if s.keys != nil {
		c.log.Info("repair requested", "table", name.String(), "request", s.id, "keys", len(s.keys))
		b.enqueue(&backfillJob{name: name, keys: s.keys})
		return nil
	}
	key := c.progressKey("backfill", name.schema, name.table)
	var prev tableProgress
	found, err := c.getJSON(ctx, key, &prev)
	if err != nil {
		return err
	}
	if found && prev.LSN >= bus.LSN(s.id) {
		return nil // replayed after a restart: resumed from its progress instead
	}
	c.log.Info("backfill requested", "table", name.String(), "request", s.id, "rate", s.rate)
	return c.startBackfill(ctx, b, name, bus.LSN(s.id), s.rate)
}

// startBackfill records a new backfill of name as active and queues it.
func (c *Capture) startBackfill(ctx context.Context, b *backfiller, name tableName, id bus.LSN, rate float64) error {
	key := c.progressKey("backfill", name.schema, name.table)
	j := &backfillJob{name: name, key: key, rate: rate, prog: tableProgress{LSN: id, Ranges: []keyRange{{}}}}
	if err := c.putJSON(ctx, key, &j.prog); err != nil {
		return err
	}
	var active activeBackfills
	if _, err := c.getJSON(ctx, c.activeKey(), &active); err != nil {
		return err
	}
	if !slices.Contains(active.Tables, name.String()) {
		active.Tables = append(active.Tables, name.String())
		if err := c.putJSON(ctx, c.activeKey(), &active); err != nil {
			return err
		}
	}
	b.enqueue(j)
	return nil
}

func (c *Capture) removeActiveBackfill(ctx context.Context, name tableName) error {
	var active activeBackfills
	if _, err := c.getJSON(ctx, c.activeKey(), &active); err != nil {
		return err
	}
	active.Tables = slices.DeleteFunc(active.Tables, func(s string) bool { return s == name.String() })
	return c.putJSON(ctx, c.activeKey(), &active)
}

// resumeBackfills queues the backfills a previous Run did not finish.
func (c *Capture) resumeBackfills(ctx context.Context, b *backfiller) error {
	var active activeBackfills
	if _, err := c.getJSON(ctx, c.activeKey(), &active); err != nil {
		return err
	}
	for _, s := range active.Tables {
		name, err := parseTableName(s)
		if err != nil {
			continue
		}
		j := &backfillJob{name: name, key: c.progressKey("backfill", name.schema, name.table)}
		found, err := c.getJSON(ctx, j.key, &j.prog)
		if err != nil {
			return err
		}
		if found && j.prog.done() {
			if err := c.removeActiveBackfill(ctx, name); err != nil {
				return err
			}
			continue
		}
		b.enqueue(j)
	}
	return nil
}

// resumeSnapshot queues, as backfill jobs, what an initial snapshot cut short
// by a crash had not read yet: the unfinished ranges of every table, from
// their last recorded chunk on. The chunks read before the crash are on the
// bus at the slot's consistent point lsn, and the stream replays every change
// since lsn, so only the rest needs reading, at a new consistent point,
// which the watermarks give each chunk.
func (c *Capture) resumeSnapshot(ctx context.Context, q queryer, b *backfiller, lsn bus.LSN) error {
	tables, err := publishedTables(ctx, q, c.cfg.Publication)
	if err != nil {
		return err
	}
	var jobs []*backfillJob
	var reread uint64
	for _, t := range tables {
		j := &backfillJob{name: tableName{t.rel.schema, t.rel.table}, snapshot: true,
			key: c.progressKey("snapshot", t.rel.schema, t.rel.table)}
		found, err := c.getJSON(ctx, j.key, &j.prog)
		if err != nil {
			return err
		}
		if !found || j.prog.LSN != lsn {
			j.prog = tableProgress{LSN: lsn, Ranges: []keyRange{{}}}
		}
		if j.prog.Skipped || j.prog.done() {
			continue
		}
		reread += j.prog.rows()
		jobs = append(jobs, j)
	}
	c.log.Info("resuming the initial snapshot after its last recorded chunks", "lsn", lsn,
		"tables_left", len(jobs), "rows_already_read", reread)
	b.mu.Lock()
	b.snapshotLeft, b.snapshotLSN = len(jobs), lsn
	b.mu.Unlock()
	if len(jobs) == 0 {
		return c.finishSnapshot(ctx, lsn)
	}
	for _, j := range jobs {
		b.enqueue(j)
	}
	return nil
}

// backfillNewTables queues a backfill for every published table that no
// snapshot or backfill has read: a table added to capture.tables since the
// slot was created. Its existing rows are not in the log.
func (c *Capture) backfillNewTables(ctx context.Context, q queryer, b *backfiller) error {
	tables, err := publishedTables(ctx, q, c.cfg.Publication)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t.rel.skipped() {
			continue
		}
		var p tableProgress
		found, err := c.getJSON(ctx, c.progressKey("snapshot", t.rel.schema, t.rel.table), &p)
		if err != nil {
			return err
		}
		if found {
			continue
		}
		if found, err = c.getJSON(ctx, c.progressKey("backfill", t.rel.schema, t.rel.table), &p); err != nil || found {
			if err != nil {
				return err
			}
			continue
		}
		name := tableName{t.rel.schema, t.rel.table}
		c.log.Info("table new to the publication: backfilling its existing rows", "table", name.String())
		if err := c.startBackfill(ctx, b, name, 1, 0); err != nil {
			return err
		}
	}
	return nil
}
