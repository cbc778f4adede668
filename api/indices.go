package api

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// indexCache keeps the list of managed indices for a short time: it is
// consulted on every request.
type indexCache struct {
	src Pipeline
	ttl time.Duration
	log *slog.Logger

	mu      sync.Mutex
	list    []ManagedIndex
	byName  map[string]ManagedIndex
	fetched time.Time
}

func (c *indexCache) all(ctx context.Context) ([]ManagedIndex, map[string]ManagedIndex, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byName != nil && time.Since(c.fetched) < c.ttl {
		return c.list, c.byName, nil
	}
	list, err := c.src.Indices(ctx)
	if err != nil {
		c.log.Warn("list managed indices", "error", err)
		if c.byName != nil {
			return c.list, c.byName, nil
		}
		return nil, nil, unavailable("the list of indices is not available yet")
	}
	by := make(map[string]ManagedIndex, len(list))
	for _, mi := range list {
		if validIndexName(mi.Name) == nil {
			by[mi.Name] = mi
		}
	}
	list = list[:0:0]
	for _, mi := range by {
		list = append(list, mi)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	c.list, c.byName, c.fetched = list, by, time.Now()
	return list, by, nil
}

func (c *indexCache) lookup(ctx context.Context, name string) (ManagedIndex, bool, error) {
	_, by, err := c.all(ctx)
	if err != nil {
		return ManagedIndex{}, false, err
	}
	mi, ok := by[name]
	return mi, ok, nil
}

type indicesResponse struct {
	Indices []ManagedIndex `json:"indices"`
}

// indicesHandler answers GET /indices with the managed indices the caller
// may query.
func (s *Server) indicesHandler(c *fiber.Ctx) error {
	ctx, cancel := s.requestContext(c)
	defer cancel()
	list, _, err := s.indices.all(ctx)
	if err != nil {
		return err
	}
	out := make([]ManagedIndex, 0, len(list))
	for _, mi := range list {
		if !allowedIndex(c, mi.Name) {
			continue
		}
		// Only indices a search can reach: a table whose rows never make
		// an index of its own (a partition, whose rows go to its root's
		// index; a table skipped for want of a key) is not one. While the
		// engine cannot tell, the index stays listed.
		if _, err := s.mappings.get(ctx, mi.Name); isNotFound(err) {
			continue
		}
		out = append(out, mi)
	}
	return c.JSON(indicesResponse{Indices: out})
}
