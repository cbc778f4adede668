package sink

import (
	"context"
	"fmt"
	"time"
)

// Resync (walsearch resync) rebuilds a table's index from PostgreSQL: it is
// a reindex whose new index is filled by a backfill of the table instead of
// a copy of the old index. The sink creates the new index and writes every
// document to both, as for a reindex; the caller then backfills the table,
// waits until the backfill is applied, and marks the resync ready with
// MarkResyncReady; the sink then moves the alias (without comparing counts:
// documents the old index held without a row are left behind on purpose).

// ReindexFromPostgres is ReindexState.Source for a resync.
const ReindexFromPostgres = "postgres"

// ResyncReadyKey is the control store key MarkResyncReady writes: the name
// of the new index whose backfill is complete.
const ResyncReadyKey = "sink.reindex.ready"

// RequestResync asks the running sink to rebuild the index of index from a
// backfill. It fails with ErrReindexRunning while a reindex is active.
func RequestResync(ctx context.Context, store ControlStore, index string) (*ReindexState, error) {
	return requestReindex(ctx, store, index, ReindexFromPostgres)
}

// MarkResyncReady tells the sink that the new index to was filled: every
// row of the table was backfilled and applied.
func MarkResyncReady(ctx context.Context, store ControlStore, to string) error {
	if err := store.Put(ctx, ResyncReadyKey, []byte(to)); err != nil {
		return fmt.Errorf("mark resync ready: %w", err)
	}
	return nil
}

// waitResyncReady waits until MarkResyncReady named to.
func (s *Sink) waitResyncReady(ctx context.Context, to string) error {
	t := time.NewTicker(DefaultControlPoll)
	defer t.Stop()
	for {
		v, ok, err := s.cfg.Control.Get(ctx, ResyncReadyKey)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("cannot read the resync state", "error", err)
		}
		if ok && string(v) == to {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
