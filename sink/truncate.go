package sink

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

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
	if err := s.emptyForTruncate(ctx, d); err != nil {
		return err
	}
	return s.recordTruncate(ctx, d)
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
