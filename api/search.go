package api

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Facet is one value of a facet field and how many results have it.
type Facet struct {
	Value any   `json:"value"`
	Count int64 `json:"count"`
}

type searchMeta struct {
	TotalRecords   int64              `json:"total_records"`
	PageSize       int                `json:"page_size"`
	CurrentPage    int                `json:"current_page"`
	TotalPages     int64              `json:"total_pages"`
	HasNext        bool               `json:"has_next"`
	HasPrevious    bool               `json:"has_previous"`
	SelectedFields []string           `json:"selected_fields"`
	Facets         map[string][]Facet `json:"facets,omitempty"`
	// Source is "postgres" when the answer came from the fallback.
	Source string `json:"source,omitempty"`
}

type searchResponse struct {
	Data []json.RawMessage `json:"data"`
	Meta searchMeta        `json:"meta"`
}

// search answers POST /search.
func (s *Server) search(c *fiber.Ctx) error {
	req, err := parseSearchRequest(c.Body())
	if err != nil {
		return err
	}
	ctx, cancel := s.requestContext(c)
	defer cancel()
	v, err := s.searchView(ctx, c, req.Index)
	if err != nil {
		return err
	}
	if v.columnsOnly && !fallbackCanAnswer(req) {
		return errEngineDown
	}
	spec := querySpec{Filters: req.filters, Q: req.Q, SortBy: req.SortBy, Fields: req.Fields, Exclude: req.ExcludeFields}
	query, err := buildQuery(v, spec)
	if err != nil {
		return err
	}
	src, selected, err := buildSource(v, req.Fields, req.ExcludeFields)
	if err != nil {
		return err
	}
	sorts, err := buildSort(v, req.SortBy, req.Q != "", len(v.key) > 0)
	if err != nil {
		return err
	}
	body := map[string]any{
		"query": query, "from": (req.Page - 1) * req.PageSize, "size": req.PageSize,
		"track_total_hits": true,
	}
	if len(src) > 0 {
		body["_source"] = src
	}
	if len(sorts) > 0 {
		body["sort"] = sorts
	}
	if req.Highlight && req.Q != "" {
		if hl := buildHighlight(v, req.Fields, req.ExcludeFields); hl != nil {
			body["highlight"] = hl
		}
	}
	if len(req.Facets) > 0 {
		aggs, err := buildFacets(v, req.Facets)
		if err != nil {
			return err
		}
		body["aggs"] = aggs
	}
	// While the engine is known to be down, the fallback answers without
	// waiting for min_lsn: PostgreSQL already holds every committed write.
	if s.fallback != nil && (v.columnsOnly || s.eng.br.open()) {
		return s.fromPostgres(ctx, c, v, req, selected)
	}
	if err := s.readYourWrites(ctx, c, v.name, req.MinLSN); err != nil {
		if s.fallback != nil && errors.Is(err, errEngineDown) {
			return s.fromPostgres(ctx, c, v, req, selected)
		}
		return err
	}
	sr, err := s.eng.search(ctx, v.name, body)
	if err != nil {
		if s.fallback != nil && errors.Is(err, errEngineDown) {
			return s.fromPostgres(ctx, c, v, req, selected)
		}
		return err
	}
	data := make([]json.RawMessage, 0, len(sr.Hits.Hits))
	for _, h := range sr.Hits.Hits {
		data = append(data, renderHit(h, v.hidden, req.Fields, req.ExcludeFields))
	}
	total := sr.Hits.Total.Value
	pages := (total + int64(req.PageSize) - 1) / int64(req.PageSize)
	meta := searchMeta{
		TotalRecords: total, PageSize: req.PageSize, CurrentPage: req.Page, TotalPages: pages,
		HasNext: int64(req.Page) < pages, HasPrevious: req.Page > 1, SelectedFields: selected,
	}
	if len(req.Facets) > 0 {
		meta.Facets = make(map[string][]Facet, len(req.Facets))
		for i, f := range req.Facets {
			agg := sr.Aggregations["f"+strconv.Itoa(i)]
			out := make([]Facet, 0, len(agg.Buckets))
			for _, b := range agg.Buckets {
				val := b.Key
				if b.KeyAsString != "" {
					val = b.KeyAsString
				}
				out = append(out, Facet{Value: val, Count: b.DocCount})
			}
			meta.Facets[f] = out
		}
	}
	return c.JSON(searchResponse{Data: data, Meta: meta})
}

// fromPostgres answers req from the PostgreSQL fallback, or 503 when the
// fallback cannot answer it.
func (s *Server) fromPostgres(ctx context.Context, c *fiber.Ctx, v *indexView, req *searchRequest, selected []string) error {
	resp, ok, err := s.fallback.search(ctx, v, req, selected)
	if err != nil {
		return err
	}
	if !ok {
		return errEngineDown
	}
	return c.JSON(resp)
}

// renderHit returns a hit's document, with its highlights under
// "_highlight". Highlights of hidden fields, or of fields the document does
// not return, are never asked for and are dropped regardless.
func renderHit(h esHit, hidden, fields, exclude []string) json.RawMessage {
	src := h.Source
	if len(src) == 0 || string(src) == "null" {
		src = json.RawMessage("{}")
	}
	if len(h.Highlight) == 0 {
		return src
	}
	hl := map[string][]string{}
	for f, frags := range h.Highlight {
		if !isHidden(hidden, f) && returned(f, fields, exclude) {
			hl[f] = frags
		}
	}
	if len(hl) == 0 {
		return src
	}
	raw, err := json.Marshal(hl)
	if err != nil {
		return src
	}
	trimmed := strings.TrimSpace(string(src))
	if trimmed == "{}" {
		return json.RawMessage(`{"_highlight":` + string(raw) + `}`)
	}
	return json.RawMessage(trimmed[:len(trimmed)-1] + `,"_highlight":` + string(raw) + `}`)
}
