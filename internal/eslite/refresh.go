package eslite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// refreshTick is how often the background refresher looks at the indices.
// An index is refreshed only when it has pending writes and its
// refresh_interval has passed since the last refresh started, so an idle
// engine costs a map walk per tick. The tick is what a refresh may be late
// by, which adds to the time a write waits to become searchable.
const refreshTick = 10 * time.Millisecond

// refresh makes every write acknowledged so far visible to search, then
// prunes the delete tombstones whose gc_deletes has passed.
//
// Lock order throughout the engine: e.mu, ix.refreshMu, ix.mu, ix.visMu.
// refresh must therefore be called without e.mu held.
func (e *Engine) refresh(ix *index) error {
	e.mu.RLock()
	gc := ix.settings.gcDeletes()
	e.mu.RUnlock()

	ix.refreshMu.Lock()
	defer ix.refreshMu.Unlock()

	// The interval runs from the start of one refresh to the start of the
	// next, so the time a refresh takes does not lengthen it.
	started := e.now()
	ix.mu.Lock()
	if ix.deleted {
		ix.mu.Unlock()
		return nil
	}
	pending := ix.pending
	upTo := ix.seqNo
	if len(pending) > 0 {
		ix.pending = make(map[string]search.Op, len(pending))
	} else {
		pending = nil // the queue stays the writers'
	}
	ix.pendingSince = time.Time{}
	ix.staged = false
	ix.mu.Unlock()

	ops := make([]search.Op, 0, len(pending))
	if len(pending) > 0 {
		for _, op := range pending {
			ops = append(ops, op)
		}
	}
	// Apply also publishes writes staged since the last refresh, so it runs
	// even when nothing is queued.
	if err := ix.search.Apply(ops, uint64(upTo+1)); err != nil {
		// Put the writes back so that the next refresh retries them.
		e.restorePending(ix, pending)
		return fmt.Errorf("refresh %s: %w", ix.name, err)
	}
	ix.visMu.Lock()
	if upTo > ix.visible {
		ix.visible = upTo
	}
	ix.lastRefresh = started
	close(ix.visibleCh)
	ix.visibleCh = make(chan struct{})
	ix.visMu.Unlock()

	return e.pruneTombstones(ix, upTo, gc)
}

// defaultStageAt is how many unrefreshed writes an index queues before the
// writer that reaches it hands them to bleve to index (without making them
// visible). It bounds the memory held by prepared documents waiting for a
// refresh and makes writers pay for indexing, as in Elasticsearch, instead
// of letting a fast bulk load run ahead of what the search index can absorb.
const defaultStageAt = 4000

// stageIfFull indexes the queued writes of ix when there are e.stageAt or
// more. The indexing runs in the background, holding ix.refreshMu, so that
// the writer answers and the next request is parsed, prepared and stored
// while bleve builds the segment; a writer that fills the queue again before
// that is done waits on ix.refreshMu, which is the backpressure: at most one
// batch is being indexed while the next queues. A refresh, a delete of the
// index or Close also wait for it. Called without ix.mu held.
func (e *Engine) stageIfFull(ix *index) {
	ix.mu.RLock()
	n := len(ix.pending)
	ix.mu.RUnlock()
	if n < e.stageAt {
		return
	}
	ix.refreshMu.Lock()
	e.stageLocked(ix, func() bool { return len(ix.pending) >= e.stageAt })
}

// stageWaiting indexes the queued writes of ix in the background, as
// stageIfFull does, when no refresh or other indexing step is running and
// either there are at least stageMin of them and the oldest has waited
// stageDelay, or the next refresh is due within stageLead and the oldest
// has waited that long: the refresh then has only the last writes left to
// index before it publishes, so the time a write waits to become
// searchable grows little with the write rate. Each step makes a bleve
// segment. Waiting stageDelay bounds them to a few per refresh interval,
// and stageMin keeps a slow stream of writes from being cut into tiny
// segments, which cost the merges that fold them together far more than
// they spare the refresh; such a stream is indexed once, shortly before
// the refresh. Called by the refresher without any lock.
func (e *Engine) stageWaiting(ix *index, now time.Time, interval time.Duration) {
	delay, lead := stageDelay(interval), stageLead(interval)
	ix.visMu.Lock()
	dueSoon := now.Sub(ix.lastRefresh) >= interval-lead
	ix.visMu.Unlock()
	// Before the refresh, writes are indexed ahead once: those queued since
	// have waited less than stageLead and are left to the refresh, rather
	// than indexed a few at a time on every tick.
	ready := func() bool {
		n, waited := len(ix.pending), now.Sub(ix.pendingSince)
		return n > 0 && (dueSoon && waited >= lead || n >= stageMin && waited >= delay)
	}
	ix.mu.RLock()
	waited := ready()
	ix.mu.RUnlock()
	if !waited || !ix.refreshMu.TryLock() {
		return
	}
	e.stageLocked(ix, ready)
}

// stageMin is the fewest queued writes the refresher indexes ahead of a
// refresh before it is due within stageLead. Profiled at 500 single-row
// transactions a second end to end, indexing whatever had waited a
// quarter of the refresh interval made segments of about 125 documents,
// and bleve's merges took 30% of the process's CPU.
const stageMin = 500

