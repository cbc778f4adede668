package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// scrollRequest is the query of GET /search/{index}/scroll. The first call
// carries the query (query_fields as JSON, q, sort_by, fields,
// exclude_fields); later calls carry the cursor, and may change size and
// fields only.
type scrollRequest struct {
	Cursor     string
	Size       int
	Fields     []string
	fieldsSet  bool
	Exclude    []string
	Q          string
	SortBy     orderedSort
	RawFilters map[string]json.RawMessage
	filters    []filter
}

// parseScrollQuery decodes and checks the raw query string of a scroll call.
func parseScrollQuery(raw string) (*scrollRequest, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest("invalid query string")
	}
	allowed := map[string]bool{"cursor": true, "size": true, "fields": true, "exclude_fields": true,
		"q": true, "sort_by": true, "query_fields": true, "min_lsn": true}
	for k, v := range vals {
		if !allowed[k] {
			return nil, badRequest(fmt.Sprintf("unknown parameter %q", truncateName(k)))
		}
		if len(v) > 1 {
			return nil, badRequest(fmt.Sprintf("parameter %q given more than once", k))
		}
	}
	r := &scrollRequest{Cursor: vals.Get("cursor"), Size: DefaultPageSize}
	if vals.Has("size") {
		n, err := strconv.Atoi(vals.Get("size"))
		if err != nil || n < 1 || n > MaxPageSize {
			return nil, badRequest(fmt.Sprintf("size: want 1 to %d, got %q", MaxPageSize, truncateName(vals.Get("size"))))
		}
		r.Size = n
	}
	if vals.Has("fields") {
		r.Fields, r.fieldsSet = splitList(vals.Get("fields")), true
	}
	if r.Cursor != "" {
		for _, k := range []string{"exclude_fields", "q", "sort_by", "query_fields"} {
			if vals.Has(k) {
				return nil, badRequest(fmt.Sprintf("%s: the cursor already carries the query; send only cursor, size and fields", k))
			}
		}
		return r, nil
	}
	r.Exclude = splitList(vals.Get("exclude_fields"))
	r.Q = vals.Get("q")
	if sb := vals.Get("sort_by"); sb != "" {
		if r.SortBy, err = parseSortParam(sb); err != nil {
			return nil, err
		}
	}
	if qf := vals.Get("query_fields"); qf != "" {
		dec := json.NewDecoder(strings.NewReader(qf))
		if err := dec.Decode(&r.RawFilters); err != nil {
			return nil, badRequest(`query_fields: want a JSON object like {"status":"active"}`)
		}
		if dec.More() {
			return nil, badRequest("query_fields: trailing data after the object")
		}
	}
	if r.filters, err = parseFilters(r.RawFilters); err != nil {
		return nil, err
	}
	if err := checkCommon(r.Q, r.SortBy, r.Fields, r.Exclude); err != nil {
		return nil, err
	}
	return r, nil
}

// parseSortParam reads sort_by as "a:asc,b:desc" or as a JSON object.
func parseSortParam(s string) (orderedSort, error) {
	var o orderedSort
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		if err := json.Unmarshal([]byte(s), &o); err != nil {
			return nil, badRequest(`sort_by: want "field:asc,other:desc" or {"field":"asc"}`)
		}
		return o, nil
	}
	for _, part := range splitList(s) {
		f, ord, ok := strings.Cut(part, ":")
		if !ok {
			ord = "asc"
		}
		o = append(o, sortField{Field: f, Order: strings.ToLower(ord)})
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func truncateName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

type scrollMeta struct {
	TotalRecords   int64    `json:"total_records"`
	PageSize       int      `json:"page_size"`
	HasNext        bool     `json:"has_next"`
	HasPrevious    bool     `json:"has_previous"`
	NextCursor     *string  `json:"next_cursor"`
	SelectedFields []string `json:"selected_fields"`
}

type scrollResponse struct {
	Data []json.RawMessage `json:"data"`
	Meta scrollMeta        `json:"meta"`
}

// scroll answers GET /search/{index}/scroll: search_after paging on a total
// order (the requested sort, then the row key), so it reaches any depth and
// never skips or repeats a document whose sort values do not change.
func (s *Server) scroll(c *fiber.Ctx) error {
	req, err := parseScrollQuery(string(c.Request().URI().QueryString()))
	if err != nil {
		return err
	}
	index := c.Params("index")
	cur := &cursor{Index: index, Filters: req.RawFilters, Q: req.Q, Sort: req.SortBy,
		Fields: req.Fields, Exclude: req.Exclude, Size: req.Size}
	if req.Cursor != "" {
		if cur, err = s.cursors.decode(req.Cursor); err != nil {
			return err
		}
		if cur.Index != index {
			return errBadCursor
		}
		if c.Request().URI().QueryArgs().Has("size") {
			cur.Size = req.Size
		}
		if req.fieldsSet {
			cur.Fields = req.Fields
		}
		if req.filters, err = parseFilters(cur.Filters); err != nil {
			return errBadCursor
		}
	}
	ctx, cancel := s.requestContext(c)
	defer cancel()
	v, err := s.view(ctx, c, index)
	if err != nil {
		return err
	}
	if err := s.readYourWrites(ctx, c, v.name, c.Query("min_lsn")); err != nil {
		return err
	}
	spec := querySpec{Filters: req.filters, Q: cur.Q, SortBy: cur.Sort, Fields: cur.Fields, Exclude: cur.Exclude}
	query, err := buildQuery(v, spec)
	if err != nil {
		return err
	}
	src, selected, err := buildSource(v, cur.Fields, cur.Exclude)
	if err != nil {
		return err
	}
	sorts, err := buildSort(v, cur.Sort, cur.Q != "", true)
	if err != nil {
		return err
	}
	body := map[string]any{"query": query, "size": cur.Size + 1, "track_total_hits": true, "sort": sorts}
	if len(src) > 0 {
		body["_source"] = src
	}
	if len(cur.After) > 0 {
		if len(cur.After) != len(sorts) {
			return errBadCursor
		}
		body["search_after"] = cur.After
	}
	sr, err := s.eng.search(ctx, v.name, body)
	if err != nil {
		return err
	}
	hits := sr.Hits.Hits
	hasNext := len(hits) > cur.Size
	if hasNext {
		hits = hits[:cur.Size]
	}
	data := make([]json.RawMessage, 0, len(hits))
	for _, h := range hits {
		data = append(data, renderHit(h, v.hidden, cur.Fields, cur.Exclude))
	}
	meta := scrollMeta{TotalRecords: sr.Hits.Total.Value, PageSize: cur.Size, HasNext: hasNext,
		HasPrevious: req.Cursor != "", SelectedFields: selected}
	if hasNext {
		last := hits[len(hits)-1]
		if len(last.Sort) != len(sorts) {
			return fmt.Errorf("scroll %s: hit has %d sort values, want %d", v.name, len(last.Sort), len(sorts))
		}
		next := *cur
		next.After = compactAll(last.Sort)
		tok, err := s.cursors.encode(&next)
		if err != nil {
			return err
		}
		meta.NextCursor = &tok
	}
	return c.JSON(scrollResponse{Data: data, Meta: meta})
}

func compactAll(in []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(in))
	for i, r := range in {
		var b bytes.Buffer
		if json.Compact(&b, r) == nil {
			out[i] = b.Bytes()
		} else {
			out[i] = r
		}
	}
	return out
}
