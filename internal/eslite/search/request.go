package search

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Defaults Elasticsearch applies to a search.
const (
	DefaultSize            = 10
	DefaultTrackTotalHits  = 10000
	DefaultMaxResultWindow = 10000
)

// Request is a parsed _search request.
type Request struct {
	query       dslQuery
	from, size  int
	sort        []sortSpec
	searchAfter []*node
	source      sourceFilter
	track       int // -1 = exact, 0 = off, N = accurate up to N
	trackScores bool
	highlight   *highlightSpec
	aggs        []*aggSpec
	src         []byte

	trackSet       bool // track_total_hits was given
	totalAsInt     bool // rest_total_hits_as_int: hits.total is a number
	terminateAfter int  // 0 = off
	docvalueFields []docvalueField
	pit            *PIT
	scroll         bool    // the request opens a scroll
	cursor         *Cursor // the page after it, for a scroll
}

// PIT is the "pit" section of a search body: the point in time to search
// and how much longer to keep it.
type PIT struct {
	ID        string
	KeepAlive string // "" keeps the current keep-alive
}

// PIT returns the point in time the request searches, or nil.
func (r *Request) PIT() *PIT { return r.pit }

// TotalAsInt reports whether rest_total_hits_as_int asked for hits.total as
// a number.
func (r *Request) TotalAsInt() bool { return r.totalAsInt }

// ParseRequest parses a _search body plus the URL parameters Elasticsearch accepts
// (size, from, sort, _source, _source_includes, _source_excludes, track_total_hits,
// track_scores). Bad DSL yields parsing_exception, x_content_parse_exception or
// illegal_argument_exception as Elasticsearch reports it.
func ParseRequest(body []byte, params url.Values) (*Request, error) {
	r := &Request{size: -1, track: DefaultTrackTotalHits, source: sourceFilter{enabled: true}, src: body}
	if len(bytes.TrimSpace(body)) > 0 {
		root, err := parseJSON(body)
		if err != nil {
			return nil, syntaxToError(body, err)
		}
		if root.kind != kObject {
			return nil, parsingError(body, root.off, "Expected [START_OBJECT] but found ["+root.kind.String()+"]")
		}
		if perr := r.parseBody(root); perr != nil {
			return nil, perr
		}
	}
	if perr := r.parseParams(params); perr != nil {
		return nil, perr
	}
	if perr := r.applyTotalAsInt(params); perr != nil {
		return nil, perr
	}
	if r.size < 0 {
		r.size = DefaultSize
	}
	_, r.scroll = params["scroll"]
	if r.pit != nil && len(r.sort) > 0 && (len(r.searchAfter) == 0 || len(r.searchAfter) == len(r.sort)+1) &&
		r.sort[len(r.sort)-1].field != "_shard_doc" {
		// Elasticsearch's implicit tiebreaker for point in time searches.
		r.sort = append(r.sort, sortSpec{field: "_shard_doc", unmappedType: "long"})
	}
	if perr := r.validate(); perr != nil {
		return nil, perr
	}
	if r.scroll {
		// A scroll counts every match.
		r.track = -1
	}
	if r.from < 0 {
		return nil, illegalArgument("[from] parameter cannot be negative, found [" + strconv.Itoa(r.from) + "]")
	}
	if len(r.searchAfter) > 0 {
		if len(r.sort) == 0 {
			// Elasticsearch sorts by _score when search_after has no sort.
			r.sort = []sortSpec{{field: "_score", desc: true}}
		}
		if len(r.searchAfter) != len(r.sort) {
			return nil, illegalArgument("search_after has " + strconv.Itoa(len(r.searchAfter)) +
				" value(s) but sort has " + strconv.Itoa(len(r.sort)) + ".")
		}
		if r.from > 0 {
			return nil, illegalArgument("[from] parameter must be set to 0 when [search_after] is used")
		}
	}
	return r, nil
}

