package capture

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/walsearch/walsearch/bus"
)

const (
	// slotBusyWait is how long START_REPLICATION waits for a slot still held
	// by a session that is going away.
	slotBusyWait = 30 * time.Second
	// shutdownTimeout bounds the final flush and confirmation on shutdown.
	shutdownTimeout = 10 * time.Second
)

// stream consumes the replication stream from start, publishes the decoded
// changes in log order and confirms positions the Publisher has flushed. It
// uses catalog (a regular connection) to look up keys and user types when
// Relation messages arrive, and to measure the slot's lag. Backfills run
// beside it (see backfiller); resume, when set, is the consistent point of
// an initial snapshot whose remaining chunks they read.
func (c *Capture) stream(ctx context.Context, rconn *pgconn.PgConn, catalog *pgx.Conn, start, resume bus.LSN) error {
	if c.cfg.TakeOverSlot {
		if err := c.takeOverSlot(ctx, catalog); err != nil {
			return err
		}
	}
	if err := startReplication(ctx, rconn, c.cfg.Slot, c.cfg.Publication, start, slotBusyWait); err != nil {
		return err
	}
	c.track.setPhase(PhaseStreaming)
	c.log.Info("streaming started", "from", start, "publication", c.cfg.Publication)

	bf := newBackfiller(c)
	if resume != 0 {
		if err := c.resumeSnapshot(ctx, catalog, bf, resume); err != nil {
			return err
		}
	} else if err := c.backfillNewTables(ctx, catalog, bf); err != nil {
		return err
	}
	if err := c.resumeBackfills(ctx, bf); err != nil {
		return err
	}
	bctx, stopBackfills := context.WithCancel(ctx)
	bfErr := make(chan error, 1)
	bfDone := make(chan struct{})
	go func() {
		defer close(bfDone)
		bfErr <- bf.run(bctx)
	}()
	defer func() {
		stopBackfills()
		<-bfDone
	}()

	// The slot is watched from its own goroutine and connection, so that its
	// lag is measured while the stream is blocked on the bus — which is when
	// it grows.
	wctx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		c.watchSlot(wctx)
	}()
	defer func() {
		stopWatch()
		<-watchDone
	}()

	wal, err := readWALLayout(ctx, catalog)
	if err != nil {
		// Watermarks then stay on page starts: read-your-writes after a
		// commit ending there waits for the server's next WAL record.
		c.log.Warn("cannot read the server's WAL layout; min_lsn waits may last until more WAL is written", "error", err)
	}
	s := &streamer{c: c, rconn: rconn, catalog: catalog, dec: newDecoder(c.codec), ack: newAcker(c.pub, &c.track, start), bf: bf,
		wal: wal, batch: make([]*bus.Change, 0, bus.MaxBatchEvents)}
	recv := newReadDeadline(ctx, rconn.Conn())
	defer recv.stop()
	now := time.Now()
	next := now.Add(c.cfg.StatusInterval)
	nextMark := now
	for {
		now = time.Now()
		if !now.Before(next) {
			if err := c.confirm(ctx, rconn, s.ack); err != nil {
				if ctx.Err() != nil {
					return c.finish(ctx, rconn, s.ack)
				}
				return err
			}
			next = now.Add(c.cfg.StatusInterval)
		}
		if !now.Before(nextMark) {
			if err := s.watermark(ctx); err != nil {
				if ctx.Err() != nil {
					return c.finish(ctx, rconn, s.ack)
				}
				return err
			}
			nextMark = now.Add(c.cfg.WatermarkInterval)
		}
		select {
		case err := <-bfErr:
			if err != nil {
				return err
			}
		default:
		}
		// The receive ends by the connection's read deadline, set only when
		// the next periodic task's time changes, and not by a context:
		// pgconn watches a context with a goroutine hand-off on every
		// receive, which cost as much as a tenth of capture's time on a
		// large transaction.
		recv.until(minTime(next, nextMark))
		if ctx.Err() != nil {
			return c.finish(ctx, rconn, s.ack)
		}
		msg, err := rconn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return c.finish(ctx, rconn, s.ack)
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive replication message: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.handle(ctx, m.Data); err != nil {
				if ctx.Err() != nil {
					return c.finish(ctx, rconn, s.ack)
				}
				return err
			}
		case *pgproto3.ErrorResponse:
			return explain(fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(m)))
		case *pgproto3.CopyDone:
			return errors.New("replication stream: the server ended it")
		}
	}
}

// readDeadline sets a connection's read deadline for the streaming loop,
// and moves it to the past when ctx ends so that a blocked receive returns
// (as a timeout, after which the loop sees ctx's end).
type readDeadline struct {
	conn    net.Conn
	due     time.Time
	release func() bool

	mu      sync.Mutex
	stopped bool
}

