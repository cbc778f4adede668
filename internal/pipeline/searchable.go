package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/esclient"
)

// SnapshotIndexing is the snapshot state of a table whose rows are all read
// but not yet all searchable.
const SnapshotIndexing = "indexing"

// searchable tells when a table's snapshot is searchable, not only read:
// capture has read every row, the sink has written every document up to
// the snapshot's consistent point (its applied watermark reached it: the
// snapshot's rows are on the bus before the first watermark of the stream
// that follows), and the index was refreshed since. Until then /status says
// "indexing" instead of "done".
type searchable struct {
	es *esclient.Client

	mu        sync.Mutex
	refreshed map[string]bool // by index: refreshed after its snapshot was written
}

func newSearchable(es *esclient.Client) *searchable {
	return &searchable{es: es, refreshed: map[string]bool{}}
}

// apply turns "done" into "indexing" for the tables whose snapshot is not
// searchable yet, given the sink's applied watermark, refreshing an index
// the first time its snapshot is found written. A table without an index
// of its own (read only by document definitions) is done once its rows
// are written: the documents they went into are refreshed with their
// root table's index.
func (s *searchable) apply(ctx context.Context, tables []api.TableProgress, applied bus.LSN) {
	for i := range tables {
		tp := &tables[i]
		if tp.Snapshot != capture.TableDone || tp.SnapshotLSN == 0 {
			continue // not read yet, skipped, or read by a backfill
		}
		if tp.Index == "" {
			if applied < tp.SnapshotLSN {
				tp.Snapshot = SnapshotIndexing
			}
			continue
		}
		s.mu.Lock()
		done := s.refreshed[tp.Index]
		s.mu.Unlock()
		if done {
			continue
		}
		if applied < tp.SnapshotLSN || s.refresh(ctx, tp.Index) != nil {
			tp.Snapshot = SnapshotIndexing
			continue
		}
		s.mu.Lock()
		s.refreshed[tp.Index] = true
		s.mu.Unlock()
	}
}

// refresh makes what was written to index searchable.
func (s *searchable) refresh(ctx context.Context, index string) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := esapi.IndicesRefreshRequest{Index: []string{index}}.Do(rctx, s.es)
	if err != nil {
		return fmt.Errorf("refresh %s: %w", index, err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("refresh %s: HTTP %d", index, res.StatusCode)
	}
	return nil
}
