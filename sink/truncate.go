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
func (s *Sink) truncate(ctx context.Context, d *bus.Doc) error {
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
