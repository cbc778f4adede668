package api

import (
	"fmt"
	"strings"
)

// querySpec is what a client asked for, before paging.
type querySpec struct {
	Filters []filter
	Q       string
	SortBy  orderedSort
	Fields  []string
	Exclude []string
}

// simpleFlags are the simple_query_string operators a client may use:
// + | - "…" ( ) and whitespace. Prefix (*), fuzzy and slop (~) operators
// are off, so no query can expand into an unbounded set of terms.
const simpleFlags = "AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE|ESCAPE"

// cleanQ removes the operators that are off, for engines that ignore flags.
func cleanQ(q string) string {
	return strings.Map(func(r rune) rune {
		if r == '*' || r == '~' || r < ' ' {
			return ' '
		}
		return r
	}, q)
}

// buildQuery maps the filters and the free text to a bool query. Every value
// lands in a typed query (term, terms, range, match_phrase, exists,
// simple_query_string over the index's configured fields): nothing the client
// sends is passed through as query DSL.
func buildQuery(v *indexView, spec querySpec) (map[string]any, error) {
	filters := make([]any, 0, len(spec.Filters))
	for _, f := range spec.Filters {
		q, err := filterQuery(v, f)
		if err != nil {
			return nil, err
		}
		filters = append(filters, q)
	}
	var must []any
	if strings.TrimSpace(spec.Q) != "" {
		if len(v.searchFields) == 0 {
			return nil, badRequest(fmt.Sprintf("q: index %q has no text fields to search", v.name))
		}
		must = append(must, map[string]any{"simple_query_string": map[string]any{
			"query": cleanQ(spec.Q), "fields": v.searchFields, "default_operator": "and",
			"flags": simpleFlags, "lenient": true,
		}})
	}
	if len(filters) == 0 && len(must) == 0 {
		return map[string]any{"match_all": map[string]any{}}, nil
	}
	b := map[string]any{}
	if len(filters) > 0 {
		b["filter"] = filters
	}
	if len(must) > 0 {
		b["must"] = must
	}
	return map[string]any{"bool": b}, nil
}

func filterQuery(v *indexView, f filter) (any, error) {
	fi, ok := v.fields[f.Field]
	if !ok {
		return nil, badRequest(fmt.Sprintf("query_fields: unknown field %q", f.Field))
	}
	if err := checkFilterValues(f, fi); err != nil {
		return nil, err
	}
	target := fi.Exact
	switch f.Kind {
	case filterRange:
		if target == "" {
			target = f.Field
		}
		return map[string]any{"range": map[string]any{target: f.Range}}, nil
	case filterMissing:
		return map[string]any{"bool": map[string]any{"must_not": map[string]any{"exists": map[string]any{"field": f.Field}}}}, nil
	case filterAnyOf:
		if target == "" {
			should := make([]any, len(f.Values))
			for i, e := range f.Values {
				should[i] = map[string]any{"match_phrase": map[string]any{f.Field: e}}
			}
			return map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}}, nil
		}
		return map[string]any{"terms": map[string]any{target: f.Values}}, nil
	default:
		if target == "" {
			return map[string]any{"match_phrase": map[string]any{f.Field: f.Values[0]}}, nil
		}
		return map[string]any{"term": map[string]any{target: f.Values[0]}}, nil
	}
}

// checkFilterValues checks every value of f against its field's type.
func checkFilterValues(f filter, fi fieldInfo) error {
	where := "query_fields." + f.Field
	switch f.Kind {
	case filterRange:
		for _, op := range []string{"gte", "gt", "lte", "lt"} {
			if bound, ok := f.Range[op]; ok {
				if err := checkValue(where+"."+op, fi, bound); err != nil {
					return err
				}
			}
		}
	case filterAnyOf:
		for i, e := range f.Values {
			if err := checkValue(fmt.Sprintf("%s[%d]", where, i), fi, e); err != nil {
				return err
			}
		}
	case filterExact:
		return checkValue(where, fi, f.Values[0])
	}
	return nil
}

// knownField reports whether name is a visible field or an object holding
// visible fields.
func (v *indexView) knownField(name string) bool {
	if _, ok := v.fields[name]; ok {
		return true
	}
	if name == "" || isHidden(v.hidden, name) {
		return false
	}
	for f := range v.fields {
		if strings.HasPrefix(f, name+".") {
			return true
		}
	}
	return false
}

