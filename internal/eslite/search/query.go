package search

import (
	"net/http"
	"strconv"
	"strings"
)

// query is one parsed query DSL clause, independent of any mapping; it is compiled
// against each target's mapping at search time (see compile.go).
type dslQuery interface{ name() string }

type (
	qMatchAll  struct{ boost float64 }
	qMatchNone struct{}
	qMatch     struct {
		field, text, operator, msm string
		boost                      float64
		phrase                     bool
	}
	qMultiMatch struct {
		fields         []boostedField
		text, operator string
		msm            string
		boost          float64
	}
	qTerm struct {
		field  string
		value  *node
		boost  float64
		noCase bool
	}
	qTerms struct {
		field  string
		values []*node
		boost  float64
	}
	qRange struct {
		field            string
		gt, gte, lt, lte *node
		format, timeZone string
		boost            float64
	}
	qBool struct {
		must, filter, should, mustNot []dslQuery
		msm                           string
		boost                         float64
	}
	qExists struct{ field string }
	qPrefix struct {
		field, value string
		boost        float64
	}
	qIds           struct{ ids []string }
	qConstantScore struct {
		filter dslQuery
		boost  float64
	}
	qSimple struct {
		text, defaultOp string
		fields          []boostedField
		boost           float64
		flags           simpleFlags
		msm             string
		fuzzyPrefix     int
	}
)

type boostedField struct {
	name  string
	boost float64
}

func (qMatchAll) name() string      { return "match_all" }
func (qMatchNone) name() string     { return "match_none" }
func (qMatch) name() string         { return "match" }
func (qMultiMatch) name() string    { return "multi_match" }
func (qTerm) name() string          { return "term" }
func (qTerms) name() string         { return "terms" }
func (qRange) name() string         { return "range" }
func (qBool) name() string          { return "bool" }
func (qExists) name() string        { return "exists" }
func (qPrefix) name() string        { return "prefix" }
func (qIds) name() string           { return "ids" }
func (qConstantScore) name() string { return "constant_score" }
func (qSimple) name() string        { return "simple_query_string" }

// dslParser parses query DSL nodes and reports errors with positions in src.
type dslParser struct{ src []byte }

func (p *dslParser) perr(off int, reason string) *Error { return parsingError(p.src, off, reason) }

