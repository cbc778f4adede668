package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/walsearch/walsearch/bus"
)

// Request limits.
const (
	MaxQueryLength   = 1024
	MaxFilters       = 64
	MaxListValues    = 1024
	MaxFacets        = 20
	MaxFieldList     = 1024
	DefaultFacetSize = 10
)

// searchRequest is the body of POST /search.
type searchRequest struct {
	Index         string                     `json:"index"`
	QueryFields   map[string]json.RawMessage `json:"query_fields"`
	Fields        []string                   `json:"fields"`
	ExcludeFields []string                   `json:"exclude_fields"`
	SortBy        orderedSort                `json:"sort_by"`
	// RawPage, RawPageSize and RawSize are as sent (nil when absent);
	// Page and PageSize are what the search uses.
	RawPage     *int     `json:"page"`
	RawPageSize *int     `json:"page_size"`
	RawSize     *int     `json:"size"`
	Page        int      `json:"-"`
	PageSize    int      `json:"-"`
	Q           string   `json:"q"`
	Highlight   bool     `json:"highlight"`
	Facets      []string `json:"facets"`
	MinLSN      string   `json:"min_lsn"`

	filters []filter
	minLSN  bus.LSN
}

// filterKind is what a query_fields entry asks for.
type filterKind int

const (
	filterExact   filterKind = iota // a scalar
	filterAnyOf                     // a list of scalars
	filterRange                     // {"gte", "gt", "lte", "lt"}
	filterMissing                   // null
)

// filter is one parsed query_fields entry. Values are strings, json.Number
// or bool: nothing else can reach a query.
type filter struct {
	Field  string
	Kind   filterKind
	Values []any
	Range  map[string]any
}

// orderedSort keeps the order of {"field": "asc", ...}.
type orderedSort []sortField

type sortField struct {
	Field string `json:"f"`
	Order string `json:"o"`
}

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
		return errors.New(`sort_by: want an object like {"field": "asc"}`)
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

// parseSearchRequest decodes and checks a POST /search body, except what
// depends on the index's mapping.
func parseSearchRequest(body []byte) (*searchRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req searchRequest
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest("invalid JSON body: " + jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("invalid JSON body: trailing data after the object")
	}
	if err := req.paging(); err != nil {
		return nil, err
	}
	var err error
	if req.filters, err = parseFilters(req.QueryFields); err != nil {
		return nil, err
	}
	if err := checkCommon(req.Q, req.SortBy, req.Fields, req.ExcludeFields); err != nil {
		return nil, err
	}
	if len(req.Facets) > MaxFacets {
		return nil, badRequest(fmt.Sprintf("facets: at most %d fields", MaxFacets))
	}
	if req.MinLSN != "" {
		if req.minLSN, err = bus.ParseLSN(req.MinLSN); err != nil {
			return nil, badRequest(fmt.Sprintf("min_lsn: want a PostgreSQL LSN like 0/16B3748, got %q", req.MinLSN))
		}
	}
	return &req, nil
}

// paging sets Page and PageSize from what was sent: page_size (or its
// alias size) 1 to MaxPageSize, default DefaultPageSize; page 1 or more,
// default 1, with page × page_size within MaxResultWindow. A value given
// out of range, 0 included, is refused rather than replaced.
func (req *searchRequest) paging() error {
	req.PageSize = DefaultPageSize
	for _, p := range []struct {
		name string
		v    *int
	}{{"size", req.RawSize}, {"page_size", req.RawPageSize}} { // page_size wins
		if p.v == nil {
			continue
		}
		if *p.v < 1 || *p.v > MaxPageSize {
			return badRequest(fmt.Sprintf("%s: want 1 to %d, got %d", p.name, MaxPageSize, *p.v))
		}
		req.PageSize = *p.v
	}
	req.Page = 1
	if req.RawPage != nil {
		req.Page = *req.RawPage
	}
	maxPage := MaxResultWindow / req.PageSize
	if req.Page < 1 {
		return badRequest(fmt.Sprintf("page: want 1 to %d (with page_size %d), got %d", maxPage, req.PageSize, req.Page))
	}
	if req.Page > maxPage {
		return badRequest(fmt.Sprintf("page: want 1 to %d (with page_size %d), got %d; page × page_size may not exceed %d, use GET /search/{index}/scroll to page deeper",
			maxPage, req.PageSize, req.Page, MaxResultWindow))
	}
	return nil
}