func (r *Request) parseBody(root *node) *Error {
	p := &dslParser{src: r.src}
	for i, k := range root.keys {
		v := root.vals[i]
		koff := root.koffs[i]
		var err *Error
		switch k {
		case "query":
			r.query, err = p.parseQuery(v)
		case "from":
			r.from, err = r.intField(k, v)
		case "size":
			r.size, err = r.intField(k, v)
			if err == nil && r.size < 0 {
				err = illegalArgument("[size] parameter cannot be negative, found [" + strconv.Itoa(r.size) + "]")
			}
		case "sort":
			r.sort, err = parseSort(r.src, v)
		case "search_after":
			if v.kind != kArray {
				return xContentError(r.src, v.off, "[search_after] failed to parse field [search_after]")
			}
			r.searchAfter = v.vals
		case "_source":
			r.source, err = parseSourceNode(r.src, v)
		case "track_total_hits":
			r.trackSet = true
			switch v.kind {
			case kBool:
				r.track = 0
				if v.b {
					r.track = -1
				}
			case kNumber:
				n, ok := nodeInt(v)
				if !ok || n < -1 {
					return illegalArgument("[track_total_hits] parameter must be positive or equals to -1, got " + v.str)
				}
				r.track = int(n)
				if n == -1 {
					r.track = -1
				}
			default:
				return xContentError(r.src, v.off, "[track_total_hits] failed to parse field [track_total_hits]")
			}
		case "track_scores":
			if v.kind != kBool {
				return xContentError(r.src, v.off, "[track_scores] failed to parse field [track_scores]")
			}
			r.trackScores = v.b
		case "highlight":
			r.highlight, err = parseHighlight(r.src, v)
		case "aggs", "aggregations":
			if r.aggs != nil {
				return parsingError(r.src, koff, "Found two aggregation type definitions in [aggs]: [aggs] and [aggregations]")
			}
			r.aggs, err = parseAggs(r.src, v)
		case "docvalue_fields":
			r.docvalueFields, err = parseDocvalueFields(r.src, v)
		case "terminate_after":
			r.terminateAfter, err = r.intField(k, v)
			if err == nil && r.terminateAfter < 0 {
				err = illegalArgument("terminateAfter must be > 0")
			}
		case "pit":
			r.pit, err = parsePIT(r.src, v)
		case "timeout", "explain", "version", "seq_no_primary_term", "stored_fields", "min_score", "profile", "_name", "allow_partial_search_results", "indices_boost", "stats":
			// Accepted for compatibility; they do not change eslite's results.
		default:
			return parsingError(r.src, koff, "Unknown key for a "+v.kind.String()+" in ["+k+"].")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Request) intField(k string, v *node) (int, *Error) {
	n, ok := nodeInt(v)
	if !ok || n > 1<<31-1 || n < -(1<<31) {
		return 0, xContentError(r.src, v.off, "[search_source] failed to parse field ["+k+"]")
	}
	return int(n), nil
}

func (r *Request) parseParams(params url.Values) *Error {
	for k, vs := range params {
		if len(vs) == 0 {
			continue
		}
		v := vs[len(vs)-1]
		switch k {
		case "size", "from":
			n, err := strconv.Atoi(v)
			if err != nil {
				return illegalArgument("Failed to parse int parameter [" + k + "] with value [" + v + "]")
			}
			if k == "size" {
				if n < 0 {
					return illegalArgument("[size] parameter cannot be negative, found [" + v + "]")
				}
				r.size = n
			} else {
				r.from = n
			}
		case "sort":
			var specs []sortSpec
			for _, part := range strings.Split(v, ",") {
				name, order, has := strings.Cut(part, ":")
				s := sortSpec{field: name, desc: name == "_score"}
				if has {
					switch order {
					case "asc":
						s.desc = false
					case "desc":
						s.desc = true
					default:
						return illegalArgument("Unknown SortOrder [" + order + "]")
					}
				}
				specs = append(specs, s)
			}
			r.sort = specs
		case "_source":
			switch v {
			case "true":
				r.source = sourceFilter{enabled: true}
			case "false":
				r.source = sourceFilter{}
			default:
				r.source = sourceFilter{enabled: true, includes: strings.Split(v, ",")}
			}
		case "_source_includes":
			r.source.enabled = true
			r.source.includes = strings.Split(v, ",")
		case "_source_excludes":
			r.source.excludes = strings.Split(v, ",")
		case "track_total_hits":
			r.trackSet = true
			switch v {
			case "true":
				r.track = -1
			case "false":
				r.track = 0
			default:
				n, err := strconv.Atoi(v)
				if err != nil || n < -1 {
					return illegalArgument("Failed to parse int parameter [track_total_hits] with value [" + v + "]")
				}
				r.track = n
			}
		case "track_scores":
			r.trackScores = v == "true" || v == ""
		case "terminate_after":
			n, err := strconv.Atoi(v)
			if err != nil {
				return illegalArgument("Failed to parse int parameter [terminate_after] with value [" + v + "]")
			}
			if n < 0 {
				return illegalArgument("terminateAfter must be > 0")
			}
			r.terminateAfter = n
		case "docvalue_fields":
			for _, f := range strings.Split(v, ",") {
				r.docvalueFields = append(r.docvalueFields, docvalueField{field: f})
			}
		case "q":
			return newError(http.StatusBadRequest, "illegal_argument_exception", "eslite does not support the [q] parameter; send a query body")
		}
	}
	return nil
}

// parsePIT parses {"id": "...", "keep_alive": "1m"}.
func parsePIT(src []byte, v *node) (*PIT, *Error) {
	if v.kind != kObject {
		return nil, xContentError(src, v.off, "[search_source] pit doesn't support values of type: "+v.kind.String())
	}
	p := &PIT{}
	for i, k := range v.keys {
		val := v.vals[i]
		switch k {
		case "id":
			if val.kind != kString {
				return nil, xContentError(src, val.off, "[point_in_time] failed to parse field [id]")
			}
			p.ID = val.str
		case "keep_alive":
			if val.kind != kString {
				return nil, xContentError(src, val.off, "[point_in_time] failed to parse field [keep_alive]")
			}
			p.KeepAlive = val.str
		default:
			return nil, xContentError(src, v.koffs[i], "[point_in_time] unknown field ["+k+"]")
		}
	}
	if p.ID == "" {
		return nil, xContentError(src, v.off, "[point_in_time] requires [id]")
	}
	return p, nil
}

// applyTotalAsInt applies rest_total_hits_as_int as RestSearchAction does:
// it turns accurate tracking on unless the request chose, and refuses a
// numeric track_total_hits.
func (r *Request) applyTotalAsInt(params url.Values) *Error {
	v, ok := params["rest_total_hits_as_int"]
	if !ok {
		return nil
	}
	switch v[len(v)-1] {
	case "", "true":
	case "false":
		return nil
	default:
		return illegalArgument("Failed to parse value [" + v[len(v)-1] + "] as only [true] or [false] are allowed.")
	}
	r.totalAsInt = true
	switch {
	case !r.trackSet:
		r.track = -1
	case r.track > 0:
		return illegalArgument("[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got " + strconv.Itoa(r.track))
	}
	return nil
}

// validate is SearchRequest.validate: every problem, numbered, in one
// action_request_validation_exception.
func (r *Request) validate() *Error {
	var problems []string
	if r.scroll {
		if r.trackSet && r.track != -1 {
			problems = append(problems, "disabling [track_total_hits] is not allowed in a scroll context")
		}
		if r.from > 0 {
			problems = append(problems, "using [from] is not allowed in a scroll context")
		}
		if r.size == 0 {
			problems = append(problems, "[size] cannot be [0] in a scroll context")
		}
		if len(r.searchAfter) > 0 {
			problems = append(problems, "[search_after] cannot be used in a scroll context")
		}
		if r.pit != nil {
			problems = append(problems, "using [point in time] is not allowed in a scroll context")
		}
	}
	if r.pit == nil {
		for _, s := range r.sort {
			if s.field == "_shard_doc" {
				problems = append(problems, "[_shard_doc] sort field cannot be used without [point in time]")
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return ValidationError(problems...)
}

// ValidationError is Elasticsearch's ActionRequestValidationException:
// every problem numbered, each followed by a semicolon.
func ValidationError(problems ...string) *Error {
	var b strings.Builder
	b.WriteString("Validation Failed: ")
	for i, p := range problems {
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(": ")
		b.WriteString(p)
		b.WriteString(";")
	}
	return newError(http.StatusBadRequest, "action_request_validation_exception", b.String())
}
