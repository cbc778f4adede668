package sink

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
)

// truncate removes every document of d.Index. The sink applies a batch in
// order and has written everything before the truncate, so deleting what the
// index holds now removes exactly the rows the TRUNCATE removed.
//
// With several lanes the truncate is a barrier: process writes the segment
// before it through every lane and waits for all of them, and starts nothing
// after it until the index is emptied. A reindex of the index has its copy
// restarted (it may carry documents read before the truncate) and its new
// index emptied too.
//
// A truncate is applied once: the LSN of the last one applied to an index is
// recorded (TruncatedKey) before anything after it is written, and a
// truncate at or below it — delivered again after a crash, behind the
// documents written after it the first time — is skipped. Emptying the
// index again would delete those documents, and their own replays would
// then be refused: a delete by query leaves each document's tombstone one
// version above the document's.
func (s *Sink) truncate(ctx context.Context, d *bus.Doc) error {
	if done, err := s.truncatedAt(ctx, d.Index); err != nil {
		return err
	} else if d.Version <= done {
		s.log.Info("TRUNCATE already applied; not emptying the index again", "index", d.Index, "lsn", bus.LSN(d.Version))
		return nil
	}
	if s.cfg.Partitions > 1 && s.cfg.Control != nil {
		return s.truncateAcrossPartitions(ctx, d)
	}
	if err := s.emptyForTruncate(ctx, d); err != nil {
		return err
	}
	return s.recordTruncate(ctx, d)
}

// TruncateReachedKey is the control store key (with the index, a dot and
// the partition appended) where the sink of each partition records the LSN
// of the last truncate of the index it reached.
const TruncateReachedKey = "sink.truncate_reached."

// truncatePoll is how often a partition waiting at a truncate looks
// whether the others reached it, or it was applied.
const truncatePoll = 20 * time.Millisecond

// truncateAcrossPartitions applies a truncate that every partition
// carries (capture publishes it to each): it is a barrier. Each
// partition's sink records that it reached it, having written everything
// before it, and waits; once every partition reached it, partition 0's
// sink empties the index and records it applied (TruncatedKey), and every
// partition goes on. Without the barrier a partition that lags could write
// a document after the index was emptied — one the truncate removed — and
// emptying it while another partition is ahead would delete documents
// written after the truncate.
func (s *Sink) truncateAcrossPartitions(ctx context.Context, d *bus.Doc) error {
	lsn := []byte(bus.LSN(d.Version).String())
	if err := s.retried(ctx, "record the truncate reached", func() error {
		return s.cfg.Control.Put(ctx, s.reachedKey(d.Index, s.cfg.Partition), lsn)
	}); err != nil {
		return err
	}
	logged := false
	t := time.NewTicker(truncatePoll)
	defer t.Stop()
	for {
		done, err := s.truncatedAt(ctx, d.Index)
		if err != nil {
			return err
		}
		if d.Version <= done {
			return nil // applied by partition 0's sink
		}
		all, err := s.allReached(ctx, d)
		if err != nil {
			return err
		}
		if all && s.cfg.Partition == 0 {
			if err := s.emptyForTruncate(ctx, d); err != nil {
				return err
			}
			return s.recordTruncate(ctx, d)
		}
		if !logged {
			logged = true
			s.log.Info("TRUNCATE waits until every partition reached it", "index", d.Index, "lsn", bus.LSN(d.Version), "partition", s.cfg.Partition)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Sink) reachedKey(index string, k int) string {
	return TruncateReachedKey + index + "." + strconv.Itoa(k)
}

// allReached reports whether every partition's sink reached truncate d.
func (s *Sink) allReached(ctx context.Context, d *bus.Doc) (bool, error) {
	for k := range s.cfg.Partitions {
		var v []byte
		var ok bool
		if err := s.retried(ctx, "read the truncates reached", func() (err error) {
			v, ok, err = s.cfg.Control.Get(ctx, s.reachedKey(d.Index, k))
			return err
		}); err != nil {
			return false, err
		}
		if !ok {
			return false, nil
		}
		lsn, err := bus.ParseLSN(string(v))
		if err != nil {
			return false, fmt.Errorf("the truncate partition %d reached recorded as %q: %w", k, v, err)
		}
		if uint64(lsn) < d.Version {
			return false, nil
		}
	}
	return true, nil
}

// retried runs f until it succeeds or ctx ends, with backoff.
func (s *Sink) retried(ctx context.Context, what string, f func() error) error {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		}
		err := f()
		if err == nil {
			return nil
		}
		s.transient(what + ": " + err.Error())
	}
}