// buildSource returns the _source filter and the fields the response holds.
// Hidden fields are always excluded, whatever was asked.
func buildSource(v *indexView, fields, exclude []string) (map[string]any, []string, error) {
	for _, f := range fields {
		if !v.knownField(f) {
			return nil, nil, badRequest(fmt.Sprintf("fields: unknown field %q", f))
		}
	}
	for _, f := range exclude {
		if !v.knownField(f) {
			return nil, nil, badRequest(fmt.Sprintf("exclude_fields: unknown field %q", f))
		}
	}
	src := map[string]any{}
	if len(fields) > 0 {
		src["includes"] = fields
	}
	excludes := append(append([]string{}, exclude...), v.hidden...)
	if len(excludes) > 0 {
		src["excludes"] = excludes
	}
	selected := fields
	if len(selected) == 0 {
		selected = make([]string, 0, len(v.fields))
		for _, f := range v.sortedNames() {
			if !isHidden(exclude, f) {
				selected = append(selected, f)
			}
		}
	} else if len(exclude) > 0 {
		kept := make([]string, 0, len(selected))
		for _, f := range selected {
			if !isHidden(exclude, f) {
				kept = append(kept, f)
			}
		}
		selected = kept
	}
	return src, selected, nil
}

// buildSort maps sort_by to engine sort clauses. With byScore, relevance
// comes first when nothing else is asked; with tieBreak, the row key is
// appended so that the order is total (required by cursors).
func buildSort(v *indexView, sortBy orderedSort, byScore, tieBreak bool) ([]any, error) {
	var out []any
	used := map[string]bool{}
	for _, sf := range sortBy {
		fi, ok := v.fields[sf.Field]
		if !ok {
			return nil, badRequest(fmt.Sprintf("sort_by: unknown field %q", sf.Field))
		}
		if fi.Exact == "" {
			return nil, badRequest(fmt.Sprintf("sort_by: field %q is full-text only and cannot be sorted", sf.Field))
		}
		used[sf.Field] = true
		out = append(out, map[string]any{fi.Exact: map[string]any{"order": sf.Order, "unmapped_type": "keyword"}})
	}
	if len(sortBy) == 0 && byScore {
		out = append(out, map[string]any{"_score": map[string]any{"order": "desc"}})
	}
	if !tieBreak {
		return out, nil
	}
	if len(v.key) == 0 {
		return nil, badRequest(fmt.Sprintf("index %q has no visible unique key field to page by", v.name))
	}
	for _, k := range v.key {
		fi := v.fields[k]
		if used[k] {
			continue
		}
		if fi.Exact == "" {
			return nil, badRequest(fmt.Sprintf("index %q: key field %q cannot be sorted", v.name, k))
		}
		out = append(out, map[string]any{fi.Exact: map[string]any{"order": "asc"}})
	}
	return out, nil
}

// buildHighlight asks for fragments of the text fields q searched that the
// response returns (fields and exclude as in buildSource): a field left out
// of the documents is left out of their highlights too. It returns nil when
// no such field remains.
func buildHighlight(v *indexView, fields, exclude []string) map[string]any {
	hl := map[string]any{}
	for _, f := range v.searchFields {
		name, _, _ := strings.Cut(f, "^")
		if fi, ok := v.fields[name]; ok && (fi.Type == "text" || fi.Type == "match_only_text") && returned(name, fields, exclude) {
			hl[name] = map[string]any{}
		}
	}
	if len(hl) == 0 {
		return nil
	}
	return map[string]any{"fields": hl, "pre_tags": []string{"<em>"}, "post_tags": []string{"</em>"}}
}

// returned reports whether field name is in the documents a response holds:
// selected by fields (all when empty), itself or an object holding it, and
// not removed by exclude.
func returned(name string, fields, exclude []string) bool {
	if isHidden(exclude, name) {
		return false
	}
	return len(fields) == 0 || isHidden(fields, name)
}

// buildFacets asks for term counts of each facet field.
func buildFacets(v *indexView, facets []string) (map[string]any, error) {
	aggs := map[string]any{}
	for i, f := range facets {
		fi, ok := v.fields[f]
		if !ok {
			return nil, badRequest(fmt.Sprintf("facets: unknown field %q", f))
		}
		if fi.Exact == "" {
			return nil, badRequest(fmt.Sprintf("facets: field %q is full-text only and has no terms to count", f))
		}
		aggs[fmt.Sprintf("f%d", i)] = map[string]any{"terms": map[string]any{"field": fi.Exact, "size": DefaultFacetSize}}
	}
	return aggs, nil
}
