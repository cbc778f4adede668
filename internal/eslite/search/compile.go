package search

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	bq "github.com/blevesearch/bleve/v2/search/query"
)

// compiler turns parsed DSL into a bleve query for one target's mapping.
type compiler struct {
	m     *Mapping
	index string
	now   time.Time
}

// shardErr is a query that is valid DSL but fails against a field, which
// Elasticsearch reports as query_shard_exception inside "all shards failed".
func (c *compiler) shardErr(reason string, cause *Error) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "query_shard_exception", Reason: reason,
		Index: c.index, CausedBy: cause}
}

func matchNone() bq.Query { return bq.NewMatchNoneQuery() }

func (c *compiler) compile(q dslQuery) (bq.Query, *Error) {
	switch q := q.(type) {
	case nil:
		return bq.NewMatchAllQuery(), nil
	case qMatchAll:
		mq := bq.NewMatchAllQuery()
		mq.SetBoost(q.boost)
		return mq, nil
	case qMatchNone:
		return matchNone(), nil
	case qMatch:
		return c.match(q.field, q.text, q.operator, q.msm, q.boost, q.phrase)
	case qMultiMatch:
		fields := q.fields
		if len(fields) == 0 {
			fields = c.defaultFields()
		}
		var subs []bq.Query
		for _, f := range c.expandFields(fields) {
			sq, err := c.match(f.name, q.text, q.operator, q.msm, q.boost*f.boost, false)
			if err != nil {
				return nil, err
			}
			subs = append(subs, sq)
		}
		if len(subs) == 0 {
			return matchNone(), nil
		}
		return bq.NewDisjunctionQuery(subs), nil
	case qTerm:
		return c.term(q.field, q.value, q.boost, q.noCase, false)
	case qTerms:
		var subs []bq.Query
		for _, v := range q.values {
			sq, err := c.term(q.field, v, 1, false, true)
			if err != nil {
				return nil, err
			}
			subs = append(subs, sq)
		}
		if len(subs) == 0 {
			return matchNone(), nil
		}
		dq := bq.NewDisjunctionQuery(subs)
		return constant(dq, q.boost), nil
	case qRange:
		return c.rangeQuery(q)
	case qExists:
		return constant(c.existsQuery(q.field), 1), nil
	case qPrefix:
		f := c.m.lookup(q.field)
		if f == nil || (f.typ != typeKeyword && f.typ != typeText) {
			if f == nil {
				return matchNone(), nil
			}
			return nil, c.shardErr("failed to create query: Can only use prefix queries on keyword and text fields - not on ["+
				q.field+"] which is of type ["+f.typ+"]", nil)
		}
		pq := bq.NewPrefixQuery(q.value)
		pq.SetField(q.field)
		return constant(pq, q.boost), nil
	case qIds:
		if len(q.ids) == 0 {
			return matchNone(), nil
		}
		return constant(bq.NewDocIDQuery(q.ids), 1), nil
	case qConstantScore:
		inner, err := c.compile(q.filter)
		if err != nil {
			return nil, err
		}
		return constant(inner, q.boost), nil
	case qBool:
		return c.boolQuery(q)
	case qSimple:
		return c.simple(q)
	}
	return nil, illegalArgument("unsupported query [" + q.name() + "]")
}

func (c *compiler) defaultFields() []boostedField {
	return []boostedField{{name: "*", boost: 1}}
}

// expandFields resolves wildcard field names to mapped text and keyword fields.
func (c *compiler) expandFields(fields []boostedField) []boostedField {
	var out []boostedField
	var leaves map[string]*field
	for _, f := range fields {
		if !strings.Contains(f.name, "*") {
			out = append(out, f)
			continue
		}
		if leaves == nil {
			leaves = c.m.leafPaths()
		}
		for p, lf := range leaves {
			if (lf.typ == typeText || lf.typ == typeKeyword) && globMatch(f.name, p) {
				out = append(out, boostedField{name: p, boost: f.boost})
			}
		}
	}
	return out
}

func (c *compiler) match(fieldName, text, operator, msm string, boost float64, phrase bool) (bq.Query, *Error) {
	f := c.m.lookup(fieldName)
	if f == nil || f.typ == typeObject {
		return matchNone(), nil
	}
	if f.typ != typeText {
		n := &node{kind: kString, str: text}
		return c.term(fieldName, n, boost, false, false)
	}
	terms := analyze(f.san, text)
	if len(terms) == 0 {
		return matchNone(), nil
	}
	if phrase && len(terms) > 1 {
		pq := bq.NewPhraseQuery(terms, fieldName)
		pq.SetBoost(boost)
		return pq, nil
	}
	subs := make([]bq.Query, len(terms))
	for i, t := range terms {
		tq := bq.NewTermQuery(t)
		tq.SetField(fieldName)
		tq.SetBoost(boost)
		subs[i] = tq
	}
	if len(subs) == 1 {
		return subs[0], nil
	}
	if operator == "and" {
		return bq.NewConjunctionQuery(subs), nil
	}
	dq := bq.NewDisjunctionQuery(subs)
	min, err := minimumShouldMatch(msm, len(subs))
	if err != nil {
		return nil, err
	}
	if min < 1 {
		min = 1
	}
	dq.SetMin(float64(min))
	return dq, nil
}

