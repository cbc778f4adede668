package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/gofiber/fiber/v2"
)

// searchRequest is the body of POST /search.
type searchRequest struct {
	Index         string                     `json:"index"`
	QueryFields   map[string]json.RawMessage `json:"query_fields"`
	Fields        []string                   `json:"fields"`
	ExcludeFields []string                   `json:"exclude_fields"`
	SortBy        orderedSort                `json:"sort_by"`
	Page          int                        `json:"page"`
	PageSize      int                        `json:"page_size"`
	Size          int                        `json:"size"`
}

// orderedSort keeps the order of {"field": "asc", ...}.
type orderedSort []sortField

type sortField struct{ Field, Order string }

func (o *orderedSort) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf(`sort_by: want an object like {"field": "asc"}`)
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		var order string
		if err := dec.Decode(&order); err != nil {
			return fmt.Errorf("sort_by.%v: want \"asc\" or \"desc\"", kt)
		}
		*o = append(*o, sortField{Field: kt.(string), Order: strings.ToLower(order)})
	}
	return nil
}

type searchMeta struct {
	TotalRecords   int64    `json:"total_records"`
	PageSize       int      `json:"page_size"`
	CurrentPage    int      `json:"current_page"`
	TotalPages     int64    `json:"total_pages"`
	HasNext        bool     `json:"has_next"`
	HasPrevious    bool     `json:"has_previous"`
	SelectedFields []string `json:"selected_fields"`
}

