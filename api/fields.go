package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/gofiber/fiber/v2"

	"github.com/walsearch/walsearch/internal/esclient"
)

// fieldInfo is what the API knows of one field of an index.
type fieldInfo struct {
	Type string // Elasticsearch type: text, keyword, long, date, ...
	// Exact is the field to use for exact matches, sorting and facets: the
	// field itself, or its keyword sub-field for a text field ("" when none).
	Exact string
	// Format is a date field's format ("" for the default).
	Format string
}

// indexView is an index as one request may see it: hidden fields are gone
// from fields, so every lookup of a hidden field fails like an unknown one.
type indexView struct {
	name   string
	fields map[string]fieldInfo
	hidden []string
	// key are the fields of the row key, used as the paging tie-breaker.
	key []string
	// searchFields are the fields "q" searches, with optional ^boost.
	searchFields []string
	managed      ManagedIndex
	// columnsOnly marks a view made from the table's columns because the
	// engine's mapping could not be read: only the PostgreSQL fallback may
	// answer through it.
	columnsOnly bool
}

// isHidden reports whether name is a hidden field or inside one.
func isHidden(hidden []string, name string) bool {
	for _, h := range hidden {
		if name == h || strings.HasPrefix(name, h+".") {
			return true
		}
	}
	return false
}

// view resolves index for a request: it must be managed and allowed for the
// caller, and its mapping is fetched (cached) with hidden fields removed.
func (s *Server) view(ctx context.Context, c *fiber.Ctx, index string) (*indexView, error) {
	mi, err := s.managedIndex(ctx, c, index)
	if err != nil {
		return nil, err
	}
	all, err := s.mappings.get(ctx, index)
	if err != nil {
		return nil, err
	}
	return s.newView(mi, all, false), nil
}

// searchView is view for POST /search: while the engine is unreachable and
// its mapping was never read, an index the PostgreSQL fallback can query is
// seen through its table's columns, so that simple searches can still be
// answered.
func (s *Server) searchView(ctx context.Context, c *fiber.Ctx, index string) (*indexView, error) {
	mi, err := s.managedIndex(ctx, c, index)
	if err != nil {
		return nil, err
	}
	all, err := s.mappings.get(ctx, index)
	if errors.Is(err, errEngineDown) && s.fallback != nil && len(mi.Columns) > 0 {
		return s.newView(mi, columnFields(mi.Columns), true), nil
	}
	if err != nil {
		return nil, err
	}
	return s.newView(mi, all, false), nil
}

// managedIndex checks that index is a managed index the caller may query.
func (s *Server) managedIndex(ctx context.Context, c *fiber.Ctx, index string) (ManagedIndex, error) {
	if err := validIndexName(index); err != nil {
		return ManagedIndex{}, err
	}
	if !allowedIndex(c, index) {
		return ManagedIndex{}, errIndexNotFound(index)
	}
	mi, ok, err := s.indices.lookup(ctx, index)
	if err != nil {
		return ManagedIndex{}, err
	}
	if !ok {
		return ManagedIndex{}, errIndexNotFound(index)
	}
	return mi, nil
}

// columnFields describes a table's columns as fields of unknown type, each
// its own exact field: enough to check a request that only the PostgreSQL
// fallback will answer.
func columnFields(columns []string) map[string]fieldInfo {
	out := make(map[string]fieldInfo, len(columns))
	for _, c := range columns {
		out[c] = fieldInfo{Exact: c}
	}
	return out
}

func (s *Server) newView(mi ManagedIndex, all map[string]fieldInfo, columnsOnly bool) *indexView {
	ic := s.cfg.Indices[mi.Name]
	v := &indexView{name: mi.Name, fields: make(map[string]fieldInfo, len(all)), hidden: ic.HiddenFields, managed: mi, columnsOnly: columnsOnly}
	for name, fi := range all {
		if !isHidden(v.hidden, name) {
			v.fields[name] = fi
		}
	}
	for _, k := range mi.Key {
		if _, ok := v.fields[k]; ok {
			v.key = append(v.key, k)
		}
	}
	if len(v.key) != len(mi.Key) {
		v.key = nil // a key column is hidden or not mapped yet
	}
	if len(mi.Key) == 0 {
		if _, ok := v.fields["id"]; ok {
			v.key = []string{"id"}
		}
	}
	v.searchFields = searchFields(ic.SearchFields, v)
	return v
}

