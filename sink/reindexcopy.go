package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
)

// Copying: the documents already indexed reach the new index with their
// versions, by the engine's _reindex or by a scan, while shadow writes
// bring it the changes made meanwhile (see reindex.go).

// copyIndex copies every document of From into To with its version, using
// Elasticsearch's _reindex where the engine has it and a scan otherwise.
func (s *Sink) copyIndex(ctx context.Context, j *reindexJob) error {
	st := j.snapshot()
	if st.Source == ReindexFromPostgres {
		return s.waitResyncReady(ctx, st.To)
	}
	ok, err := s.serverReindex(ctx, j, st.From, st.To)
	if ok || err != nil {
		return err
	}
	return s.scanCopy(ctx, j, st.From, st.To)
}

// serverReindex runs _reindex as a task (Elasticsearch, OpenSearch) with
// external versions kept, and waits for it. ok is false when the engine has
// no _reindex (the embedded engine).
func (s *Sink) serverReindex(ctx context.Context, j *reindexJob, from, to string) (ok bool, err error) {
	body, _ := json.Marshal(map[string]any{
		"conflicts": "proceed",
		"source":    map[string]any{"index": from, "size": reindexPage},
		"dest":      map[string]any{"index": to, "version_type": "external"},
	})
	status, rb, err := s.retrying(ctx, func() (int, []byte, error) {
		return s.call(ctx, esapi.ReindexRequest{Body: bytes.NewReader(body), WaitForCompletion: esapi.BoolPtr(false)})
	})
	if err != nil {
		return false, err
	}
	if status == http.StatusBadRequest && bytes.Contains(rb, []byte("no handler found")) || status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
		return false, nil
	}
	if status >= 300 {
		return true, fmt.Errorf("_reindex: HTTP %d: %s", status, truncate(rb, 300))
	}
	var task struct {
		Task string `json:"task"`
	}
	if err := json.Unmarshal(rb, &task); err != nil || task.Task == "" {
		return true, fmt.Errorf("_reindex: no task in %s", truncate(rb, 300))
	}
	for {
		status, rb, err := s.retrying(ctx, func() (int, []byte, error) {
			return s.call(ctx, esapi.TasksGetRequest{TaskID: task.Task, WaitForCompletion: esapi.BoolPtr(true), Timeout: 20 * time.Second})
		})
		if err != nil {
			return true, err
		}
		var t struct {
			Completed bool `json:"completed"`
			Task      struct {
				Status struct {
					Created uint64 `json:"created"`
					Updated uint64 `json:"updated"`
				} `json:"status"`
			} `json:"task"`
			Error    json.RawMessage `json:"error"`
			Response struct {
				Failures []json.RawMessage `json:"failures"`
			} `json:"response"`
		}
		if status >= 300 || json.Unmarshal(rb, &t) != nil {
			return true, fmt.Errorf("_reindex task %s: HTTP %d: %s", task.Task, status, truncate(rb, 300))
		}
		j.update(func(r *ReindexState) { r.Copied = t.Task.Status.Created + t.Task.Status.Updated })
		if t.Completed {
			if len(t.Error) > 0 || len(t.Response.Failures) > 0 {
				j.update(func(r *ReindexState) { r.Rejected += uint64(len(t.Response.Failures)) })
				return true, fmt.Errorf("_reindex task %s failed: %s %s", task.Task, truncate(t.Error, 300), truncate(mustJSON(t.Response.Failures), 300))
			}
			return true, nil
		}
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// retrying repeats call while the engine is unreachable or overloaded.
func (s *Sink) retrying(ctx context.Context, call func() (int, []byte, error)) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.backoff(ctx, attempt); err != nil {
				return 0, nil, err
			}
		}
		status, body, err := call()
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		if err == nil && status != http.StatusTooManyRequests && status < 500 {
			return status, body, nil
		}
		msg := fmt.Sprintf("HTTP %d %s", status, truncate(body, 200))
		if err != nil {
			msg = err.Error()
		}
		s.transient("reindex: " + msg)
	}
}

