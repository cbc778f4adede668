package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/walsearch/walsearch/bus"
)

// snapshotRecord is what the StateStore keeps once a snapshot is complete.
type snapshotRecord struct {
	LSN      bus.LSN   `json:"lsn"`
	Finished time.Time `json:"finished"`
}

// snapshotStart is recorded when a snapshot of a new slot begins, and
// cleared before a slot is created: while it is set, the slot is the one
// whose consistent point it names, and the per-table progress records with
// that LSN say which chunks are already on the bus.
type snapshotStart struct {
	LSN     bus.LSN   `json:"lsn"`
	Started time.Time `json:"started,omitzero"`
}

// tableProgress is the per-table progress of a snapshot or a backfill: the
// key ranges still to read. It is written after every chunk the bus stored.
type tableProgress struct {
	// LSN is the snapshot's consistent point, or a backfill's request id.
	LSN     bus.LSN    `json:"lsn"`
	Ranges  []keyRange `json:"ranges"`
	Skipped bool       `json:"skipped,omitempty"`
}

func (p *tableProgress) done() bool {
	for _, r := range p.Ranges {
		if !r.Done {
			return false
		}
	}
	return true
}

func (p *tableProgress) rows() uint64 {
	var n uint64
	for _, r := range p.Ranges {
		n += r.Rows
	}
	return n
}

// snapshotKey is the StateStore key of the slot's snapshot record.
func (c *Capture) snapshotKey() string { return "capture." + c.cfg.Slot + ".snapshot" }

func (c *Capture) snapshotStartKey() string { return "capture." + c.cfg.Slot + ".snapshot_start" }

// progressKey is the StateStore key of a table's snapshot ("snapshot") or
// backfill ("backfill") progress.
func (c *Capture) progressKey(kind, schema, table string) string {
	return "capture." + c.cfg.Slot + "." + kind + "." + bus.EscapeToken(schema) + "." + bus.EscapeToken(table)
}

func (c *Capture) getJSON(ctx context.Context, key string, v any) (bool, error) {
	b, found, err := c.state.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("read state %s: %w", key, err)
	}
	if !found || len(b) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("read state %s: %w", key, err)
	}
	return true, nil
}

func (c *Capture) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write state %s: %w", key, err)
	}
	if err := c.state.Put(ctx, key, b); err != nil {
		return fmt.Errorf("write state %s: %w", key, err)
	}
	return nil
}

// snapshotDone reports whether a snapshot of the slot was recorded as complete.
func (c *Capture) snapshotDone(ctx context.Context) (bool, error) {
	var rec snapshotRecord
	found, err := c.getJSON(ctx, c.snapshotKey(), &rec)
	return found && rec.LSN != 0, err
}

// finishSnapshot records the snapshot as complete.
func (c *Capture) finishSnapshot(ctx context.Context, lsn bus.LSN) error {
	return c.putJSON(ctx, c.snapshotKey(), snapshotRecord{LSN: lsn, Finished: time.Now().UTC()})
}

// snapshotTable is one published table as the snapshot reads it.
type snapshotTable struct {
	rel         *relation
	partitioned bool
	unique      bool  // the key is a primary key or replica identity index
	estimate    int64 // rows, from the planner's statistics
}

// publish hands evs to the bus in one call (see Publisher).
func (c *Capture) publish(ctx context.Context, evs ...*bus.Change) error {
	if err := c.pub.Publish(ctx, evs...); err != nil {
		return &PublishError{Op: "publish", Err: err}
	}
	return nil
}

// publishMessage hands a message built from snapshot rows to the bus.
func (c *Capture) publishMessage(ctx context.Context, m bus.Message) error {
	if err := c.pub.PublishMessage(ctx, m); err != nil {
		return &PublishError{Op: "publish", Err: err}
	}
	return nil
}

// flush waits until the bus stored everything published so far.
func (c *Capture) flush(ctx context.Context) error {
	if err := c.pub.Flush(ctx); err != nil {
		return &PublishError{Op: "flush", Err: err}
	}
	return nil
}

// tablePlan is one table of a running snapshot; its progress is written by
// the workers reading its ranges.
type tablePlan struct {
	index int // in the tracker's tables
	t     snapshotTable
	key   string

	mu   sync.Mutex
	prog tableProgress
}

