package sink

import (
	"context"
	"hash/maphash"
	"time"

	"golang.org/x/sync/errgroup"
)

// Lanes: documents are partitioned by a hash of (index, id) into
// Config.Concurrency lanes. A lane sends its documents in order, one bulk
// request at a time, so every write of one document goes through one lane, in
// stream order, while the lanes' requests are in flight together. A batch is
// acknowledged only when every lane has confirmed (or dead-lettered) its part;
// truncates and watermarks are barriers: everything before them is written
// by all lanes before they are applied, and nothing after them starts before.

// minLaneDocs is the fewest documents a batch gives each lane: a batch of
// fewer than 2×minLaneDocs goes out as one request, in order, as through a
// single lane. Parallel requests pay off for large batches; a small one
// (single-row transactions at a steady rate make batches of a few
// documents) split into Concurrency requests only multiplies the
// per-request cost — HTTP and JSON in the sink, a transaction and an fsync
// in the embedded engine — for no gain in latency.
const minLaneDocs = 64

// sendLanes sends items through the lanes and waits for all of them. A
// batch uses at most one lane per minLaneDocs documents; each batch is
// written and confirmed before the next starts, so how many lanes one uses
// does not matter to the next.
func (s *Sink) sendLanes(ctx context.Context, items []item) error {
	k := min(s.cfg.Concurrency, len(items)/minLaneDocs)
	if k <= 1 {
		return s.sendChunks(ctx, items)
	}
	lanes := make([][]item, k)
	for n := range lanes {
		// Documents spread about evenly: grown once, if at all.
		lanes[n] = make([]item, 0, len(items)/k+len(items)/(4*k)+8)
	}
	seed := s.laneSeed
	for _, it := range items {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(it.doc.Index)
		h.WriteByte(0)
		h.WriteString(it.doc.ID)
		n := h.Sum64() % uint64(k)
		lanes[n] = append(lanes[n], it)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		g.Go(func() error { return s.sendChunks(gctx, lane) })
	}
	return g.Wait()
}

// batchSize is the current most documents per bulk request.
func (s *Sink) batchSize() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status.BatchSize
}

// adapt adjusts the batch size after a bulk request that took took:
// additive increase while Elasticsearch answers fast, multiplicative decrease
// when it pushes back (429, failures) or slows down, never outside
// [MinBatchSize, MaxBatchSize].
func (s *Sink) adapt(took time.Duration, pushedBack bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.status.BatchSize
	switch {
	case pushedBack || took > s.cfg.SlowRequest:
		b /= 2
	case took < s.cfg.SlowRequest/2:
		b += max(1, s.cfg.MaxBatchSize/16)
	}
	s.status.BatchSize = min(s.cfg.MaxBatchSize, max(s.cfg.MinBatchSize, b))
}