// TruncatedKey is the control store key (with the index appended) where the
// sink records the LSN of the last TRUNCATE it applied to an index.
const TruncatedKey = "sink.truncated."

// truncatedAt returns the LSN of the last truncate applied to index, 0
// without a control store or a record.
func (s *Sink) truncatedAt(ctx context.Context, index string) (uint64, error) {
	if s.cfg.Control == nil {
		return 0, nil
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.backoff(ctx, attempt); err != nil {
				return 0, err
			}
		}
		v, ok, err := s.cfg.Control.Get(ctx, TruncatedKey+index)
		if err != nil {
			s.transient("read the last truncate: " + err.Error())
			continue
		}
		if !ok {
			return 0, nil
		}
		lsn, err := bus.ParseLSN(string(v))
		if err != nil {
			return 0, fmt.Errorf("the last truncate of %s recorded as %q: %w", index, v, err)
		}
		return uint64(lsn), nil
	}
}

// recordTruncate records d as the last truncate applied to its index.
func (s *Sink) recordTruncate(ctx context.Context, d *bus.Doc) error {
	if s.cfg.Control == nil {
		return nil
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		}
		err := s.cfg.Control.Put(ctx, TruncatedKey+d.Index, []byte(bus.LSN(d.Version).String()))
		if err == nil {
			return nil
		}
		s.transient("record the truncate: " + err.Error())
	}
}

// emptyForTruncate empties d's index (and the index a reindex is building).
func (s *Sink) emptyForTruncate(ctx context.Context, d *bus.Doc) error {
	targets := []string{s.idx.aliasFor(d.Index)}
	if shadow := s.idx.shadowOf(d.Index); shadow != "" {
		if j := s.job(); j != nil {
			j.stop()
		}
		targets = append(targets, shadow)
	}
	for _, target := range targets {
		if err := s.truncateIndex(ctx, target, d); err != nil {
			return err
		}
	}
	if len(targets) > 1 {
		s.restartCopyAfterTruncate(ctx, d.Index)
	}
	return nil
}

func (s *Sink) truncateIndex(ctx context.Context, index string, d *bus.Doc) error {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		}
		err := s.deleteAll(ctx, index)
		if err == nil {
			s.log.Info("index emptied after TRUNCATE", "index", index, "lsn", bus.LSN(d.Version))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.transient(err.Error())
	}
}

func (s *Sink) deleteAll(ctx context.Context, index string) error {
	rctx, cancel := context.WithTimeout(ctx, s.es.Timeout())
	defer cancel()
	// delete_by_query works on the searchable view: refresh first so it sees
	// every write made so far.
	res, err := esapi.IndicesRefreshRequest{Index: []string{index}}.Do(rctx, s.es)
	if err != nil {
		return fmt.Errorf("refresh %s before truncate: %w", index, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return nil
	}
	if res.IsError() {
		return fmt.Errorf("refresh %s before truncate: HTTP %d", index, res.StatusCode)
	}
	res, err = esapi.DeleteByQueryRequest{
		Index: []string{index}, Body: strings.NewReader(`{"query":{"match_all":{}}}`),
		Conflicts: "proceed", Refresh: esapi.BoolPtr(true),
	}.Do(rctx, s.es)
	if err != nil {
		return fmt.Errorf("truncate %s: %w", index, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return nil
	}
	if res.IsError() {
		return fmt.Errorf("truncate %s: HTTP %d: %s", index, res.StatusCode, truncateBytes(body))
	}
	return nil
}

func truncateBytes(b []byte) string { return truncate(b, 300) }