func newReadDeadline(ctx context.Context, conn net.Conn) *readDeadline {
	d := &readDeadline{conn: conn}
	d.release = context.AfterFunc(ctx, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.stopped {
			_ = conn.SetReadDeadline(time.Unix(1, 0))
		}
	})
	return d
}

// until sets the read deadline to due unless it is already. Set after ctx
// ended, it is never waited on: the loop checks ctx before it receives.
func (d *readDeadline) until(due time.Time) {
	if !due.Equal(d.due) {
		_ = d.conn.SetReadDeadline(due)
		d.due = due
	}
}

// stop releases ctx and clears the deadline, leaving the connection as
// the stream found it for whoever uses it next.
func (d *readDeadline) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.release()
	_ = d.conn.SetReadDeadline(time.Time{})
}

func minTime(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.Before(m) {
			m = t
		}
	}
	return m
}

// streamer is the state of one stream, owned by its goroutine.
type streamer struct {
	c        *Capture
	rconn    *pgconn.PgConn
	catalog  *pgx.Conn
	dec      *decoder
	ack      *acker
	bf       *backfiller
	wal      walLayout
	lastMark bus.LSN
	// batch holds changes of the open transaction not yet passed to the
	// Publisher: at most bus.MaxBatchEvents (one more for a key change's
	// insert), sent at commit or when full.
	batch []*bus.Change
}

// send passes the batched changes to the Publisher.
func (s *streamer) send(ctx context.Context) error {
	if len(s.batch) == 0 {
		return nil
	}
	err := s.c.publish(ctx, s.batch...)
	// Published (encoded, or dropped with the stream on an error): the
	// decoder may reuse the inserts.
	for _, ev := range s.batch {
		s.dec.recycle(ev)
	}
	clear(s.batch)
	s.batch = s.batch[:0]
	return err
}

// handle processes one CopyData message of the replication stream.
func (s *streamer) handle(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("%w: keepalive: %w", ErrProtocol, err)
		}
		if !s.dec.inTx {
			s.ack.idle(bus.LSN(pkm.ServerWALEnd))
		}
		if pkm.ReplyRequested {
			// Only what the bus has stored is ever reported.
			return sendStatus(ctx, s.rconn, s.ack.done, false)
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("%w: xlogdata: %w", ErrProtocol, err)
		}
		return s.apply(ctx, xld.WALData)
	}
	return nil
}

// apply decodes one pgoutput message and publishes its changes. Rows of the
// watermark table are signals for the backfills, not changes.
func (s *streamer) apply(ctx context.Context, data []byte) error {
	c := s.c
	res, err := s.dec.decodeBytes(data)
	if err != nil {
		return err
	}
	if res.relation != nil {
		if err := c.learnRelation(ctx, s.catalog, s.dec, res.relation); err != nil {
			return err
		}
	}
	for _, ev := range res.changes {
		if isWatermarkTable(ev.Schema, ev.Table) {
			if sig, ok := parseSignal(ev); ok {
				// A backfill chunk emitted here follows every change before it.
				if err := s.send(ctx); err != nil {
					return err
				}
				if err := s.bf.onSignal(ctx, sig, ev.LSN); err != nil {
					return err
				}
			}
			continue
		}
		if isOwnersTable(ev.Schema, ev.Table) {
			continue // walsearch's own bookkeeping, published FOR ALL TABLES
		}
		s.bf.onChange(ev)
		// A key change's insert stays with the delete before it (bus.Change.From).
		if len(s.batch) >= bus.MaxBatchEvents && len(ev.From) == 0 {
			if err := s.send(ctx); err != nil {
				return err
			}
		}
		s.batch = append(s.batch, ev)
	}
	if res.commit {
		if err := s.send(ctx); err != nil {
			return err
		}
		s.ack.committed(res.end)
	}
	return nil
}

// watermark publishes a bus watermark when the received position moved:
// every transaction that committed before it was published before it. A
// received position on a page start is published past the page's header,
// where pg_current_wal_insert_lsn() points after a commit ending there.
func (s *streamer) watermark(ctx context.Context) error {
	mark := s.wal.pastPageHeader(s.ack.pending)
	if s.dec.inTx || mark <= s.lastMark {
		return nil
	}
	ev := bus.NewWatermark(mark)
	// A watermark may fall on the commit LSN of a later transaction, whose
	// first change has position 0: a position no change has keeps their
	// message ids apart.
	ev.Pos = math.MaxUint64
	if err := s.c.publish(ctx, ev); err != nil {
		return err
	}
	s.lastMark = mark
	s.c.track.watermark.Store(uint64(s.lastMark))
	return nil
}