// minimumShouldMatch resolves "2", "-1", "75%", "-25%" against n optional clauses.
func minimumShouldMatch(spec string, n int) (int, *Error) {
	if spec == "" {
		return 0, nil
	}
	s := strings.TrimSpace(spec)
	if strings.Contains(s, "<") {
		return 0, illegalArgument("eslite does not support conditional minimum_should_match [" + spec + "]")
	}
	var v int
	if strings.HasSuffix(s, "%") {
		p, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
		if err != nil {
			return 0, newError(http.StatusBadRequest, "number_format_exception", "For input string: \""+strings.TrimSuffix(s, "%")+"\"")
		}
		v = n * p / 100
		if p < 0 {
			v = n + n*p/100
		}
	} else {
		p, err := strconv.Atoi(s)
		if err != nil {
			return 0, newError(http.StatusBadRequest, "number_format_exception", "For input string: \""+s+"\"")
		}
		v = p
		if p < 0 {
			v = n + p
		}
	}
	if v < 0 {
		v = 0
	}
	if v > n {
		v = n
	}
	return v, nil
}

// term matches one value exactly. inSet marks a value of a terms query,
// which (as in Elasticsearch 8.16 and later) fails on an integer beyond
// the field's type where a term or match query matches nothing.
func (c *compiler) term(fieldName string, v *node, boost float64, noCase, inSet bool) (bq.Query, *Error) {
	if fieldName == "_id" {
		return constant(bq.NewDocIDQuery([]string{scalarText(v)}), boost), nil
	}
	f := c.m.lookup(fieldName)
	if f == nil || f.typ == typeObject {
		return matchNone(), nil
	}
	switch f.typ {
	case typeText, typeKeyword:
		s := scalarText(v)
		if noCase {
			s = strings.ToLower(s)
		}
		tq := bq.NewTermQuery(s)
		tq.SetField(fieldName)
		if f.typ == typeKeyword {
			return constant(tq, boost), nil
		}
		tq.SetBoost(boost)
		return tq, nil
	}
	if isIntegerType(f.typ) {
		w, err := wholeValue(f, v)
		if errors.Is(err, errOutOfRange) && !inSet {
			return matchNone(), nil
		}
		if err != nil {
			return nil, c.wholeErr(f, v, err)
		}
		if w.frac {
			// Elasticsearch: a value with a decimal part matches no whole number.
			return matchNone(), nil
		}
		return constant(&numRangeQuery{field: fieldName, lo: w.n, hi: w.n}, boost), nil
	}
	x, err := c.numericValue(f, fieldName, v, false)
	if err != nil {
		return nil, err
	}
	if f.typ == typeDate {
		// A date term matches the whole rounded unit, like Elasticsearch's date term query.
		hi, herr := c.numericValue(f, fieldName, v, true)
		if herr != nil {
			return nil, herr
		}
		return constant(newNumRange(f, fieldName, &x, &hi, true, true), boost), nil
	}
	return constant(newNumRange(f, fieldName, &x, &x, true, true), boost), nil
}

// wholeValue reads a query value for an integer field exactly (a long past
// 2^53 has no float64 of its own). As in Elasticsearch, a query on a long
// takes any long, and one on an integer, short or byte any integer (a
// byte field queried for 300 matches nothing). The error is errNotNumber
// or errOutOfRange; wholeErr turns it into the search's failure.
func wholeValue(f *field, v *node) (wholeNum, error) {
	if v.kind == kBool {
		return wholeNum{}, errNotNumber
	}
	lo, hi, _ := wholeQueryRange(f)
	return parseWhole(strings.TrimSpace(scalarText(v)), lo, hi, f.typ == typeLong)
}

// wholeQueryRange is the range of values a query on integer field f takes.
func wholeQueryRange(f *field) (int64, int64, string) {
	if f.typ == typeLong {
		return intRange(typeLong)
	}
	return intRange(typeInteger)
}

// wholeErr is the failure for a query value wholeValue refused.
func (c *compiler) wholeErr(f *field, v *node, err error) *Error {
	s := strings.TrimSpace(scalarText(v))
	if errors.Is(err, errOutOfRange) {
		_, _, name := wholeQueryRange(f)
		cause := illegalArgument("Value [" + s + "] is out of range for " + name)
		return c.shardErr("failed to create query: "+cause.Reason, cause)
	}
	cause := newError(http.StatusBadRequest, "number_format_exception", "For input string: \""+s+"\"")
	return c.shardErr("failed to create query: For input string: \""+s+"\"", cause)
}

