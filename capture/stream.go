package capture

import (
	"context"
	"errors"
	"fmt"
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
// Relation messages arrive.
func (c *Capture) stream(ctx context.Context, rconn *pgconn.PgConn, catalog *pgx.Conn, start bus.LSN) error {
	if err := startReplication(ctx, rconn, c.cfg.Slot, c.cfg.Publication, start, slotBusyWait); err != nil {
		return err
	}
	c.track.setPhase(PhaseStreaming)
	c.log.Info("streaming started", "from", start, "publication", c.cfg.Publication)

	dec := newDecoder(c.codec)
	ack := newAcker(c.pub, &c.track, start)
	next := time.Now().Add(c.cfg.StatusInterval)
	for {
		if !time.Now().Before(next) {
			if err := c.confirm(ctx, rconn, ack); err != nil {
				if ctx.Err() != nil {
					return c.finish(ctx, rconn, ack)
				}
				return err
			}
			next = time.Now().Add(c.cfg.StatusInterval)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		msg, err := rconn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return c.finish(ctx, rconn, ack)
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive replication message: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if err := c.handle(ctx, rconn, catalog, dec, ack, m.Data); err != nil {
				if ctx.Err() != nil {
					return c.finish(ctx, rconn, ack)
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

// handle processes one CopyData message of the replication stream.
func (c *Capture) handle(ctx context.Context, rconn *pgconn.PgConn, catalog *pgx.Conn, dec *decoder, ack *acker, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("%w: keepalive: %w", ErrProtocol, err)
		}
		if !dec.inTx {
			ack.idle(bus.LSN(pkm.ServerWALEnd))
		}
		if pkm.ReplyRequested {
			// Only what the bus has stored is ever reported.
			return sendStatus(ctx, rconn, ack.done, false)
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("%w: xlogdata: %w", ErrProtocol, err)
		}
		return c.apply(ctx, catalog, dec, ack, xld.WALData)
	}
	return nil
}

// apply decodes one pgoutput message and publishes its changes.
func (c *Capture) apply(ctx context.Context, catalog *pgx.Conn, dec *decoder, ack *acker, data []byte) error {
	res, err := dec.decodeBytes(data)
	if err != nil {
		return err
	}
	if res.relation != nil {
		if err := c.learnRelation(ctx, catalog, dec, res.relation); err != nil {
			return err
		}
	}
	for _, ev := range res.changes {
		if err := c.pub.Publish(ctx, ev); err != nil {
			return &PublishError{Op: "publish", Err: err}
		}
	}
	if res.commit {
		ack.committed(res.end)
	}
	return nil
}

// learnRelation completes what a Relation message says with the catalogue:
// the key's column order and user-defined types the codec has not seen.
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
	return nil
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