// stageLead is how long before a refresh is due the refresher indexes the
// writes queued for it, whatever their number: an eighth of the refresh
// interval, at least a refresher tick.
func stageLead(interval time.Duration) time.Duration {
	return max(refreshTick, interval/8)
}

// stageDelay is how long writes wait in the queue before the refresher
// indexes them ahead of the refresh: a quarter of the refresh interval, at
// least a refresher tick.
func stageDelay(interval time.Duration) time.Duration {
	return max(refreshTick, interval/4)
}

// stageLocked takes the queued writes of ix, if ok (called under ix.mu)
// still holds, and indexes them in the background. The caller holds
// ix.refreshMu; stageLocked releases it, when the indexing is done.
func (e *Engine) stageLocked(ix *index, ok func() bool) {
	ix.mu.Lock()
	if ix.deleted || !ok() {
		ix.mu.Unlock()
		ix.refreshMu.Unlock()
		return
	}
	pending := ix.pending
	ix.pending = make(map[string]search.Op, len(pending))
	ix.pendingSince = time.Time{}
	ix.staged = true
	ix.stageSteps++
	ix.mu.Unlock()
	ops := make([]search.Op, 0, len(pending))
	for _, op := range pending {
		ops = append(ops, op)
	}
	go func() {
		defer ix.refreshMu.Unlock()
		if err := ix.search.Stage(ops); err != nil {
			if errors.Is(err, search.ErrClosed) {
				return // the index was deleted or the engine closed meanwhile
			}
			// The writes are durable; the next refresh retries them.
			e.restorePending(ix, pending)
			e.log.Warn("indexing queued writes failed", "index", ix.name, "error", err)
		}
	}()
}

// restorePending puts writes back in the queue after a failed apply; newer
// writes to the same ids win.
func (e *Engine) restorePending(ix *index, pending map[string]search.Op) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(pending) > 0 && ix.pendingSince.IsZero() {
		ix.pendingSince = e.now()
	}
	for id, op := range pending {
		if _, newer := ix.pending[id]; !newer {
			ix.pending[id] = op
		}
	}
}

// pruneTombstones forgets tombstones older than gc_deletes that search has
// already applied, in memory and in the store.
// Caller holds ix.refreshMu.
func (e *Engine) pruneTombstones(ix *index, applied int64, gc time.Duration) error {
	cutoff := e.now().UnixMilli() - gc.Milliseconds()

	ix.mu.Lock()
	var ids []string
	n := 0
	for _, t := range ix.tombstones {
		if t.deletedAt >= cutoff || t.seqNo > applied {
			break
		}
		n++
		if cur := ix.docs[t.id]; cur != nil && cur.deleted && cur.seqNo == t.seqNo {
			delete(ix.docs, t.id)
			ids = append(ids, t.id)
		}
	}
	ix.tombstones = ix.tombstones[n:]
	deleted := ix.deleted
	ix.mu.Unlock()

	if len(ids) == 0 || e.store == nil || deleted {
		return nil
	}
	if err := e.store.prune(ix.uuid, ids); err != nil {
		return fmt.Errorf("prune tombstones of %s: %w", ix.name, err)
	}
	return nil
}

// waitVisible blocks until seqNo is visible to search (refresh=wait_for).
func (ix *index) waitVisible(ctx context.Context, seqNo int64) error {
	for {
		ix.visMu.Lock()
		vis, ch := ix.visible, ix.visibleCh
		ix.visMu.Unlock()
		if vis >= seqNo {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// needsRefresh reports whether the background refresher should refresh ix
// now. Caller holds e.mu for reading.
func (ix *index) needsRefresh(now time.Time) bool {
	interval := ix.settings.refreshInterval()
	if interval < 0 {
		return false
	}
	ix.mu.RLock()
	dirty := len(ix.pending) > 0 || ix.staged
	tomb := len(ix.tombstones) > 0
	ix.mu.RUnlock()
	if !dirty && !tomb {
		return false
	}
	ix.visMu.Lock()
	last := ix.lastRefresh
	ix.visMu.Unlock()
	return now.Sub(last) >= interval
}

// refresher refreshes indices on their refresh_interval until stop closes.
func (e *Engine) refresher() {
	defer e.wg.Done()
	t := time.NewTicker(refreshTick)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		now := e.now()
		e.mu.RLock()
		var due, waiting []*index
		var intervals []time.Duration
		for _, ix := range e.indices {
			if ix.needsRefresh(now) {
				due = append(due, ix)
			} else if interval := ix.settings.refreshInterval(); interval > 0 {
				waiting = append(waiting, ix)
				intervals = append(intervals, interval)
			}
		}
		e.mu.RUnlock()
		for _, ix := range due {
			if err := e.refresh(ix); err != nil {
				e.log.Warn("background refresh failed", "index", ix.name, "error", err)
			}
		}
		for i, ix := range waiting {
			e.stageWaiting(ix, now, intervals[i])
		}
	}
}