func (s *Server) search(c *fiber.Ctx) error {
	var req searchRequest
	if err := json.Unmarshal(c.Body(), &req); err != nil {
		return badRequest("invalid JSON body: " + err.Error())
	}
	if err := validIndexName(req.Index); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	fields, err := s.mappings.get(ctx, req.Index)
	if err != nil {
		return err
	}
	body, page, size, err := buildQuery(&req, fields)
	if err != nil {
		return err
	}
	res, err := esapi.SearchRequest{Index: []string{req.Index}, Body: bytes.NewReader(body)}.Do(ctx, s.es)
	if err != nil {
		return unavailable("the search engine is unreachable")
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	switch {
	case res.StatusCode == http.StatusNotFound:
		return notFound(fmt.Sprintf("index %q does not exist", req.Index))
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return unavailable("the search engine is unavailable")
	case res.IsError():
		return fmt.Errorf("search %s: HTTP %d: %s", req.Index, res.StatusCode, rb)
	}
	var sr struct {
		Hits struct {
			Total struct {
				Value int64 `json:"value"`
			} `json:"total"`
			Hits []struct {
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(rb, &sr); err != nil {
		return fmt.Errorf("decode search response: %w", err)
	}
	data := make([]json.RawMessage, 0, len(sr.Hits.Hits))
	for _, h := range sr.Hits.Hits {
		if h.Source == nil {
			h.Source = json.RawMessage("{}")
		}
		data = append(data, h.Source)
	}
	total := sr.Hits.Total.Value
	pages := (total + int64(size) - 1) / int64(size)
	selected := req.Fields
	if len(selected) == 0 {
		selected = selectedFields(fields, req.ExcludeFields)
	}
	return c.JSON(fiber.Map{"data": data, "meta": searchMeta{
		TotalRecords: total, PageSize: size, CurrentPage: page, TotalPages: pages,
		HasNext: int64(page) < pages, HasPrevious: page > 1, SelectedFields: selected,
	}})
}

func selectedFields(fields map[string]fieldInfo, exclude []string) []string {
	skip := map[string]bool{}
	for _, e := range exclude {
		skip[e] = true
	}
	out := make([]string, 0, len(fields))
	for f := range fields {
		if !skip[f] {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// validIndexName accepts only plain index names: no wildcards, lists,
// system (dot) or internal (underscore) names.
func validIndexName(name string) error {
	if name == "" {
		return badRequest("index: required")
	}
	if len(name) > 255 || name[0] == '.' || name[0] == '_' || name[0] == '-' {
		return badRequest(fmt.Sprintf("index %q is not a searchable index", name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return badRequest(fmt.Sprintf("index %q is not a searchable index", name))
		}
	}
	return nil
}

// buildQuery turns the request into Elasticsearch query DSL. Every value is
// placed in a typed query; nothing the user sends is passed through as DSL.
func buildQuery(req *searchRequest, fields map[string]fieldInfo) (body []byte, page, size int, err error) {
	size = req.PageSize
	if size == 0 {
		size = req.Size
	}
	if size == 0 {
		size = DefaultPageSize
	}
	if size < 1 || size > MaxPageSize {
		return nil, 0, 0, badRequest(fmt.Sprintf("page_size: want 1 to %d, got %d", MaxPageSize, size))
	}
	page = req.Page
	if page == 0 {
		page = 1
	}
	if page < 1 {
		return nil, 0, 0, badRequest(fmt.Sprintf("page: want 1 or more, got %d", page))
	}
	if page*size > MaxResultWindow {
		return nil, 0, 0, badRequest(fmt.Sprintf("page × page_size may not exceed %d; use GET /search/{index}/scroll to page deeper", MaxResultWindow))
	}
	var filters []any
	names := make([]string, 0, len(req.QueryFields))
	for f := range req.QueryFields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, name := range names {
		fi, ok := fields[name]
		if !ok {
			return nil, 0, 0, badRequest(fmt.Sprintf("query_fields: unknown field %q", name))
		}
		q, err := fieldQuery(name, fi, req.QueryFields[name])
		if err != nil {
			return nil, 0, 0, err
		}
		filters = append(filters, q)
	}
	query := map[string]any{"bool": map[string]any{"filter": filters}}
	if len(filters) == 0 {
		query = map[string]any{"match_all": map[string]any{}}
	}
	es := map[string]any{
		"query": query, "from": (page - 1) * size, "size": size, "track_total_hits": true,
	}
	for _, f := range append(append([]string{}, req.Fields...), req.ExcludeFields...) {
		if _, ok := fields[f]; !ok {
			return nil, 0, 0, badRequest(fmt.Sprintf("fields: unknown field %q", f))
		}
	}
	if len(req.Fields) > 0 || len(req.ExcludeFields) > 0 {
		src := map[string]any{}
		if len(req.Fields) > 0 {
			src["includes"] = req.Fields
		}
		if len(req.ExcludeFields) > 0 {
			src["excludes"] = req.ExcludeFields
		}
		es["_source"] = src
	}
	if len(req.SortBy) > 0 {
		var sorts []any
		for _, sf := range req.SortBy {
			fi, ok := fields[sf.Field]
			if !ok {
				return nil, 0, 0, badRequest(fmt.Sprintf("sort_by: unknown field %q", sf.Field))
			}
			if sf.Order != "asc" && sf.Order != "desc" {
				return nil, 0, 0, badRequest(fmt.Sprintf("sort_by.%s: want \"asc\" or \"desc\", got %q", sf.Field, sf.Order))
			}
			if fi.Exact == "" {
				return nil, 0, 0, badRequest(fmt.Sprintf("sort_by: field %q is full-text only and cannot be sorted", sf.Field))
			}
			sorts = append(sorts, map[string]any{fi.Exact: map[string]any{"order": sf.Order, "unmapped_type": "keyword"}})
		}
		es["sort"] = sorts
	}
	body, err = json.Marshal(es)
	return body, page, size, err
}

// fieldQuery builds the filter for one query_fields entry: a scalar is an
// exact match, a list is "any of", an object with gte/gt/lte/lt is a range.
func fieldQuery(name string, fi fieldInfo, raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest(fmt.Sprintf("query_fields.%s: %v", name, err))
	}
	target := fi.Exact
	switch x := v.(type) {
	case map[string]any:
		r := map[string]any{}
		for op, bound := range x {
			switch op {
			case "gte", "gt", "lte", "lt":
				if !isScalar(bound) {
					return nil, badRequest(fmt.Sprintf("query_fields.%s.%s: want a number, date or string", name, op))
				}
				r[op] = bound
			default:
				return nil, badRequest(fmt.Sprintf("query_fields.%s: unknown range operator %q (want gte, gt, lte, lt)", name, op))
			}
		}
		if len(r) == 0 {
			return nil, badRequest(fmt.Sprintf("query_fields.%s: empty range", name))
		}
		if target == "" {
			target = name
		}
		return map[string]any{"range": map[string]any{target: r}}, nil
	case []any:
		for _, e := range x {
			if !isScalar(e) {
				return nil, badRequest(fmt.Sprintf("query_fields.%s: list values must be scalars", name))
			}
		}
		if target == "" {
			should := make([]any, len(x))
			for i, e := range x {
				should[i] = map[string]any{"match_phrase": map[string]any{name: e}}
			}
			return map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}}, nil
		}
		return map[string]any{"terms": map[string]any{target: x}}, nil
	case nil:
		return map[string]any{"bool": map[string]any{"must_not": map[string]any{"exists": map[string]any{"field": name}}}}, nil
	default:
		if target == "" {
			return map[string]any{"match_phrase": map[string]any{name: x}}, nil
		}
		return map[string]any{"term": map[string]any{target: x}}, nil
	}
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, json.Number, bool:
		return true
	}
	return false
}