// snapshot reads every published table inside the snapshot exported with the
// slot and publishes each row as OpRead at the slot's consistent point, so
// that streaming from that point continues exactly where the snapshot ends.
//
// Tables are cut into key ranges read by SnapshotWorkers connections that all
// import the exported snapshot (the replication connection that exported it
// stays idle until the snapshot is over, which keeps it valid). Each range is
// read in chunks of ChunkRows rows in key order; after a chunk the bus
// stored, the table's progress is recorded so that a crash resumes after it
// (see resumeJobs).
func (c *Capture) snapshot(ctx context.Context, conn *pgx.Conn, slot createdSlot) error {
	began := time.Now()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(slot.snapshot)); err != nil {
		return fmt.Errorf("use exported snapshot %s: %w", slot.snapshot, err)
	}
	tables, err := publishedTables(ctx, tx, c.cfg.Publication)
	if err != nil {
		return err
	}
	if err := c.putJSON(ctx, c.snapshotStartKey(), snapshotStart{LSN: slot.consistentPoint, Started: began.UTC()}); err != nil {
		return err
	}
	progress := make([]TableStatus, len(tables))
	plans := make([]*tablePlan, 0, len(tables))
	for i, t := range tables {
		progress[i] = TableStatus{Schema: t.rel.schema, Table: t.rel.table, State: TablePending, Total: uint64(max(t.estimate, 0))}
		if err := c.storeSchema(ctx, tx, t.rel, slot.consistentPoint); err != nil {
			return err
		}
		p := &tablePlan{index: i, t: t, key: c.progressKey("snapshot", t.rel.schema, t.rel.table),
			prog: tableProgress{LSN: slot.consistentPoint}}
		if t.rel.skipped() {
			c.warnNoKey(t.rel)
			progress[i].State = TableSkipped
			p.prog.Skipped = true
		} else if p.prog.Ranges, err = splitRanges(ctx, tx, t, c.cfg.SnapshotWorkers, c.cfg.ChunkRows); err != nil {
			return err
		}
		if err := c.putJSON(ctx, p.key, &p.prog); err != nil {
			return err
		}
		if !p.prog.Skipped {
			plans = append(plans, p)
		}
	}
	c.track.startSnapshot(slot.consistentPoint, progress)
	c.log.Info("snapshot started", "lsn", slot.consistentPoint, "tables", len(tables), "workers", c.cfg.SnapshotWorkers)

	stopProgress := c.reportProgress(ctx)
	err = c.readSnapshot(ctx, slot, plans)
	stopProgress()
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("end snapshot: %w", err)
	}
	if err := c.finishSnapshot(ctx, slot.consistentPoint); err != nil {
		return err
	}
	st := c.track.status(c.cfg.Slot, c.cfg.Publication)
	c.log.Info("snapshot finished", "lsn", slot.consistentPoint, "rows", st.Snapshot.RowsDone,
		"duration", time.Since(began).Round(time.Millisecond))
	return nil
}

// rangeUnit is one key range of one table, the unit a worker takes.
type rangeUnit struct {
	plan *tablePlan
	r    int
}

// readSnapshot runs the workers over every unfinished range of plans, and
// the recorder of their progress.
func (c *Capture) readSnapshot(ctx context.Context, slot createdSlot, plans []*tablePlan) error {
	var units []rangeUnit
	for _, p := range plans {
		for i, r := range p.prog.Ranges {
			if !r.Done {
				units = append(units, rangeUnit{plan: p, r: i})
			}
		}
	}
	if len(units) == 0 {
		return nil
	}
	queue := make(chan rangeUnit, len(units))
	for _, u := range units {
		queue <- u
	}
	close(queue)
	g, gctx := errgroup.WithContext(ctx)
	workers := min(c.cfg.SnapshotWorkers, len(units))
	read := make(chan chunkRead, workers)
	var reading sync.WaitGroup
	reading.Add(workers)
	for range workers {
		g.Go(func() error {
			defer reading.Done()
			return c.snapshotWorker(gctx, slot, queue, read)
		})
	}
	g.Go(func() error {
		reading.Wait()
		close(read)
		return nil
	})
	g.Go(func() error { return c.recordProgress(gctx, read) })
	if err := g.Wait(); err != nil {
		return err
	}
	for _, p := range plans {
		c.track.setTable(p.index, TableDone, p.prog.rows())
	}
	return nil
}

// chunkRead is a chunk a worker read and published: its range now stands
// at rg, rows further on.
type chunkRead struct {
	unit rangeUnit
	rg   keyRange
	rows uint64
}

// recordProgress records the chunks workers read, in the order each range
// read them, once the bus stored them: a crash then resumes after them.
// Workers go on with their next chunk meanwhile instead of waiting for the
// bus; the chunks waiting here are recorded together, after one flush.
func (c *Capture) recordProgress(ctx context.Context, read <-chan chunkRead) error {
	for {
		var done []chunkRead
		select {
		case r, ok := <-read:
			if !ok {
				return nil
			}
			done = append(done, r)
		case <-ctx.Done():
			return ctx.Err()
		}
	more:
		for {
			select {
			case r, ok := <-read:
				if !ok {
					break more
				}
				done = append(done, r)
			default:
				break more
			}
		}
		if err := c.flush(ctx); err != nil {
			return err
		}
		var touched []*tablePlan
		for _, r := range done {
			p := r.unit.plan
			p.mu.Lock()
			p.prog.Ranges[r.unit.r] = r.rg
			p.mu.Unlock()
			if !slices.Contains(touched, p) {
				touched = append(touched, p)
			}
		}
		for _, p := range touched {
			p.mu.Lock()
			err := c.putJSON(ctx, p.key, &p.prog)
			p.mu.Unlock()
			if err != nil {
				return err
			}
		}
		for _, r := range done {
			c.track.addRows(r.unit.plan.index, r.rows)
		}
	}
}