// parseQuery parses {"<type>": {...}}.
func (p *dslParser) parseQuery(n *node) (dslQuery, *Error) {
	if n.kind != kObject {
		return nil, p.perr(n.off, "[_na] query malformed, must start with start_object")
	}
	if len(n.keys) == 0 {
		return nil, p.perr(n.off, "query malformed, empty clause found")
	}
	if len(n.keys) > 1 {
		return nil, p.perr(n.koffs[1], "["+n.keys[0]+"] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
	}
	typ, body, koff := n.keys[0], n.vals[0], n.koffs[0]
	switch typ {
	case "match_all":
		return p.parseMatchAll(typ, body)
	case "match_none":
		if body.kind != kObject {
			return nil, p.perr(body.off, "[match_none] query malformed, no start_object after query name")
		}
		return qMatchNone{}, nil
	case "match", "match_phrase":
		return p.parseMatch(typ, body)
	case "multi_match":
		return p.parseMultiMatch(body)
	case "term":
		return p.parseTerm(body)
	case "terms":
		return p.parseTerms(body)
	case "range":
		return p.parseRange(body)
	case "bool":
		return p.parseBool(body)
	case "exists":
		return p.parseExists(body)
	case "prefix":
		return p.parsePrefix(body)
	case "ids":
		return p.parseIds(body)
	case "constant_score":
		return p.parseConstantScore(body)
	case "simple_query_string":
		return p.parseSimple(body)
	}
	l, c := lineCol(p.src, koff)
	return nil, &Error{Status: http.StatusBadRequest, Type: "parsing_exception", Reason: "unknown query [" + typ + "]",
		Extra: map[string]any{"line": l, "col": c},
		CausedBy: newError(http.StatusBadRequest, "named_object_not_found_exception",
			loc(p.src, koff)+" unknown field ["+typ+"]")}
}

func (p *dslParser) startObject(typ string, body *node) *Error {
	if body.kind != kObject {
		return p.perr(body.off, "["+typ+"] query malformed, no start_object after query name")
	}
	return nil
}

func (p *dslParser) boost(typ string, v *node) (float64, *Error) {
	f, ok := nodeFloat(v)
	if !ok {
		return 0, p.perr(v.off, "["+typ+"] failed to parse field [boost]")
	}
	return f, nil
}

func (p *dslParser) str(typ, key string, v *node) (string, *Error) {
	switch v.kind {
	case kString, kNumber:
		return v.str, nil
	case kBool:
		return strconv.FormatBool(v.b), nil
	}
	return "", p.perr(v.off, "["+typ+"] unknown token ["+v.kind.String()+"] after ["+key+"]")
}

func (p *dslParser) parseMatchAll(typ string, body *node) (dslQuery, *Error) {
	if err := p.startObject(typ, body); err != nil {
		return nil, err
	}
	q := qMatchAll{boost: 1}
	for i, k := range body.keys {
		switch k {
		case "boost":
			b, err := p.boost(typ, body.vals[i])
			if err != nil {
				return nil, err
			}
			q.boost = b
		case "_name":
		default:
			return nil, p.perr(body.koffs[i], "[match_all] query does not support ["+k+"]")
		}
	}
	return q, nil
}

// singleField checks the {"field": ...} shape shared by term, match, range, prefix.
func (p *dslParser) singleField(typ string, body *node) (string, *node, *Error) {
	if err := p.startObject(typ, body); err != nil {
		return "", nil, err
	}
	if len(body.keys) == 0 {
		return "", nil, p.perr(body.off, "["+typ+"] query malformed, no field specified")
	}
	fieldName, val := "", (*node)(nil)
	for i, k := range body.keys {
		if k == "boost" || k == "_name" {
			continue
		}
		if fieldName != "" {
			return "", nil, p.perr(body.koffs[i], "["+typ+"] query doesn't support multiple fields, found ["+fieldName+"] and ["+k+"]")
		}
		fieldName, val = k, body.vals[i]
	}
	if fieldName == "" {
		return "", nil, p.perr(body.off, "["+typ+"] query malformed, no field specified")
	}
	return fieldName, val, nil
}

func (p *dslParser) parseMatch(typ string, body *node) (dslQuery, *Error) {
	f, v, err := p.singleField(typ, body)
	if err != nil {
		return nil, err
	}
	q := qMatch{field: f, operator: "or", boost: 1, phrase: typ == "match_phrase"}
	if v.kind != kObject {
		if v.kind == kArray || v.kind == kNull {
			return nil, p.perr(v.off, "["+typ+"] unknown token ["+v.kind.String()+"] after ["+f+"]")
		}
		q.text, _ = p.str(typ, f, v)
		return q, nil
	}
	hasQuery := false
	for i, k := range v.keys {
		val := v.vals[i]
		var perr *Error
		switch k {
		case "query":
			q.text, perr = p.str(typ, k, val)
			hasQuery = true
		case "operator":
			q.operator, perr = p.str(typ, k, val)
			q.operator = strings.ToLower(q.operator)
			if perr == nil && q.operator != "or" && q.operator != "and" {
				return nil, illegalArgument("No enum constant org.elasticsearch.index.query.Operator." + strings.ToUpper(q.operator))
			}
		case "minimum_should_match":
			q.msm, perr = p.str(typ, k, val)
		case "boost":
			q.boost, perr = p.boost(typ, val)
		case "analyzer", "fuzziness", "prefix_length", "max_expansions", "fuzzy_transpositions", "lenient",
			"zero_terms_query", "auto_generate_synonyms_phrase_query", "_name", "slop":
		default:
			return nil, p.perr(v.koffs[i], "["+typ+"] query does not support ["+k+"]")
		}
		if perr != nil {
			return nil, perr
		}
	}
	if !hasQuery {
		return nil, p.perr(v.off, "No text specified for text query")
	}
	return q, nil
}

func (p *dslParser) parseFields(typ string, v *node) ([]boostedField, *Error) {
	var items []*node
	switch v.kind {
	case kArray:
		items = v.vals
	case kString:
		items = []*node{v}
	default:
		return nil, p.perr(v.off, "["+typ+"] query does not support [fields]")
	}
	out := make([]boostedField, 0, len(items))
	for _, it := range items {
		if it.kind != kString {
			return nil, p.perr(it.off, "["+typ+"] query does not support [fields]")
		}
		name, boostText, has := strings.Cut(it.str, "^")
		bf := boostedField{name: name, boost: 1}
		if has {
			b, err := strconv.ParseFloat(boostText, 64)
			if err != nil {
				return nil, newError(http.StatusBadRequest, "number_format_exception", "For input string: \""+boostText+"\"")
			}
			bf.boost = b
		}
		out = append(out, bf)
	}
	return out, nil
}

func (p *dslParser) parseMultiMatch(body *node) (dslQuery, *Error) {
	if err := p.startObject("multi_match", body); err != nil {
		return nil, err
	}
	q := qMultiMatch{operator: "or", boost: 1}
	hasQuery := false
	for i, k := range body.keys {
		val := body.vals[i]
		var perr *Error
		switch k {
		case "query":
			q.text, perr = p.str("multi_match", k, val)
			hasQuery = true
		case "fields":
			q.fields, perr = p.parseFields("multi_match", val)
		case "operator":
			q.operator, perr = p.str("multi_match", k, val)
			q.operator = strings.ToLower(q.operator)
		case "minimum_should_match":
			q.msm, perr = p.str("multi_match", k, val)
		case "boost":
			q.boost, perr = p.boost("multi_match", val)
		case "type":
			t, _ := p.str("multi_match", k, val)
			switch t {
			case "best_fields", "most_fields", "cross_fields":
			default:
				return nil, p.perr(val.off, "[multi_match] query does not support type "+t)
			}
		case "tie_breaker", "analyzer", "fuzziness", "lenient", "zero_terms_query", "_name", "prefix_length", "max_expansions":
		default:
			return nil, p.perr(body.koffs[i], "[multi_match] query does not support ["+k+"]")
		}
		if perr != nil {
			return nil, perr
		}
	}
	if !hasQuery {
		return nil, p.perr(body.off, "No text specified for multi_match query")
	}
	return q, nil
}

func (p *dslParser) parseTerm(body *node) (dslQuery, *Error) {
	f, v, err := p.singleField("term", body)
	if err != nil {
		return nil, err
	}
	q := qTerm{field: f, boost: 1}
	switch v.kind {
	case kObject:
		for i, k := range v.keys {
			val := v.vals[i]
			switch k {
			case "value":
				if val.kind == kObject || val.kind == kArray {
					return nil, p.perr(val.off, "[term] query does not support array of values")
				}
				q.value = val
			case "boost":
				b, perr := p.boost("term", val)
				if perr != nil {
					return nil, perr
				}
				q.boost = b
			case "case_insensitive":
				q.noCase = val.kind == kBool && val.b
			case "_name":
			default:
				return nil, p.perr(v.koffs[i], "[term] query does not support ["+k+"]")
			}
		}
	case kArray:
		return nil, p.perr(v.off, "[term] query does not support array of values")
	default:
		q.value = v
	}
	if q.value == nil || q.value.kind == kNull {
		return nil, illegalArgument("field name is null or empty")
	}
	return q, nil
}

func (p *dslParser) parseTerms(body *node) (dslQuery, *Error) {
	if err := p.startObject("terms", body); err != nil {
		return nil, err
	}
	q := qTerms{boost: 1}
	for i, k := range body.keys {
		v := body.vals[i]
		switch k {
		case "boost":
			b, err := p.boost("terms", v)
			if err != nil {
				return nil, err
			}
			q.boost = b
		case "_name":
		default:
			if q.field != "" {
				return nil, p.perr(body.koffs[i], "[terms] query does not support multiple fields")
			}
			if v.kind != kArray {
				if v.kind == kObject {
					return nil, p.perr(v.off, "[terms] query does not support terms lookup")
				}
				return nil, p.perr(v.off, "[terms] query does not support ["+k+"]")
			}
			q.field = k
			for _, e := range v.vals {
				if e.kind == kObject || e.kind == kArray || e.kind == kNull {
					return nil, p.perr(e.off, "No value specified for terms query")
				}
			}
			q.values = v.vals
		}
	}
	if q.field == "" {
		return nil, p.perr(body.off, "[terms] query requires a field")
	}
	return q, nil
}

func (p *dslParser) parseRange(body *node) (dslQuery, *Error) {
	f, v, err := p.singleField("range", body)
	if err != nil {
		return nil, err
	}
	if v.kind != kObject {
		return nil, p.perr(v.off, "[range] query does not support ["+f+"]")
	}
	q := qRange{field: f, boost: 1}
	for i, k := range v.keys {
		val := v.vals[i]
		var bad bool
		switch k {
		case "gt":
			q.gt = nonNull(val)
		case "gte", "from":
			q.gte = nonNull(val)
		case "lt":
			q.lt = nonNull(val)
		case "lte", "to":
			q.lte = nonNull(val)
		case "format":
			q.format, bad = val.str, val.kind != kString
		case "time_zone":
			q.timeZone, bad = val.str, val.kind != kString
		case "boost":
			b, perr := p.boost("range", val)
			if perr != nil {
				return nil, perr
			}
			q.boost = b
		case "relation", "_name", "include_lower", "include_upper":
		default:
			return nil, p.perr(v.koffs[i], "[range] query does not support ["+k+"]")
		}
		if bad {
			return nil, p.perr(val.off, "[range] query does not support ["+k+"]")
		}
		if val.kind == kObject || val.kind == kArray {
			return nil, p.perr(val.off, "[range] query does not support ["+k+"]")
		}
	}
	return q, nil
}

func nonNull(v *node) *node {
	if v.kind == kNull {
		return nil
	}
	return v
}

func (p *dslParser) parseBool(body *node) (dslQuery, *Error) {
	if err := p.startObject("bool", body); err != nil {
		return nil, err
	}
	q := qBool{boost: 1}
	for i, k := range body.keys {
		v := body.vals[i]
		var dst *[]dslQuery
		switch k {
		case "must":
			dst = &q.must
		case "filter":
			dst = &q.filter
		case "should":
			dst = &q.should
		case "must_not", "mustNot":
			dst = &q.mustNot
		case "minimum_should_match":
			s, err := p.str("bool", k, v)
			if err != nil {
				return nil, err
			}
			q.msm = s
			continue
		case "boost":
			b, err := p.boost("bool", v)
			if err != nil {
				return nil, err
			}
			q.boost = b
			continue
		case "adjust_pure_negative", "_name":
			continue
		default:
			return nil, p.perr(body.koffs[i], "[bool] query does not support ["+k+"]")
		}
		clauses := []*node{v}
		if v.kind == kArray {
			clauses = v.vals
		} else if v.kind != kObject {
			return nil, p.perr(v.off, "[bool] query does not support ["+k+"]")
		}
		for _, c := range clauses {
			sub, err := p.parseQuery(c)
			if err != nil {
				return nil, err
			}
			*dst = append(*dst, sub)
		}
	}
	return q, nil
}

func (p *dslParser) parseExists(body *node) (dslQuery, *Error) {
	if err := p.startObject("exists", body); err != nil {
		return nil, err
	}
	q := qExists{}
	for i, k := range body.keys {
		switch k {
		case "field":
			s, err := p.str("exists", k, body.vals[i])
			if err != nil {
				return nil, err
			}
			q.field = s
		case "boost", "_name":
		default:
			return nil, p.perr(body.koffs[i], "[exists] query does not support ["+k+"]")
		}
	}
	if q.field == "" {
		return nil, p.perr(body.off, "[exists] must be provided with a [field]")
	}
	return q, nil
}

func (p *dslParser) parsePrefix(body *node) (dslQuery, *Error) {
	f, v, err := p.singleField("prefix", body)
	if err != nil {
		return nil, err
	}
	q := qPrefix{field: f, boost: 1}
	if v.kind != kObject {
		q.value, err = p.str("prefix", f, v)
		return q, err
	}
	for i, k := range v.keys {
		switch k {
		case "value":
			q.value, err = p.str("prefix", k, v.vals[i])
		case "boost":
			q.boost, err = p.boost("prefix", v.vals[i])
		case "rewrite", "case_insensitive", "_name":
		default:
			return nil, p.perr(v.koffs[i], "[prefix] query does not support ["+k+"]")
		}
		if err != nil {
			return nil, err
		}
	}
	return q, nil
}

func (p *dslParser) parseIds(body *node) (dslQuery, *Error) {
	if err := p.startObject("ids", body); err != nil {
		return nil, err
	}
	q := qIds{}
	for i, k := range body.keys {
		v := body.vals[i]
		switch k {
		case "values":
			if v.kind != kArray {
				return nil, p.perr(v.off, "[ids] failed to parse field [values]")
			}
			for _, e := range v.vals {
				s, err := p.str("ids", k, e)
				if err != nil {
					return nil, err
				}
				q.ids = append(q.ids, s)
			}
		case "boost", "_name":
		default:
			return nil, p.perr(body.koffs[i], "[ids] query does not support ["+k+"]")
		}
	}
	return q, nil
}

func (p *dslParser) parseConstantScore(body *node) (dslQuery, *Error) {
	if err := p.startObject("constant_score", body); err != nil {
		return nil, err
	}
	q := qConstantScore{boost: 1}
	for i, k := range body.keys {
		v := body.vals[i]
		switch k {
		case "filter":
			f, err := p.parseQuery(v)
			if err != nil {
				return nil, err
			}
			q.filter = f
		case "boost":
			b, err := p.boost("constant_score", v)
			if err != nil {
				return nil, err
			}
			q.boost = b
		case "_name":
		default:
			return nil, p.perr(body.koffs[i], "[constant_score] query does not support ["+k+"]")
		}
	}
	if q.filter == nil {
		return nil, p.perr(body.off, "[constant_score] requires a 'filter' element")
	}
	return q, nil
}

func (p *dslParser) parseSimple(body *node) (dslQuery, *Error) {
	if err := p.startObject("simple_query_string", body); err != nil {
		return nil, err
	}
	q := qSimple{defaultOp: "or", boost: 1, flags: flagAll}
	has := false
	for i, k := range body.keys {
		v := body.vals[i]
		var err *Error
		switch k {
		case "query":
			q.text, err = p.str("simple_query_string", k, v)
			has = true
		case "fields":
			q.fields, err = p.parseFields("simple_query_string", v)
		case "default_operator":
			q.defaultOp, err = p.str("simple_query_string", k, v)
			q.defaultOp = strings.ToLower(q.defaultOp)
		case "boost":
			q.boost, err = p.boost("simple_query_string", v)
		case "flags":
			switch v.kind {
			case kNumber:
				n, perr := strconv.Atoi(v.str)
				if perr != nil {
					return nil, p.perr(v.off, "[simple_query_string] flags must be an integer or a string")
				}
				q.flags = simpleFlags(n)
			default:
				var text string
				if text, err = p.str("simple_query_string", k, v); err == nil {
					q.flags, err = parseSimpleFlags(text)
				}
			}
		case "minimum_should_match":
			q.msm, err = p.str("simple_query_string", k, v)
		case "fuzzy_prefix_length":
			var text string
			if text, err = p.str("simple_query_string", k, v); err == nil {
				n, perr := strconv.Atoi(text)
				if perr != nil || n < 0 {
					return nil, p.perr(v.off, "[simple_query_string] fuzzy_prefix_length must be a non-negative integer")
				}
				q.fuzzyPrefix = n
			}
		case "analyzer", "lenient", "analyze_wildcard", "quote_field_suffix",
			"auto_generate_synonyms_phrase_query", "fuzzy_max_expansions", "fuzzy_transpositions", "_name":
		default:
			return nil, p.perr(body.koffs[i], "[simple_query_string] unsupported field ["+k+"]")
		}
		if err != nil {
			return nil, err
		}
	}
	if !has {
		return nil, p.perr(body.off, "[simple_query_string] query text missing")
	}
	return q, nil
}
