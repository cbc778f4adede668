package search

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	blevemapping "github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	bsearch "github.com/blevesearch/bleve/v2/search"
	bq "github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
)

// Target is one concrete index a search runs on.
type Target struct {
	Name            string // concrete index name shown as _index
	Index           *Index
	Mapping         *Mapping // nil: the Index's current mapping
	MaxResultWindow int      // 0: DefaultMaxResultWindow
	// Pin, when set, is the view to search instead of the Index's current
	// one (a scroll or a point in time).
	Pin *Pinned
}

// Options tune a search.
type Options struct {
	Now func() time.Time // clock for date math; nil = time.Now
}

// hit is one collected match.
type hit struct {
	target int
	id     index.IndexInternalID
	score  float64
	keys   []sortVal
	seq    int
}

// targetRun holds one target's open reader and compiled state.
type targetRun struct {
	t       Target
	m       *Mapping
	reader  index.IndexReader
	release func()
	q       bq.Query
	sorts   []resolvedSort
	dv      *dvFetch // docvalue_fields, nil when none asked
	segs    segmentOffsets
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// openTargets compiles the query for every target and opens readers. The caller
// closes the readers.
func openTargets(targets []Target, q dslQuery, now time.Time) ([]*targetRun, error) {
	runs := make([]*targetRun, 0, len(targets))
	for _, t := range targets {
		m := t.Mapping
		if m == nil {
			m = t.Index.Mapping()
		}
		if m == nil {
			m = &Mapping{}
		}
		c := &compiler{m: m, index: t.Name, now: now}
		cq, cerr := c.compile(q)
		if cerr != nil {
			closeRuns(runs)
			return nil, searchPhaseFailure(cerr, t.Name)
		}
		var (
			r       index.IndexReader
			release func()
			err     error
		)
		if t.Pin != nil {
			r, release, err = t.Pin.acquire()
		} else {
			r, release, err = t.Index.reader()
		}
		if err != nil {
			closeRuns(runs)
			return nil, err
		}
		runs = append(runs, &targetRun{t: t, m: m, reader: r, release: release, q: cq})
	}
	return runs, nil
}

func closeRuns(runs []*targetRun) {
	for _, r := range runs {
		r.release()
	}
}

// scoringContext makes bleve score with BM25, Elasticsearch's default similarity.
func scoringContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, bsearch.GetScoringModelCallbackKey,
		bsearch.GetScoringModelCallbackFn(func() string { return index.BM25Scoring }))
}

// visitMatches calls fn for every document the run's query matches.
func (r *targetRun) visitMatches(ctx context.Context, score bool, fn func(d *bsearch.DocumentMatch) error) error {
	return r.visitMatchesFrom(ctx, score, nil, fn)
}

// visitMatchesFrom is visitMatches starting at the first match whose internal
// id is at least from (nil: the first match).
func (r *targetRun) visitMatchesFrom(ctx context.Context, score bool, from index.IndexInternalID, fn func(d *bsearch.DocumentMatch) error) error {
	opts := bsearch.SearcherOptions{}
	if !score {
		opts.Score = "none"
	}
	s, err := r.q.Searcher(scoringContext(ctx), r.reader, blevemapping.NewIndexMapping(), opts)
	if err != nil {
		return fmt.Errorf("build searcher: %w", err)
	}
	defer s.Close()
	sctx := &bsearch.SearchContext{DocumentMatchPool: bsearch.NewDocumentMatchPool(s.DocumentMatchPoolSize(), 0), IndexReader: r.reader}
	n := 0
	for {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var (
			d   *bsearch.DocumentMatch
			err error
		)
		if from != nil {
			d, err = s.Advance(sctx, from)
			from = nil
		} else {
			d, err = s.Next(sctx)
		}
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		if d == nil {
			return nil
		}
		if math.IsNaN(d.Score) || math.IsInf(d.Score, 0) {
			// bleve normalises a zero-boost clause to NaN; Elasticsearch scores it 0.
			d.Score = 0
		}
		if err := fn(d); err != nil {
			return err
		}
		sctx.DocumentMatchPool.Put(d)
	}
}