// snapshotWorker opens a connection, imports the exported snapshot and reads
// ranges from queue until it is empty, handing each chunk it read to read.
func (c *Capture) snapshotWorker(ctx context.Context, slot createdSlot, queue <-chan rangeUnit, read chan<- chunkRead) error {
	cfg, err := queryConfig(c.cfg.URL)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect snapshot worker to %s: %w", bus.RedactURL(c.cfg.URL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin snapshot worker: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(slot.snapshot)); err != nil {
		return fmt.Errorf("import exported snapshot %s: %w", slot.snapshot, err)
	}
	for u := range queue {
		if err := c.readRange(ctx, conn, slot.consistentPoint, u, read); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// readRange reads one range chunk by chunk. Rows go to the bus in read
// batches; each chunk, once published, goes to read for its progress to be
// recorded.
func (c *Capture) readRange(ctx context.Context, conn *pgx.Conn, lsn bus.LSN, u rangeUnit, read chan<- chunkRead) error {
	p := u.plan
	p.mu.Lock()
	rg := p.prog.Ranges[u.r]
	p.mu.Unlock()
	c.track.setState(p.index, TableRunning)
	limit := c.cfg.ChunkRows
	if !p.t.chunkable() {
		limit = 0
	}
	r := p.t.rel
	enc := newRowEncoder(c.codec, r)
	keyNames := make([]string, len(r.key))
	for i, k := range r.key {
		keyNames[i] = r.columns[k].name
	}
	batch := bus.NewReadBatches(r.schema, r.table, keyNames, lsn, c.cfg.Partitions)
	var (
		row    []byte      // the row being added, reused
		fields []copyField // its fields
		key    = func() []bus.Column { return enc.key(fields) }
	)
	for !rg.Done {
		var pos uint64
		res, err := readChunk(ctx, conn.PgConn(), p.t, rg, limit, func(f []copyField) error {
			var err error
			if row, err = enc.encode(row[:0], f); err != nil {
				return err
			}
			fields = f
			m, full := batch.Add(pos, row, key)
			pos++
			if full {
				return c.publishMessage(ctx, m)
			}
			return nil
		})
		for err == nil {
			m, ok := batch.Take()
			if !ok {
				break
			}
			err = c.publishMessage(ctx, m)
		}
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if res.last != nil {
			rg.Last = res.last
		}
		rg.Rows += res.rows
		rg.Done = limit == 0 || res.rows < uint64(limit)
		select {
		case read <- chunkRead{unit: u, rg: rg, rows: res.rows}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// splitRanges cuts a table with a single integer key into up to workers
// ranges of equal key width, so that workers can share a large table. Other
// tables are one range.
func splitRanges(ctx context.Context, tx pgx.Tx, t snapshotTable, workers, chunk int) ([]keyRange, error) {
	whole := []keyRange{{}}
	if !t.chunkable() || len(t.rel.key) != 1 || workers < 2 || t.estimate < 2*int64(chunk) {
		return whole, nil
	}
	col := t.rel.columns[t.rel.key[0]]
	switch col.oid {
	case 20, 21, 23: // int8, int2, int4
	default:
		return whole, nil
	}
	name := pgx.Identifier{col.name}.Sanitize()
	var lo, hi *int64
	err := tx.QueryRow(ctx, fmt.Sprintf("SELECT min(%s)::int8, max(%s)::int8 FROM %s", name, name,
		pgx.Identifier{t.rel.schema, t.rel.table}.Sanitize())).Scan(&lo, &hi)
	if err != nil {
		return nil, fmt.Errorf("split %s into ranges: %w", t.rel.qualifiedName(), err)
	}
	if lo == nil || hi == nil || *hi <= *lo {
		return whole, nil
	}
	n := min(int64(workers), t.estimate/int64(chunk))
	width := uint64(*hi-*lo)/uint64(n) + 1
	out := make([]keyRange, n)
	for i := range n {
		if i > 0 {
			out[i].Last = []string{strconv.FormatInt(*lo+int64(uint64(i)*width)-1, 10)}
		}
		if i < n-1 {
			out[i].Hi = []string{strconv.FormatInt(*lo+int64(uint64(i+1)*width), 10)}
		}
	}
	return out, nil
}

func quoteLiteral(s string) string { return "'" + replaceQuotes(s) + "'" }

func replaceQuotes(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// warnNoKey tells the operator, once per table and Run, why a table's changes
// are not captured and how to fix it.
func (c *Capture) warnNoKey(r *relation) {
	c.warnMu.Lock()
	defer c.warnMu.Unlock()
	if c.warned == nil {
		c.warned = make(map[string]bool)
	}
	if c.warned[r.qualifiedName()] {
		return
	}
	c.warned[r.qualifiedName()] = true
	name := pgx.Identifier{r.schema, r.table}.Sanitize()
	c.log.Warn("table has no primary key and is not REPLICA IDENTITY FULL: its rows cannot be identified and are skipped; add a primary key or run ALTER TABLE "+name+" REPLICA IDENTITY FULL",
		"table", r.qualifiedName())
}