// scanCopy pages through From in _doc order (after a refresh: what is not
// yet searchable was written after the shadow writes began, and so is in To
// already), reads each page's current documents and versions with a
// realtime mget, and writes them to To with those versions.
func (s *Sink) scanCopy(ctx context.Context, j *reindexJob, from, to string) error {
	if _, _, err := s.retrying(ctx, func() (int, []byte, error) {
		return s.call(ctx, esapi.IndicesRefreshRequest{Index: []string{from}})
	}); err != nil {
		return err
	}
	var after json.RawMessage
	for {
		q := map[string]any{"size": reindexPage, "sort": []string{"_doc"}, "_source": false, "track_total_hits": false}
		if after != nil {
			q["search_after"] = after
		}
		qb, _ := json.Marshal(q)
		status, body, err := s.retrying(ctx, func() (int, []byte, error) {
			return s.call(ctx, esapi.SearchRequest{Index: []string{from}, Body: bytes.NewReader(qb)})
		})
		if err != nil {
			return err
		}
		if status >= 300 {
			return fmt.Errorf("scan %s: HTTP %d: %s", from, status, truncate(body, 300))
		}
		var res struct {
			Hits struct {
				Hits []struct {
					ID   string          `json:"_id"`
					Sort json.RawMessage `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return fmt.Errorf("scan %s: %w", from, err)
		}
		hits := res.Hits.Hits
		if len(hits) == 0 {
			return nil
		}
		ids := make([]string, len(hits))
		for i, h := range hits {
			ids[i] = h.ID
		}
		if err := s.copyDocs(ctx, j, from, to, ids); err != nil {
			return err
		}
		after = hits[len(hits)-1].Sort
	}
}

// copyDocs copies the current version of ids from one index to another.
func (s *Sink) copyDocs(ctx context.Context, j *reindexJob, from, to string, ids []string) error {
	mb, _ := json.Marshal(map[string]any{"ids": ids})
	status, body, err := s.retrying(ctx, func() (int, []byte, error) {
		return s.call(ctx, esapi.MgetRequest{Index: from, Body: bytes.NewReader(mb), Realtime: esapi.BoolPtr(true)})
	})
	if err != nil {
		return err
	}
	if status >= 300 {
		return fmt.Errorf("read %s: HTTP %d: %s", from, status, truncate(body, 300))
	}
	var mr struct {
		Docs []struct {
			ID      string          `json:"_id"`
			Found   bool            `json:"found"`
			Version uint64          `json:"_version"`
			Source  json.RawMessage `json:"_source"`
		} `json:"docs"`
	}
	if err := json.Unmarshal(body, &mr); err != nil {
		return fmt.Errorf("read %s: %w", from, err)
	}
	var items []item
	for _, d := range mr.Docs {
		if d.Found {
			items = append(items, item{doc: &bus.Doc{Op: bus.DocIndex, ID: d.ID, Version: d.Version, Source: d.Source}, target: to, shadow: true})
		}
	}
	for len(items) > 0 {
		body := bulkBody(items)
		var res bytes.Buffer
		status, rb, err := s.retrying(ctx, func() (int, []byte, error) { return s.doBulk(ctx, body, &res) })
		if err != nil {
			return err
		}
		if status >= 300 {
			return fmt.Errorf("copy into %s: HTTP %d: %s", to, status, truncate(rb, 300))
		}
		br, err := readBulkResponse(rb, len(items))
		if err != nil {
			return fmt.Errorf("copy into %s: %w", to, err)
		}
		var retry []item
		var copied, rejected uint64
		for i, it := range items {
			out := bulkItemOutcome{Status: http.StatusOK}
			if br.Errors {
				out = br.Items[i].outcome()
			}
			switch {
			case out.Status < 300 || out.Status == http.StatusConflict:
				copied++
			case out.Status == http.StatusTooManyRequests || out.Status >= 500:
				retry = append(retry, it)
			default:
				rejected++
				s.log.Warn("new index refused a document", "index", to, "id", it.doc.ID, "status", out.Status, "error", string(out.Error))
			}
		}
		j.update(func(r *ReindexState) { r.Copied += copied; r.Rejected += rejected })
		if len(retry) > 0 {
			if err := s.backoff(ctx, 1); err != nil {
				return err
			}
		}
		items = retry
	}
	return nil
}

// shadowRejected records a dual write the new index refused.
func (s *Sink) shadowRejected(it item, reason string) {
	if j := s.job(); j != nil {
		j.update(func(r *ReindexState) { r.Rejected++ })
	}
	s.log.Warn("new index refused a document", "index", it.target, "id", it.doc.ID, "reason", reason)
}