// Count returns the exact number of documents a _count body matches.
func Count(ctx context.Context, targets []Target, body []byte, opts Options) (int64, error) {
	q, err := parseQueryOnly(body)
	if err != nil {
		return 0, err
	}
	runs, err := openTargets(targets, q, opts.now())
	if err != nil {
		return 0, err
	}
	defer closeRuns(runs)
	var total int64
	for _, r := range runs {
		if err := r.visitMatches(ctx, false, func(*bsearch.DocumentMatch) error { total++; return nil }); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// MatchingIDs returns the ids of all documents a _delete_by_query body matches.
func MatchingIDs(ctx context.Context, target Target, body []byte, opts Options) ([]string, error) {
	q, err := parseQueryOnly(body)
	if err != nil {
		return nil, err
	}
	runs, err := openTargets([]Target{target}, q, opts.now())
	if err != nil {
		return nil, err
	}
	defer closeRuns(runs)
	var ids []string
	r := runs[0]
	err = r.visitMatches(ctx, false, func(d *bsearch.DocumentMatch) error {
		id, err := r.reader.ExternalID(d.IndexInternalID)
		if err != nil {
			return fmt.Errorf("read id: %w", err)
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// parseQueryOnly parses a body that may hold only "query" (_count, _delete_by_query).
func parseQueryOnly(body []byte) (dslQuery, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	root, err := parseJSON(body)
	if err != nil {
		return nil, syntaxToError(body, err)
	}
	if root.kind != kObject {
		return nil, parsingError(body, root.off, "Expected [START_OBJECT] but found ["+root.kind.String()+"]")
	}
	p := &dslParser{src: body}
	var q dslQuery
	for i, k := range root.keys {
		switch k {
		case "query":
			var perr *Error
			if q, perr = p.parseQuery(root.vals[i]); perr != nil {
				return nil, perr
			}
		case "max_docs", "slice", "conflicts":
		default:
			return nil, parsingError(body, root.koffs[i], "request does not support ["+k+"]")
		}
	}
	return q, nil
}

// hitHeap keeps the best N hits (the worst on top).
type hitHeap struct {
	hits  []*hit
	sorts []resolvedSort
}

func (h *hitHeap) Len() int           { return len(h.hits) }
func (h *hitHeap) Less(i, j int) bool { return h.less(h.hits[j], h.hits[i]) }
func (h *hitHeap) Swap(i, j int)      { h.hits[i], h.hits[j] = h.hits[j], h.hits[i] }
func (h *hitHeap) Push(x any)         { h.hits = append(h.hits, x.(*hit)) }
func (h *hitHeap) Pop() any {
	x := h.hits[len(h.hits)-1]
	h.hits = h.hits[:len(h.hits)-1]
	return x
}

// less reports whether a sorts before b.
func (h *hitHeap) less(a, b *hit) bool {
	if c := compareKeys(a.keys, b.keys, h.sorts); c != 0 {
		return c < 0
	}
	if a.target != b.target {
		return a.target < b.target
	}
	return idBytesLess(a.id, b.id) < 0
}

// Search runs a parsed request on the targets and returns the _search response.
func Search(ctx context.Context, targets []Target, req *Request, opts Options) (*Response, error) {
	start := time.Now()
	window := DefaultMaxResultWindow
	for _, t := range targets {
		if t.MaxResultWindow > 0 && t.MaxResultWindow < window {
			window = t.MaxResultWindow
		}
	}
	if req.scroll && req.size > window {
		cause := illegalArgument("Batch size is too large, size must be less than or equal to: [" + strconv.Itoa(window) +
			"] but was [" + strconv.Itoa(req.size) + "]. Scroll batch sizes cost as much memory as result windows so they are " +
			"controlled by the [index.max_result_window] index level setting.")
		name := ""
		if len(targets) > 0 {
			name = targets[0].Name
		}
		return nil, searchPhaseFailure(cause, name)
	}
	if req.from+req.size > window && !req.scroll {
		cause := illegalArgument("Result window is too large, from + size must be less than or equal to: [" + strconv.Itoa(window) +
			"] but was [" + strconv.Itoa(req.from+req.size) + "]. See the scroll api for a more efficient way to request large data sets. " +
			"This limit can be set by changing the [index.max_result_window] index level setting.")
		name := ""
		if len(targets) > 0 {
			name = targets[0].Name
		}
		return nil, searchPhaseFailure(cause, name)
	}
	runs, err := openTargets(targets, req.query, opts.now())
	if err != nil {
		return nil, err
	}
	defer closeRuns(runs)

	sortSpecs := req.sort
	if len(sortSpecs) == 0 {
		sortSpecs = []sortSpec{{field: "_score", desc: true}}
	}
	needScore := false
	for _, s := range sortSpecs {
		if s.field == "_score" {
			needScore = true
		}
	}
	trackScores := needScore || req.trackScores
	for _, r := range runs {
		rs, serr := resolveSorts(sortSpecs, &compiler{m: r.m, index: r.t.Name, now: opts.now()})
		if serr != nil {
			return nil, searchPhaseFailure(serr, r.t.Name)
		}
		r.sorts = rs
	}
	var after []sortVal
	if len(req.searchAfter) > 0 && len(runs) > 0 {
		after = make([]sortVal, len(req.searchAfter))
		for i, n := range req.searchAfter {
			v, ok := afterVal(n, &runs[0].sorts[i])
			if !ok {
				return nil, illegalArgument("Failed to parse search_after value for field [" + sortSpecs[i].field + "].")
			}
			after[i] = v
		}
	}
	cur := req.cursor
	keep := req.from + req.size
	h := &hitHeap{}
	if len(runs) > 0 {
		h.sorts = runs[0].sorts
	}
	var total int64
	var aggDocs []aggDoc
	maxScore := math.Inf(-1)
	scoreOrder := len(sortSpecs) == 1 && sortSpecs[0].field == "_score" && sortSpecs[0].desc
	// A scroll in index order continues where its last page stopped and
	// stops each index after a page: later documents of an index cannot
	// enter the page. Its total is the one its first page counted.
	docOrder := cur != nil && !cur.done && len(sortSpecs) == 1 && sortSpecs[0].field == "_doc" && !sortSpecs[0].desc &&
		!req.trackScores && len(req.aggs) == 0 && after == nil && req.terminateAfter == 0
	// So does a scroll by _score whose query scores every match the same
	// (match_all, filters: what scroll helpers send without a sort): its
	// order is index, then document.
	constOrder := cur != nil && !cur.done && scoreOrder && len(req.aggs) == 0 && after == nil && req.terminateAfter == 0
	for _, r := range runs {
		constOrder = constOrder && constantScore(r.q)
	}
	terminated := false
	for ti, r := range runs {
		if constOrder && (ti < cur.target || h.Len() == keep) {
			continue // every match here sorts before the cursor, or after a full page
		}
		dv, derr := r.docValueReader(req.aggs)
		if derr != nil {
			// Like sorting, aggregating on a field fails on the shards.
			return nil, searchPhaseFailure(derr, r.t.Name)
		}
		// Like Elasticsearch's collector, stop once the total is past what
		// track_total_hits asks for when no later match can enter the top
		// hits: every match scores the same, ties go to the earlier
		// document, and nothing else (aggregations, search_after) needs
		// the rest.
		canStop := scoreOrder && req.track >= 0 && len(req.aggs) == 0 && after == nil && cur == nil && constantScore(r.q)
		var from index.IndexInternalID
		switch {
		case docOrder:
			from = binary.BigEndian.AppendUint64(nil, uint64(cur.keys[0].num))
		case constOrder && ti == cur.target:
			from = cur.id
		}
		var collected, visited int
		err := r.visitMatchesFrom(ctx, trackScores, from, func(d *bsearch.DocumentMatch) error {
			if canStop && total > int64(req.track) && h.Len() == keep {
				return errEnoughHits
			}
			if req.terminateAfter > 0 && visited >= req.terminateAfter {
				terminated = true
				return errEnoughHits
			}
			visited++
			if (docOrder || constOrder) && collected >= keep {
				return errEnoughHits
			}
			total++
			if trackScores && d.Score > maxScore {
				maxScore = d.Score
			}
			var keys []sortVal
			var vals map[string][]aggVal
			if dv != nil {
				var err error
				keys, vals, err = dv.load(d, r.sorts)
				if err != nil {
					return err
				}
			} else {
				keys = scoreOnlyKeys(d, r.sorts)
			}
			for i := range r.sorts {
				if r.sorts[i].kind == sortShardDoc {
					keys[i] = sortVal{num: float64(uint64(ti)<<32 | docNum(d.IndexInternalID))}
				}
			}
			if len(req.aggs) > 0 {
				aggDocs = append(aggDocs, aggDoc{vals: vals})
			}
			if after != nil && compareKeys(keys, after, r.sorts) <= 0 {
				return nil
			}
			if cur != nil && cur.compare(h, keys, ti, d.IndexInternalID) <= 0 {
				return nil
			}
			if keep == 0 {
				return nil
			}
			collected++
			cand := hit{target: ti, score: d.Score, keys: keys, id: d.IndexInternalID}
			if h.Len() == keep && !h.less(&cand, h.hits[0]) {
				return nil // not competitive; allocate nothing for it
			}
			nh := new(hit)
			*nh = cand
			nh.id = append(index.IndexInternalID(nil), d.IndexInternalID...)
			if h.Len() < keep {
				heap.Push(h, nh)
				return nil
			}
			h.hits[0] = nh
			heap.Fix(h, 0)
			return nil
		})
		if errors.Is(err, errEnoughHits) {
			if docOrder || constOrder || terminated {
				continue
			}
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if docOrder || constOrder {
		total = cur.total
	}
	ordered := make([]*hit, h.Len())
	for i := len(ordered) - 1; i >= 0; i-- {
		ordered[i] = heap.Pop(h).(*hit)
	}
	if req.from < len(ordered) {
		ordered = ordered[req.from:]
	} else {
		ordered = nil
	}
	resp := &Response{shards: len(runs), total: total, track: req.track, totalAsInt: req.totalAsInt}
	if req.terminateAfter > 0 {
		resp.terminated = &terminated
	}
	if constOrder {
		maxScore = cur.keys[0].num // the score every match has
	}
	if trackScores && total > 0 && !docOrder {
		resp.maxScore = &maxScore
	}
	switch {
	case len(ordered) > 0:
		last := ordered[len(ordered)-1]
		resp.last = &Cursor{keys: last.keys, target: last.target, id: last.id, total: total}
	case cur != nil:
		resp.last = &Cursor{keys: cur.keys, target: cur.target, id: cur.id, total: total, done: true}
	default:
		resp.last = &Cursor{total: total, done: true}
	}
	for _, r := range runs {
		dv, derr := r.resolveDocvalueFields(req)
		if derr != nil {
			return nil, searchPhaseFailure(derr, r.t.Name)
		}
		r.dv = dv
	}
	for _, hh := range ordered {
		out, err := runs[hh.target].render(hh, req, trackScores)
		if err != nil {
			return nil, err
		}
		resp.hits = append(resp.hits, out)
	}
	if len(req.aggs) > 0 {
		aggs, aerr := computeAggs(req.aggs, aggDocs, runs)
		if aerr != nil {
			return nil, searchPhaseFailure(aerr, runs[0].t.Name)
		}
		resp.aggs = aggs
	}
	resp.took = time.Since(start).Milliseconds()
	return resp, nil
}

// errEnoughHits stops collecting when the rest of the matches cannot change
// the response.
var errEnoughHits = errors.New("enough hits")

// constantScore reports whether every match of q scores the same.
func constantScore(q bq.Query) bool {
	switch q := q.(type) {
	case *constScoreQuery, *bq.MatchAllQuery, *bq.MatchNoneQuery:
		return true
	case *bq.ConjunctionQuery:
		for _, c := range q.Conjuncts {
			if !constantScore(c) {
				return false
			}
		}
		return true
	case *bq.BooleanQuery:
		return q.Should == nil && q.Filter == nil && q.Must != nil && constantScore(q.Must)
	}
	return false
}

func scoreOnlyKeys(d *bsearch.DocumentMatch, sorts []resolvedSort) []sortVal {
	keys := make([]sortVal, len(sorts))
	for i := range sorts {
		if sorts[i].kind == sortScore {
			keys[i] = sortVal{num: d.Score}
		} else if sorts[i].kind == sortDoc {
			keys[i] = sortVal{num: float64(docNum(d.IndexInternalID))}
		} else {
			// No doc values to read: the field is unmapped in this target.
			keys[i] = pickSortValue(nil, &sorts[i])
		}
	}
	return keys
}

func docNum(id index.IndexInternalID) uint64 {
	var n uint64
	for _, b := range id {
		n = n<<8 | uint64(b)
	}
	return n
}

// resolveSorts binds sort clauses to a mapping, rejecting text and unmapped fields
// as Elasticsearch does.
func resolveSorts(specs []sortSpec, c *compiler) ([]resolvedSort, *Error) {
	m := c.m
	out := make([]resolvedSort, len(specs))
	for i, s := range specs {
		rs := resolvedSort{spec: s}
		switch s.field {
		case "_score":
			rs.kind = sortScore
		case "_doc":
			rs.kind = sortDoc
		case "_shard_doc":
			rs.kind = sortShardDoc
			rs.integer = true
		default:
			f := m.lookup(s.field)
			typ := ""
			if f != nil {
				typ = f.typ
			} else if s.unmappedType != "" {
				typ = s.unmappedType
				rs.missing = true
			} else {
				return nil, newError(http.StatusBadRequest, "query_shard_exception", "No mapping found for ["+s.field+"] in order to sort on")
			}
			switch {
			case typ == typeText:
				return nil, textFieldDataError(s.field)
			case typ == typeObject:
				return nil, illegalArgument("can't sort on field [" + s.field + "] of type [object]")
			case typ == typeKeyword:
				rs.kind = sortStr
			default:
				rs.kind = sortNum
				rs.integer = isIntegerType(typ) || typ == typeDate || typ == typeBoolean
			}
			if s.missingValue != nil {
				cv, err := customMissing(c, s, f, typ)
				if err != nil {
					return nil, err
				}
				rs.custom = &cv
			}
		}
		out[i] = rs
	}
	return out, nil
}

// customMissing converts a sort clause's custom "missing" value with the
// field's type, as Elasticsearch parses it with the field's doc values.
func customMissing(c *compiler, s sortSpec, f *field, typ string) (sortVal, *Error) {
	if typ == typeKeyword {
		return sortVal{str: scalarText(s.missingValue), isStr: true}, nil
	}
	if f == nil {
		f = &field{typ: typ}
		if typ == typeDate {
			f.dates = defaultDateFormat()
		}
	}
	if isIntegerType(typ) {
		w, err := wholeValue(f, s.missingValue)
		if err != nil {
			return sortVal{}, c.wholeErr(f, s.missingValue, err)
		}
		return sortVal{num: float64(w.n), i64: w.n, isInt: true}, nil
	}
	x, err := c.numericValue(f, s.field, s.missingValue, false)
	if err != nil {
		return sortVal{}, err
	}
	return sortVal{num: x}, nil
}

// valueLoader reads doc values for sorting and aggregations.
type valueLoader struct {
	r      index.DocValueReader
	fields map[string]*field
	sorted []string
}

func (r *targetRun) docValueReader(aggs []*aggSpec) (*valueLoader, *Error) {
	fields := map[string]*field{}
	for _, s := range r.sorts {
		if s.kind == sortNum || s.kind == sortStr {
			if f := r.m.lookup(s.spec.field); f != nil {
				fields[s.spec.field] = f
			}
		}
	}
	var aerr *Error
	walkAggFields(aggs, func(name string) {
		f := r.m.lookup(name)
		if f == nil {
			return
		}
		if f.typ == typeText && aerr == nil {
			aerr = textFieldDataError(name)
		}
		fields[name] = f
	})
	if aerr != nil {
		return nil, aerr
	}
	if len(fields) == 0 && len(aggs) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	dvr, err := r.reader.DocValueReader(names)
	if err != nil {
		return nil, newError(http.StatusInternalServerError, "exception", err.Error())
	}
	return &valueLoader{r: dvr, fields: fields, sorted: names}, nil
}

// load reads a document's sort keys and (when aggregating) all its field values.
func (l *valueLoader) load(d *bsearch.DocumentMatch, sorts []resolvedSort) ([]sortVal, map[string][]aggVal, error) {
	vals := make(map[string][]aggVal, len(l.fields))
	err := l.r.VisitDocValues(d.IndexInternalID, func(fieldName string, term []byte) {
		f := l.fields[fieldName]
		if f == nil {
			return
		}
		if f.typ == typeKeyword {
			vals[fieldName] = append(vals[fieldName], aggVal{str: string(term), isStr: true})
			return
		}
		pc := numeric.PrefixCoded(term)
		if shift, err := pc.Shift(); err != nil || shift != 0 {
			return
		}
		i64, err := pc.Int64()
		if err != nil {
			return
		}
		vals[fieldName] = append(vals[fieldName], aggVal{num: numValue(f, i64), i64: i64, isInt: integral(f)})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read doc values: %w", err)
	}
	keys := make([]sortVal, len(sorts))
	for i := range sorts {
		rs := &sorts[i]
		switch rs.kind {
		case sortScore:
			keys[i] = sortVal{num: d.Score}
		case sortDoc:
			keys[i] = sortVal{num: float64(docNum(d.IndexInternalID))}
		default:
			keys[i] = pickSortValue(vals[rs.spec.field], rs)
		}
	}
	return keys, vals, nil
}

// pickSortValue chooses min for ascending and max for descending sorts, as
// Elasticsearch does for multi-valued fields unless mode says otherwise.
func pickSortValue(vs []aggVal, rs *resolvedSort) sortVal {
	if len(vs) == 0 {
		if rs.custom != nil {
			return *rs.custom
		}
		return sortVal{missing: true, isStr: rs.kind == sortStr}
	}
	useMax := rs.spec.desc
	if rs.spec.mode == "min" {
		useMax = false
	} else if rs.spec.mode == "max" {
		useMax = true
	}
	best := vs[0]
	for _, v := range vs[1:] {
		if v.isStr {
			if (v.str > best.str) == useMax && v.str != best.str {
				best = v
			}
		} else if c := cmpNum(v.num, v.i64, v.isInt, best.num, best.i64, best.isInt); c != 0 && (c > 0) == useMax {
			best = v
		}
	}
	return sortVal{num: best.num, i64: best.i64, isInt: best.isInt, str: best.str, isStr: best.isStr}
}

// render builds one response hit, loading its id and stored source.
func (r *targetRun) render(h *hit, req *Request, withScore bool) (json.RawMessage, error) {
	id, err := r.reader.ExternalID(h.id)
	if err != nil {
		return nil, fmt.Errorf("read id: %w", err)
	}
	var source []byte
	if req.source.enabled || req.highlight != nil {
		source, err = storedSource(r.reader, &r.segs, h.id, id)
		if err != nil {
			return nil, fmt.Errorf("read source: %w", err)
		}
	}
	var b bytes.Buffer
	b.WriteString(`{"_index":`)
	writeJSONString(&b, r.t.Name)
	b.WriteString(`,"_id":`)
	writeJSONString(&b, id)
	b.WriteString(`,"_score":`)
	if withScore {
		b.WriteString(formatScore(h.score))
	} else {
		b.WriteString("null")
	}
	if req.source.enabled && source != nil {
		b.WriteString(`,"_source":`)
		b.Write(req.source.apply(source))
	}
	if err := r.dv.render(&b, h.id); err != nil {
		return nil, fmt.Errorf("read doc values: %w", err)
	}
	if req.highlight != nil && source != nil {
		if hl := req.highlight.render(source, r.m, req.query); hl != nil {
			b.WriteString(`,"highlight":`)
			b.Write(hl)
		}
	}
	if len(req.sort) > 0 {
		vals := make([]any, len(r.sorts))
		for i := range r.sorts {
			vals[i] = renderSortValue(h.keys[i], &r.sorts[i])
		}
		b.WriteString(`,"sort":`)
		b.Write(mustJSON(vals))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// formatScore prints a score as Elasticsearch's float.
func formatScore(s float64) string {
	return strconv.FormatFloat(float64(float32(s)), 'f', -1, 32)
}