// checkCommon checks what POST /search and the scroll endpoint share.
func checkCommon(q string, sortBy orderedSort, fields, exclude []string) error {
	if len(q) > MaxQueryLength || !utf8.ValidString(q) {
		return badRequest(fmt.Sprintf("q: want valid text of at most %d bytes", MaxQueryLength))
	}
	if len(fields) > MaxFieldList || len(exclude) > MaxFieldList || len(sortBy) > 16 {
		return badRequest("fields, exclude_fields or sort_by: too many entries")
	}
	seen := map[string]bool{}
	for _, sf := range sortBy {
		if sf.Order != "asc" && sf.Order != "desc" {
			return badRequest(fmt.Sprintf("sort_by.%s: want \"asc\" or \"desc\", got %q", sf.Field, sf.Order))
		}
		if seen[sf.Field] {
			return badRequest(fmt.Sprintf("sort_by.%s: given twice", sf.Field))
		}
		seen[sf.Field] = true
	}
	return nil
}

// parseFilters turns query_fields into typed filters: a scalar is an exact
// match, a list is "any of", an object with gte/gt/lte/lt is a range and
// null matches documents without the field.
func parseFilters(qf map[string]json.RawMessage) ([]filter, error) {
	if len(qf) > MaxFilters {
		return nil, badRequest(fmt.Sprintf("query_fields: at most %d fields", MaxFilters))
	}
	names := make([]string, 0, len(qf))
	for f := range qf {
		names = append(names, f)
	}
	sort.Strings(names)
	out := make([]filter, 0, len(names))
	for _, name := range names {
		dec := json.NewDecoder(bytes.NewReader(qf[name]))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, badRequest(fmt.Sprintf("query_fields.%s: %s", name, jsonProblem(err)))
		}
		f := filter{Field: name}
		switch x := v.(type) {
		case map[string]any:
			f.Kind, f.Range = filterRange, map[string]any{}
			for op, bound := range x {
				switch op {
				case "gte", "gt", "lte", "lt":
					if !isScalar(bound) {
						return nil, badRequest(fmt.Sprintf("query_fields.%s.%s: want a number, date or string", name, op))
					}
					f.Range[op] = bound
				default:
					return nil, badRequest(fmt.Sprintf("query_fields.%s: unknown range operator %q (want gte, gt, lte, lt)", name, op))
				}
			}
			if len(f.Range) == 0 {
				return nil, badRequest(fmt.Sprintf("query_fields.%s: empty range", name))
			}
		case []any:
			if len(x) == 0 || len(x) > MaxListValues {
				return nil, badRequest(fmt.Sprintf("query_fields.%s: want 1 to %d values", name, MaxListValues))
			}
			for _, e := range x {
				if !isScalar(e) {
					return nil, badRequest(fmt.Sprintf("query_fields.%s: list values must be scalars", name))
				}
			}
			f.Kind, f.Values = filterAnyOf, x
		case nil:
			f.Kind = filterMissing
		default:
			f.Kind, f.Values = filterExact, []any{x}
		}
		out = append(out, f)
	}
	return out, nil
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, json.Number, bool:
		return true
	}
	return false
}

// jsonProblem describes a JSON decoding error without echoing the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("%s: want %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("want %s, got %s", te.Type, te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown parameter " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// validIndexName accepts only plain index names: no wildcards, lists,
// system (dot) or internal (underscore) names.
func validIndexName(name string) error {
	if name == "" {
		return badRequest("index: required")
	}
	if len(name) > 255 || name[0] == '.' || name[0] == '_' || name[0] == '-' || name == "_all" {
		return badRequest(fmt.Sprintf("index %q is not a searchable index", name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return badRequest(fmt.Sprintf("index %q is not a searchable index", name))
		}
	}
	return nil
}