// searchFields returns the configured full-text fields that are visible, or
// by default every visible text and keyword field.
func searchFields(configured []string, v *indexView) []string {
	var out []string
	if len(configured) > 0 {
		for _, f := range configured {
			name, _, _ := strings.Cut(f, "^")
			if _, ok := v.fields[name]; ok {
				out = append(out, f)
			}
		}
		return out
	}
	for name, fi := range v.fields {
		if fi.Type == "text" || fi.Type == "keyword" || fi.Type == "match_only_text" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// sortedNames returns the visible field names in order.
func (v *indexView) sortedNames() []string {
	out := make([]string, 0, len(v.fields))
	for f := range v.fields {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

type fieldsResponse struct {
	Index      string            `json:"index"`
	Fields     []string          `json:"fields"`
	FieldTypes map[string]string `json:"field_types"`
}

// fieldsHandler answers GET /indices/{index}/fields.
func (s *Server) fieldsHandler(c *fiber.Ctx) error {
	ctx, cancel := s.requestContext(c)
	defer cancel()
	v, err := s.view(ctx, c, c.Params("index"))
	if err != nil {
		return err
	}
	types := make(map[string]string, len(v.fields))
	for name, fi := range v.fields {
		types[name] = fi.Type
	}
	return c.JSON(fieldsResponse{Index: v.name, Fields: v.sortedNames(), FieldTypes: types})
}

type indexMapping struct {
	fields  map[string]fieldInfo
	fetched time.Time
}

// mappingCache keeps each index's flattened mapping for a short time, so
// new fields show up without a restart. It goes through the engine's
// breaker like searches do: while the engine is down it serves the last
// known mapping without asking.
type mappingCache struct {
	es  *esclient.Client
	br  *breaker
	ttl time.Duration

	mu sync.Mutex
	m  map[string]indexMapping
}

func newMappingCache(es *esclient.Client, br *breaker, ttl time.Duration) *mappingCache {
	return &mappingCache{es: es, br: br, ttl: ttl, m: map[string]indexMapping{}}
}

// get returns the fields of index, or a not-found error.
func (c *mappingCache) get(ctx context.Context, index string) (map[string]fieldInfo, error) {
	c.mu.Lock()
	im, ok := c.m[index]
	c.mu.Unlock()
	if ok && time.Since(im.fetched) < c.ttl {
		return im.fields, nil
	}
	if c.br.open() {
		if ok {
			return im.fields, nil // serve the last known mapping during an outage
		}
		return nil, errEngineDown
	}
	res, err := esapi.IndicesGetMappingRequest{Index: []string{index}}.Do(ctx, c.es)
	if err != nil {
		if ctx.Err() == nil {
			c.br.fail(err)
		}
		if ok {
			return im.fields, nil
		}
		return nil, errEngineDown
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	switch {
	case res.StatusCode == http.StatusNotFound:
		return nil, errIndexNotFound(index)
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		c.br.fail(fmt.Errorf("HTTP %d", res.StatusCode))
		if ok {
			return im.fields, nil
		}
		return nil, errEngineDown
	case res.IsError():
		if err := c.es.AuthError(res.StatusCode, body); err != nil {
			return nil, fmt.Errorf("get mapping of %s: %w", index, err)
		}
		return nil, fmt.Errorf("get mapping of %s: HTTP %d", index, res.StatusCode)
	}
	var byIndex map[string]struct {
		Mappings struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(body, &byIndex); err != nil {
		return nil, fmt.Errorf("decode mapping of %s: %w", index, err)
	}
	fields := map[string]fieldInfo{}
	for _, m := range byIndex {
		flatten("", m.Mappings.Properties, fields)
	}
	c.mu.Lock()
	c.m[index] = indexMapping{fields: fields, fetched: time.Now()}
	c.mu.Unlock()
	return fields, nil
}

type property struct {
	Type       string                     `json:"type"`
	Format     string                     `json:"format"`
	Properties map[string]json.RawMessage `json:"properties"`
	Fields     map[string]struct {
		Type string `json:"type"`
	} `json:"fields"`
}

func flatten(prefix string, props map[string]json.RawMessage, out map[string]fieldInfo) {
	for name, raw := range props {
		var p property
		if json.Unmarshal(raw, &p) != nil {
			continue
		}
		path := prefix + name
		if p.Properties != nil && (p.Type == "" || p.Type == "object") {
			flatten(path+".", p.Properties, out)
			continue
		}
		fi := fieldInfo{Type: p.Type, Exact: path, Format: p.Format}
		if p.Type == "text" || p.Type == "match_only_text" {
			fi.Exact = ""
			subs := make([]string, 0, len(p.Fields))
			for sub := range p.Fields {
				subs = append(subs, sub)
			}
			sort.Strings(subs)
			for _, sub := range subs {
				if p.Fields[sub].Type == "keyword" {
					fi.Exact = path + "." + sub
					break
				}
			}
		}
		out[path] = fi
	}
}