// numericValue converts a query value for a numeric, date or boolean field.
func (c *compiler) numericValue(f *field, fieldName string, v *node, roundUp bool) (float64, *Error) {
	return c.numericValueFmt(f, fieldName, v, roundUp, nil, time.UTC)
}

func (c *compiler) numericValueFmt(f *field, fieldName string, v *node, roundUp bool, df *dateFormat, zone *time.Location) (float64, *Error) {
	switch f.typ {
	case typeDate:
		if df == nil {
			df = f.dates
		}
		s := scalarText(v)
		ms, err := resolveDate(s, df, c.now, roundUp, zone)
		if err != nil {
			if v.kind == kNumber {
				if n, ok := (epochLayout{unit: 1}).parse(s); ok {
					return float64(n), nil
				}
			}
			cause := newError(http.StatusBadRequest, "illegal_argument_exception",
				"failed to parse date field ["+s+"] with format ["+df.text+"]")
			if errors.Is(err, errDateMath) && strings.ContainsAny(s, "|/") {
				cause = newError(http.StatusBadRequest, "parse_exception", "failed to parse date field ["+s+"] with format ["+df.text+"]")
			}
			return 0, c.shardErr("failed to create query: "+cause.Reason, cause)
		}
		return float64(ms), nil
	case typeBoolean:
		switch {
		case v.kind == kBool:
			return boolNum(v.b), nil
		case v.kind == kString && v.str == "true":
			return 1, nil
		case v.kind == kString && (v.str == "false" || v.str == ""):
			return 0, nil
		}
		cause := illegalArgument("Failed to parse value [" + scalarText(v) + "] as only [true] or [false] are allowed.")
		return 0, c.shardErr("failed to create query: "+cause.Reason, cause)
	}
	s := strings.TrimSpace(scalarText(v))
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || v.kind == kBool || math.IsNaN(x) || math.IsInf(x, 0) {
		cause := newError(http.StatusBadRequest, "number_format_exception", "For input string: \""+s+"\"")
		return 0, c.shardErr("failed to create query: For input string: \""+s+"\"", cause)
	}
	if f.typ == typeFloat || f.typ == typeHalfFloat {
		x = float64(float32(x))
	}
	return x, nil
}

func (c *compiler) rangeQuery(q qRange) (bq.Query, *Error) {
	f := c.m.lookup(q.field)
	if f == nil || f.typ == typeObject {
		return matchNone(), nil
	}
	if f.typ == typeText || f.typ == typeKeyword {
		var lo, hi string
		incLo, incHi := false, false
		if q.gte != nil {
			lo, incLo = scalarText(q.gte), true
		} else if q.gt != nil {
			lo = scalarText(q.gt)
		}
		if q.lte != nil {
			hi, incHi = scalarText(q.lte), true
		} else if q.lt != nil {
			hi = scalarText(q.lt)
		}
		tr := bq.NewTermRangeInclusiveQuery(lo, hi, &incLo, &incHi)
		tr.SetField(q.field)
		return constant(tr, q.boost), nil
	}
	var df *dateFormat
	if q.format != "" {
		var err error
		df, err = compileDateFormat(q.format)
		if err != nil {
			return nil, c.shardErr("failed to create query: Invalid format: ["+q.format+"]: "+err.Error(), nil)
		}
	}
	zone := time.UTC
	if q.timeZone != "" {
		z, err := parseTimeZone(q.timeZone)
		if err != nil {
			return nil, illegalArgument("Unknown time-zone ID: " + q.timeZone)
		}
		zone = z
	}
	if isIntegerType(f.typ) {
		return c.wholeRange(f, q)
	}
	var lo, hi *float64
	incLo, incHi := true, true
	bound := func(v *node, roundUp bool) (*float64, *Error) {
		x, err := c.numericValueFmt(f, q.field, v, roundUp, df, zone)
		if err != nil {
			return nil, err
		}
		return &x, nil
	}
	var err *Error
	switch {
	case q.gte != nil:
		lo, err = bound(q.gte, false)
	case q.gt != nil:
		lo, err = bound(q.gt, true)
		incLo = false
	}
	if err != nil {
		return nil, err
	}
	switch {
	case q.lte != nil:
		hi, err = bound(q.lte, true)
	case q.lt != nil:
		hi, err = bound(q.lt, false)
		incHi = false
	}
	if err != nil {
		return nil, err
	}
	if lo == nil && hi == nil {
		return constant(c.existsQuery(q.field), q.boost), nil
	}
	return constant(newNumRange(f, q.field, lo, hi, incLo, incHi), q.boost), nil
}

