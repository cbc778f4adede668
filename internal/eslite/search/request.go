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
}

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
	if r.size < 0 {
		r.size = DefaultSize
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
		case "timeout", "explain", "version", "seq_no_primary_term", "stored_fields", "docvalue_fields",
			"terminate_after", "min_score", "profile", "_name", "allow_partial_search_results", "indices_boost", "stats":
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
		case "q":
			return newError(http.StatusBadRequest, "illegal_argument_exception", "eslite does not support the [q] parameter; send a query body")
		}
	}
	return nil
}
