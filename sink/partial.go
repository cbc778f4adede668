package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
)

// fillUnchanged completes documents whose row left TOASTed columns out
// (PostgreSQL does not resend an unchanged large value): the values are taken
// from the latest earlier write of the same document in this batch, else from
// the indexed document (a realtime get). A value that cannot be found is left
// out rather than replaced by a placeholder.
func (s *Sink) fillUnchanged(ctx context.Context, items []item) error {
	if !slices.ContainsFunc(items, func(it item) bool { return len(it.doc.Unchanged) > 0 }) {
		return nil // the common case: nothing to merge, no source to decode
	}
	latest := map[string]map[string]json.RawMessage{}
	var need []int
	for i, it := range items {
		if it.doc.Op == bus.DocIndex && len(it.doc.Unchanged) > 0 {
			if _, ok := latest[key(it.doc)]; !ok {
				need = append(need, i)
			}
		}
		if it.doc.Op == bus.DocIndex {
			latest[key(it.doc)] = nil
		}
	}
	current, err := s.mget(ctx, items, need)
	if err != nil {
		return err
	}
	clear(latest)
	for _, it := range items {
		d := it.doc
		k := key(d)
		if d.Op == bus.DocDelete {
			delete(latest, k)
			continue
		}
		var src map[string]json.RawMessage
		if err := json.Unmarshal(d.Source, &src); err != nil {
			continue // not an object: nothing to merge, Elasticsearch will judge it
		}
		if len(d.Unchanged) > 0 {
			prev, ok := latest[k]
			if !ok {
				prev = current[k]
			}
			for _, col := range d.Unchanged {
				if _, present := src[col]; present {
					continue
				}
				if v, ok := prev[col]; ok {
					src[col] = v
				}
			}
			merged, err := json.Marshal(src)
			if err != nil {
				return fmt.Errorf("merge unchanged columns of %s/%s: %w", d.Index, d.ID, err)
			}
			d.Source, d.Unchanged = merged, nil
		}
		latest[k] = src
	}
	return nil
}

func key(d *bus.Doc) string { return d.Index + "\x00" + d.ID }

// mget fetches the current sources of items[idx] (realtime), retrying
// transient failures like the bulk path does.
func (s *Sink) mget(ctx context.Context, items []item, idx []int) (map[string]map[string]json.RawMessage, error) {
	out := map[string]map[string]json.RawMessage{}
	if len(idx) == 0 {
		return out, nil
	}
	type ref struct {
		Index string `json:"_index"`
		ID    string `json:"_id"`
	}
	refs := make([]ref, len(idx))
	for i, j := range idx {
		refs[i] = ref{items[j].target, items[j].doc.ID}
	}
	body, _ := json.Marshal(map[string]any{"docs": refs})
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
		rctx, cancel := context.WithTimeout(ctx, s.es.Timeout())
		res, err := esapi.MgetRequest{Body: bytes.NewReader(body), Realtime: esapi.BoolPtr(true)}.Do(rctx, s.es)
		if err != nil {
			cancel()
			s.transient("mget: " + err.Error())
			continue
		}
		rb, err := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		if err != nil || res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
			s.transient(fmt.Sprintf("mget: HTTP %d %v", res.StatusCode, err))
			continue
		}
		if err := s.es.AuthError(res.StatusCode, rb); err != nil {
			// Merging without the indexed values would drop the unchanged
			// columns: wait for the credentials to be fixed.
			s.transient("mget: " + err.Error())
			continue
		}
		var mr struct {
			Docs []struct {
				Index  string                     `json:"_index"`
				ID     string                     `json:"_id"`
				Found  bool                       `json:"found"`
				Source map[string]json.RawMessage `json:"_source"`
			} `json:"docs"`
		}
		if res.StatusCode >= 400 || json.Unmarshal(rb, &mr) != nil {
			return out, nil // nothing usable: merge without the current document
		}
		for i, d := range mr.Docs {
			if d.Found && i < len(refs) {
				out[key(items[idx[i]].doc)] = d.Source
			}
		}
		return out, nil
	}
}
