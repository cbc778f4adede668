package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// indexed is a document as the search engine holds it.
type indexed struct {
	found   bool
	version uint64
	source  []byte
}

// engine reads documents through the Elasticsearch API.
type engine struct {
	es esapi.Transport
}

func (e engine) do(ctx context.Context, req esapi.Request) (int, []byte, error) {
	res, err := req.Do(ctx, e.es)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("read response: %w", err)
	}
	return res.StatusCode, body, nil
}

// mget fetches the documents ids of index (realtime, with versions and
// sources). An index that does not exist holds none of them.
func (e engine) mget(ctx context.Context, index string, ids []string) (map[string]indexed, error) {
	out := make(map[string]indexed, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	body, _ := json.Marshal(map[string]any{"ids": ids})
	status, resp, err := e.do(ctx, esapi.MgetRequest{Index: index, Body: bytes.NewReader(body), Realtime: esapi.BoolPtr(true)})
	if err != nil {
		return nil, fmt.Errorf("get documents of %s: %w", index, err)
	}
	if status == http.StatusNotFound {
		return out, nil
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("get documents of %s: %d %s", index, status, truncate(resp))
	}
	var r struct {
		Docs []struct {
			ID      string          `json:"_id"`
			Found   bool            `json:"found"`
			Version uint64          `json:"_version"`
			Source  json.RawMessage `json:"_source"`
			Error   json.RawMessage `json:"error"`
		} `json:"docs"`
	}
	if err := json.Unmarshal(resp, &r); err != nil {
		return nil, fmt.Errorf("get documents of %s: decode: %w", index, err)
	}
	for _, d := range r.Docs {
		if len(d.Error) > 0 && !bytes.Contains(d.Error, []byte("index_not_found")) {
			return nil, fmt.Errorf("get document %s/%s: %s", index, d.ID, truncate(d.Error))
		}
		if !d.Found {
			continue
		}
		out[d.ID] = indexed{found: true, version: d.Version, source: d.Source}
	}
	return out, nil
}

// scanIDs hands every document id of index to fn, a page at a time, with a
// scroll. An index that does not exist has none.
func (e engine) scanIDs(ctx context.Context, index string, page int, fn func(ids []string) error) error {
	body := fmt.Sprintf(`{"size":%d,"_source":false,"sort":["_doc"]}`, page)
	status, resp, err := e.do(ctx, esapi.SearchRequest{Index: []string{index}, Body: strings.NewReader(body),
		Scroll: scrollKeepAlive})
	if err != nil {
		return fmt.Errorf("scan %s: %w", index, err)
	}
	if status == http.StatusNotFound {
		return nil
	}
	var scrollID string
	defer func() {
		if scrollID != "" {
			_, _, _ = e.do(context.WithoutCancel(ctx), esapi.ClearScrollRequest{ScrollID: []string{scrollID}})
		}
	}()
	for {
		if status != http.StatusOK {
			return fmt.Errorf("scan %s: %d %s", index, status, truncate(resp))
		}
		var r struct {
			ScrollID string `json:"_scroll_id"`
			Hits     struct {
				Hits []struct {
					ID string `json:"_id"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(resp, &r); err != nil {
			return fmt.Errorf("scan %s: decode: %w", index, err)
		}
		scrollID = r.ScrollID
		if len(r.Hits.Hits) == 0 {
			return nil
		}
		ids := make([]string, len(r.Hits.Hits))
		for i, h := range r.Hits.Hits {
			ids[i] = h.ID
		}
		if err := fn(ids); err != nil {
			return err
		}
		status, resp, err = e.do(ctx, esapi.ScrollRequest{ScrollID: scrollID, Scroll: scrollKeepAlive})
		if err != nil {
			return fmt.Errorf("scan %s: %w", index, err)
		}
	}
}

// sameDoc reports whether two JSON documents are equal: byte for byte (the
// common case: the engine returns the source the sink sent), else in
// canonical form.
func sameDoc(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ha, err1 := hashJSON(a)
	hb, err2 := hashJSON(b)
	return err1 == nil && err2 == nil && ha == hb
}

// docHash is the canonical hash of a document; invalid JSON hashes as its
// bytes.
func docHash(doc []byte) [32]byte {
	if h, err := hashJSON(doc); err == nil {
		return h
	}
	return sha256.Sum256(doc)
}

// hashJSON hashes a JSON document in a canonical form: objects with sorted
// keys, numbers as written, no insignificant space.
func hashJSON(doc []byte) ([32]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return [32]byte{}, fmt.Errorf("decode document: %w", err)
	}
	canon, err := json.Marshal(v)
	if err != nil {
		return [32]byte{}, fmt.Errorf("encode document: %w", err)
	}
	return sha256.Sum256(canon), nil
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
