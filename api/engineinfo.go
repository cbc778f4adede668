package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/gofiber/fiber/v2"
)

// breakerState is the search engine's circuit breaker as GET /engine shows
// it: open while searches fail fast after the engine failed.
type breakerState struct {
	Open      bool      `json:"open"`
	OpenUntil time.Time `json:"open_until,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

func (b *breaker) state() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := breakerState{Open: time.Now().Before(b.openUntil), LastError: b.lastErr}
	if st.Open {
		st.OpenUntil = b.openUntil.UTC()
	}
	return st
}

// engineIndex is one managed index in GET /engine: the name searches use,
// the index that name points to now (an alias moves to a new version on
// reindex), and its documents.
type engineIndex struct {
	Name string `json:"name"`
	// Index is the versioned index behind the alias ("users_v2"), the name
	// itself when it is a plain index, or "" when the engine cannot tell.
	Index string `json:"index"`
	// Documents is the index's document count, -1 when the engine cannot
	// tell.
	Documents int64 `json:"documents"`
}

type engineResponse struct {
	Breaker breakerState  `json:"breaker"`
	Indices []engineIndex `json:"indices"`
}

// engineHandler answers GET /engine: the circuit breaker and, for each
// index the caller may query, its current version and document count.
func (s *Server) engineHandler(c *fiber.Ctx) error {
	ctx, cancel := s.requestContext(c)
	defer cancel()
	list, _, err := s.indices.all(ctx)
	if err != nil {
		return err
	}
	resp := engineResponse{Indices: []engineIndex{}}
	for _, mi := range list {
		if !allowedIndex(c, mi.Name) {
			continue
		}
		ei := engineIndex{Name: mi.Name, Documents: -1}
		n, err := s.eng.count(ctx, mi.Name)
		if isNotFound(err) {
			continue // no index of its own, as GET /indices leaves it out
		}
		if err == nil {
			ei.Documents = n
			ei.Index = s.eng.aliasTarget(ctx, mi.Name)
		}
		resp.Indices = append(resp.Indices, ei)
	}
	sort.Slice(resp.Indices, func(i, j int) bool { return resp.Indices[i].Name < resp.Indices[j].Name })
	resp.Breaker = s.eng.br.state()
	return c.JSON(resp)
}

// aliasTarget returns the index that name points to: its alias's write
// index (or only index), name itself when name is not an alias, or "" when
// the engine does not say.
func (e *engine) aliasTarget(ctx context.Context, name string) string {
	if e.br.open() {
		return ""
	}
	res, err := esapi.IndicesGetAliasRequest{Name: []string{name}}.Do(ctx, e.es)
	if err != nil {
		_ = e.transportError(ctx, err)
		return ""
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode == http.StatusNotFound {
		return name // a plain index, no alias of that name
	}
	if e.statusError(name, res.StatusCode, rb) != nil {
		return ""
	}
	var byIndex map[string]struct {
		Aliases map[string]struct {
			IsWriteIndex *bool `json:"is_write_index"`
		} `json:"aliases"`
	}
	if json.Unmarshal(rb, &byIndex) != nil {
		return ""
	}
	var only string
	for index, a := range byIndex {
		if w := a.Aliases[name].IsWriteIndex; w != nil && *w {
			return index
		}
		only = index
	}
	if len(byIndex) == 1 {
		return only
	}
	return ""
}