// watchSlot measures the WAL the slot holds back every SlotCheckInterval
// until ctx is done, and warns, at most every LagWarnInterval, when it is over
// MaxSlotLagBytes. A failed measurement is logged and retried on a new
// connection: watching never stops the stream.
func (c *Capture) watchSlot(ctx context.Context) {
	var (
		conn     *pgx.Conn
		lastWarn time.Time
		lastErr  time.Time
	)
	defer func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()
	tick := time.NewTicker(c.cfg.SlotCheckInterval)
	defer tick.Stop()
	for {
		lag, wal, err := c.measureSlot(ctx, &conn)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if conn != nil {
				conn.Close(context.WithoutCancel(ctx))
				conn = nil
			}
			if time.Since(lastErr) >= c.cfg.LagWarnInterval {
				lastErr = time.Now()
				c.log.Warn("cannot measure the replication slot's lag; retrying", "error", err)
			}
		case lag != nil:
			c.track.slotLag.Store(*lag)
			c.track.wal.Store(uint64(wal))
			if *lag > c.cfg.MaxSlotLagBytes && time.Since(lastWarn) >= c.cfg.LagWarnInterval {
				lastWarn = time.Now()
				c.log.Warn("replication slot holds back more WAL than capture.max_slot_lag_bytes: PostgreSQL keeps this WAL on disk until walsearch confirms it. "+
					"Check that the bus accepts changes (sink or transform backlog, disk space); if this walsearch is being decommissioned, "+
					"drop the slot with SELECT pg_drop_replication_slot('"+c.cfg.Slot+"'); consider max_slot_wal_keep_size on the server",
					"lag_bytes", *lag, "max_slot_lag_bytes", c.cfg.MaxSlotLagBytes, "confirmed", bus.LSN(c.track.confirmed.Load()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// measureSlot returns the WAL bytes the slot holds back (nil when the slot
// is gone) and the server's current WAL position, connecting *conn first if
// needed.
func (c *Capture) measureSlot(ctx context.Context, conn **pgx.Conn) (*int64, bus.LSN, error) {
	if *conn == nil {
		cfg, err := queryConfig(c.cfg.URL)
		if err != nil {
			return nil, 0, err
		}
		if *conn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
			return nil, 0, fmt.Errorf("connect to %s: %w", bus.RedactURL(c.cfg.URL), err)
		}
	}
	var lag *int64
	var wal string
	err := (*conn).QueryRow(ctx, `SELECT pg_current_wal_lsn()::text, (SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8
		FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)`, c.cfg.Slot).Scan(&wal, &lag)
	if err != nil {
		return nil, 0, fmt.Errorf("measure slot lag: %w", err)
	}
	lsn, err := bus.ParseLSN(wal)
	if err != nil {
		return nil, 0, fmt.Errorf("measure slot lag: %w", err)
	}
	return lag, lsn, nil
}

// learnRelation completes what a Relation message says with the catalogue:
// the key's column order and user-defined types the codec has not seen. It
// stores the table's schema for the sink.
func (c *Capture) learnRelation(ctx context.Context, catalog *pgx.Conn, dec *decoder, r *relation) error {
	_, key, err := identityKey(ctx, catalog, r.id)
	if err != nil {
		return err
	}
	dec.preferKey(r.id, key)
	for _, col := range r.columns {
		if col.oid >= firstUserOID && !c.codec.Known(col.oid) {
			if err := loadTypes(ctx, catalog, c.codec); err != nil {
				return err
			}
			break
		}
	}
	if r.skipped() {
		c.warnNoKey(r)
	}
	c.warnUnstreamedDefaults(ctx, catalog, r)
	return c.storeSchema(ctx, catalog, r, dec.lsn)
}

// confirm flushes the Publisher and confirms what it stored. A status update
// is sent even when nothing moved: it also tells the server we are alive.
func (c *Capture) confirm(ctx context.Context, rconn *pgconn.PgConn, ack *acker) error {
	before := ack.done
	lsn, err := ack.flush(ctx)
	if err != nil {
		return err
	}
	if err := ack.confirm(ctx, rconn, lsn); err != nil {
		return err
	}
	if lsn != before {
		c.log.Debug("slot position confirmed", "lsn", lsn)
	}
	return nil
}

// finish is the clean shutdown: confirm what the bus stored, with a bounded
// time of its own since ctx is already done.
func (c *Capture) finish(ctx context.Context, rconn *pgconn.PgConn, ack *acker) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	lsn, err := ack.flush(fctx)
	if err != nil {
		return err
	}
	if err := ack.confirm(fctx, rconn, lsn); err != nil {
		return err
	}
	c.log.Info("streaming stopped", "confirmed", lsn)
	return nil
}