// wholeRange is a range query on an integer field, its bounds read exactly
// and rounded to whole numbers as Elasticsearch does: gte 1.5 is gte 2, lte
// -1.5 is lte -2, gt 7 is gte 8, and gt at the type's largest value matches
// nothing.
func (c *compiler) wholeRange(f *field, q qRange) (bq.Query, *Error) {
	if q.gte == nil && q.gt == nil && q.lte == nil && q.lt == nil {
		return constant(c.existsQuery(q.field), q.boost), nil
	}
	rq := &numRangeQuery{field: q.field, lo: math.MinInt64, hi: math.MaxInt64}
	if v, inclusive := q.gte, true; v != nil || q.gt != nil {
		if v == nil {
			v, inclusive = q.gt, false
		}
		w, err := wholeValue(f, v)
		if err != nil {
			return nil, c.wholeErr(f, v, err)
		}
		rq.lo = w.n
		if !w.frac && !inclusive || w.frac && !w.neg {
			if w.n == math.MaxInt64 {
				return matchNone(), nil
			}
			rq.lo++
		}
	}
	if v, inclusive := q.lte, true; v != nil || q.lt != nil {
		if v == nil {
			v, inclusive = q.lt, false
		}
		w, err := wholeValue(f, v)
		if err != nil {
			return nil, c.wholeErr(f, v, err)
		}
		rq.hi = w.n
		if !w.frac && !inclusive || w.frac && w.neg {
			if w.n == math.MinInt64 {
				return matchNone(), nil
			}
			rq.hi--
		}
	}
	return constant(rq, q.boost), nil
}

func parseTimeZone(s string) (*time.Location, error) {
	if s == "Z" || s == "UTC" {
		return time.UTC, nil
	}
	if len(s) > 1 && (s[0] == '+' || s[0] == '-') {
		p := &datePos{s: s}
		off, ok := p.zone()
		if !ok || p.i != len(s) {
			return nil, errDateMath
		}
		return time.FixedZone(s, off), nil
	}
	return time.LoadLocation(s)
}

func (c *compiler) boolQuery(q qBool) (bq.Query, *Error) {
	compileAll := func(qs []dslQuery) ([]bq.Query, *Error) {
		out := make([]bq.Query, 0, len(qs))
		for _, sq := range qs {
			cq, err := c.compile(sq)
			if err != nil {
				return nil, err
			}
			out = append(out, cq)
		}
		return out, nil
	}
	must, err := compileAll(q.must)
	if err != nil {
		return nil, err
	}
	filter, err := compileAll(q.filter)
	if err != nil {
		return nil, err
	}
	should, err := compileAll(q.should)
	if err != nil {
		return nil, err
	}
	mustNot, err := compileAll(q.mustNot)
	if err != nil {
		return nil, err
	}
	b := bq.NewBooleanQuery(nil, nil, nil)
	if len(must) > 0 {
		b.Must = bq.NewConjunctionQuery(must)
	}
	if len(should) > 0 {
		min := 0
		if q.msm != "" {
			min, err = minimumShouldMatch(q.msm, len(should))
			if err != nil {
				return nil, err
			}
		} else if len(must) == 0 && len(filter) == 0 {
			min = 1
		}
		if min > 0 && (len(must) > 0 || len(filter) > 0) {
			// Required should clauses: they filter and score.
			dq := bq.NewDisjunctionQuery(should)
			dq.SetMin(float64(min))
			must = append(must, dq)
			b.Must = bq.NewConjunctionQuery(must)
		} else {
			dq := bq.NewDisjunctionQuery(should)
			dq.SetMin(float64(min))
			b.Should = dq
		}
	}
	if len(mustNot) > 0 {
		b.MustNot = bq.NewDisjunctionQuery(mustNot)
	}
	if len(filter) > 0 {
		// Filters are required clauses that score 0. As a clause of the
		// conjunction they drive the iteration with the other required
		// clauses, rather than being checked against every document.
		must = append(must, constant(bq.NewConjunctionQuery(filter), 0))
		b.Must = bq.NewConjunctionQuery(must)
	}
	if b.Must == nil && b.Should == nil {
		// Only filter and must_not clauses: every match scores 0, as in Elasticsearch.
		all := bq.NewMatchAllQuery()
		all.SetBoost(0)
		b.Must = all
	}
	if q.boost != 1 {
		b.SetBoost(q.boost)
	}
	return b, nil
}

// existsQuery matches documents with a value in field. Numbers, dates and
// booleans are found through their own terms (a range over every value);
// text, keyword and object paths through _field_names.
func (c *compiler) existsQuery(field string) bq.Query {
	if f := c.m.lookup(field); f != nil && f.typ != typeObject && f.typ != typeText && f.typ != typeKeyword {
		return newNumRange(f, field, nil, nil, true, true)
	}
	tq := bq.NewTermQuery(field)
	tq.SetField(fieldFieldNames)
	return tq
}
