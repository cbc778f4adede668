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
// (PostgreSQL does not resend an unchanged large value). The values come
// from the document's latest earlier write in this batch, else from the
// indexed document (a realtime get). A document that moved (its row's key
// changed, Doc.From) takes them from the document it moved from instead:
// what is at its own id belongs to a row deleted before, unless it is this
// very write, applied once already and now replayed (its version is at
// least the write's). A value that cannot be found is left out rather than
// replaced by a placeholder.
func (s *Sink) fillUnchanged(ctx context.Context, items []item) error {
	if !slices.ContainsFunc(items, func(it item) bool { return len(it.doc.Unchanged) > 0 }) {
		return nil // the common case: nothing to merge, no source to decode
	}
	// First pass: the documents to read from the index, because no earlier
	// write in the batch gives their source.
	inBatch := map[string]bool{}
	var need []ref
	read := func(target, id, k string) {
		if !inBatch[k] {
			inBatch[k] = true // read once
			need = append(need, ref{Index: target, ID: id, key: k})
		}
	}
	for _, it := range items {
		d := it.doc
		if d.Op == bus.DocIndex && len(d.Unchanged) > 0 {
			if d.From != "" {
				read(it.target, d.From, key(origin(d)))
			}
			read(it.target, d.ID, key(d))
		}
		if d.Op == bus.DocIndex {
			inBatch[key(d)] = true
		}
	}
	current, err := s.mget(ctx, need)
	if err != nil {
		return err
	}
	// Second pass, in order. latest holds each document's source as of the
	// current item; a document deleted in the batch keeps in gone its
	// source from before the delete, for a document that moved from it.
	latest := map[string]map[string]json.RawMessage{}
	gone := map[string]map[string]json.RawMessage{}
	for _, it := range items {
		d := it.doc
		k := key(d)
		if d.Op == bus.DocDelete {
			prev, ok := latest[k]
			if _, deletedBefore := gone[k]; !ok && !deletedBefore {
				prev = current[k].source
			}
			gone[k] = prev
			delete(latest, k)
			continue
		}
		var src map[string]json.RawMessage
		if err := json.Unmarshal(d.Source, &src); err != nil {
			continue // not an object: nothing to merge, Elasticsearch will judge it
		}
		if len(d.Unchanged) > 0 {
			prev := previous(d, latest, gone, current)
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

// previous is the source d's unchanged values come from, as of d's place
// in the batch (see fillUnchanged).
func previous(d *bus.Doc, latest, gone map[string]map[string]json.RawMessage, current map[string]indexed) map[string]json.RawMessage {
	k := key(d)
	if d.From == "" {
		if src, ok := latest[k]; ok {
			return src
		}
		if _, deleted := gone[k]; deleted {
			return nil // its earlier version was deleted: nothing to keep
		}
		return current[k].source
	}
	from := key(origin(d))
	if src, ok := latest[from]; ok {
		return src
	}
	if src := gone[from]; src != nil {
		return src
	}
	if src := current[from].source; src != nil {
		return src
	}
	// The document it moved from is gone from the index: the move was
	// applied before (a replay after a crash), and only then does the
	// document at its own id carry this write's values.
	if _, written := latest[k]; !written {
		if own := current[k]; own.source != nil && own.version >= d.Version {
			return own.source
		}
	}
	return nil
}

// origin is the document whose values d's unchanged columns keep: the one
// it moved from, else itself.
func origin(d *bus.Doc) *bus.Doc {
	if d.From == "" {
		return d
	}
	return &bus.Doc{Index: d.Index, ID: d.From}
}

// deferMoves splits items into what is written first and the deletes of
// documents that moved (Doc.From), written once the documents that moved
// from them are confirmed: a crash in between must leave the old document
// in place, for the replayed move to take its unchanged values from. A
// delete is held back only when nothing after it in the batch writes the
// same document (its version then orders it anyway).
func deferMoves(items []item) (first, after []item) {
	var from map[string]int // key of a moved-from document → last position moving from it
	for i, it := range items {
		if it.doc.From != "" && it.doc.Op == bus.DocIndex {
			if from == nil {
				from = map[string]int{}
			}
			from[key(origin(it.doc))] = i
		}
	}
	if from == nil {
		return items, nil
	}
	last := map[string]int{}
	for i, it := range items {
		last[key(it.doc)] = i
	}
	first = make([]item, 0, len(items))
	for i, it := range items {
		k := key(it.doc)
		if j, ok := from[k]; ok && it.doc.Op == bus.DocDelete && j > i && last[k] == i {
			after = append(after, it)
			continue
		}
		first = append(first, it)
	}
	return first, after
}

func key(d *bus.Doc) string { return d.Index + "\x00" + d.ID }

// ref names a document to read: Index is the index or alias to read it
// from, key the document's key in fillUnchanged's maps.
type ref struct {
	Index string `json:"_index"`
	ID    string `json:"_id"`
	key   string
}

// indexed is a document as the index holds it.
type indexed struct {
	source  map[string]json.RawMessage
	version uint64
}

// mget fetches the current sources of refs (realtime), by key, retrying
// transient failures like the bulk path does.
func (s *Sink) mget(ctx context.Context, refs []ref) (map[string]indexed, error) {
	out := map[string]indexed{}
	if len(refs) == 0 {
		return out, nil
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
				Index   string                     `json:"_index"`
				ID      string                     `json:"_id"`
				Found   bool                       `json:"found"`
				Version uint64                     `json:"_version"`
				Source  map[string]json.RawMessage `json:"_source"`
			} `json:"docs"`
		}
		if res.StatusCode >= 400 || json.Unmarshal(rb, &mr) != nil {
			return out, nil // nothing usable: merge without the current document
		}
		for i, d := range mr.Docs {
			if d.Found && i < len(refs) {
				out[refs[i].key] = indexed{d.Source, d.Version}
			}
		}
		return out, nil
	}
}
