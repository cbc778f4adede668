package capture

import (
	"context"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walsearch/walsearch/bus"
)

// acker decides which slot position may be confirmed to PostgreSQL.
//
// received is the end LSN of the last transaction whose changes were all
// passed to Publish (or a keepalive position with nothing in flight before
// it). confirmed only ever takes a value received had before a Flush that
// succeeded, so the slot never moves past a change the bus has not stored:
// after a crash PostgreSQL replays from confirmed and nothing is lost.
type acker struct {
	pub     Publisher
	track   *tracker
	pending bus.LSN // received, owned by the streaming goroutine
	done    bus.LSN // confirmed
}

func newAcker(pub Publisher, track *tracker, start bus.LSN) *acker {
	a := &acker{pub: pub, track: track, pending: start, done: start}
	track.received.Store(uint64(start))
	track.confirmed.Store(uint64(start))
	return a
}

// committed records that every change of the transaction ending at end was
// passed to Publish.
func (a *acker) committed(end bus.LSN) {
	if end > a.pending {
		a.pending = end
		a.track.received.Store(uint64(end))
	}
}

// idle records a keepalive's WAL end while no transaction is open: every
// change before it was already received, so it may be confirmed too. This
// keeps the slot from holding WAL back while the captured tables are quiet.
func (a *acker) idle(walEnd bus.LSN) { a.committed(walEnd) }

// flush waits until the bus stored everything published so far and then
// returns the position that may be confirmed. It returns the position
// confirmed before when nothing new was received.
func (a *acker) flush(ctx context.Context) (bus.LSN, error) {
	target := a.pending
	if target == a.done {
		return a.done, nil
	}
	if err := a.pub.Flush(ctx); err != nil {
		return a.done, &PublishError{Op: "flush", Err: err}
	}
	return target, nil
}

// confirm tells PostgreSQL that the slot may advance to lsn (which flush
// returned) and records it.
func (a *acker) confirm(ctx context.Context, rconn *pgconn.PgConn, lsn bus.LSN) error {
	if err := sendStatus(ctx, rconn, lsn, false); err != nil {
		return err
	}
	if lsn > a.done {
		a.done = lsn
		a.track.confirmed.Store(uint64(lsn))
	}
	return nil
}

// sendStatus sends a standby status update reporting lsn as written,
// flushed and applied.
func sendStatus(ctx context.Context, rconn *pgconn.PgConn, lsn bus.LSN, replyRequested bool) error {
	err := pglogrepl.SendStandbyStatusUpdate(ctx, rconn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(lsn),
		WALFlushPosition: pglogrepl.LSN(lsn),
		WALApplyPosition: pglogrepl.LSN(lsn),
		ClientTime:       time.Now(),
		ReplyRequested:   replyRequested,
	})
	if err != nil {
		return &statusError{err}
	}
	return nil
}

type statusError struct{ err error }

func (e *statusError) Error() string { return "send standby status: " + e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }
