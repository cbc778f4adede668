package eslite

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// bulkAPI serves POST /_bulk and /{index}/_bulk.
func (e *Engine) bulkAPI(c *call, defaultIndex string) {
	start := time.Now()
	policy, perr := c.refreshPolicy()
	if perr != nil {
		c.fail(perr)
		return
	}
	items, perr := parseBulk(c.body)
	if perr != nil {
		c.fail(perr)
		return
	}
	defPipeline := c.param("pipeline")
	requireAlias, perr := c.boolParam("require_alias", false)
	if perr != nil {
		c.fail(perr)
		return
	}
	// Elasticsearch validates every item before executing any.
	var problems []string
	if len(items) == 0 {
		problems = append(problems, "no requests added")
	}
	for _, it := range items {
		if it.index == "" {
			it.index = defaultIndex
		}
		if it.pipeline == "" {
			it.pipeline = defPipeline
		}
		if requireAlias && !it.requireAliasSet {
			it.requireAlias = true
		}
		if it.index == "" {
			problems = append(problems, "index is missing")
		}
		problems = append(problems, validateWrite(&it.req)...)
	}
	if len(problems) > 0 {
		c.fail(errValidation(problems...))
		return
	}

	results := make([]*writeResult, len(items))
	failed := make([]*search.Error, len(items))
	targets := map[string]*index{}
	targetErr := map[string]*search.Error{}
	type group struct {
		ix   *index
		pos  []int
		reqs []*writeReq
	}
	groups := map[*index]*group{}
	var order []*group
	for i, it := range items {
		if it.emptyID && (it.req.kind == opIndex || it.req.kind == opCreate) {
			failed[i] = errIllegalArgument("if _id is specified it must not be empty")
			continue
		}
		if it.req.id == "" && it.req.kind != opDelete && it.req.kind != opUpdate {
			it.req.id = newDocID()
		}
		if it.pipeline != "" && it.pipeline != "_none" {
			failed[i] = errIllegalArgument("pipeline with id [%s] does not exist", it.pipeline)
			continue
		}
		key := it.index
		if it.req.kind == opDelete {
			key = "\x00" + key // deletes never create an index
		}
		ix, seen := targets[key]
		terr := targetErr[key]
		if !seen && terr == nil {
			if it.requireAlias && !e.isAlias(it.index) {
				terr = errRequireAlias(it.index)
			} else {
				ix, terr = e.writeTarget(it.index, it.req.kind != opDelete)
			}
			targets[key], targetErr[key] = ix, terr
		}
		if terr != nil {
			failed[i] = terr
			continue
		}
		g := groups[ix]
		if g == nil {
			g = &group{ix: ix}
			groups[ix] = g
			order = append(order, g)
		}
		g.pos = append(g.pos, i)
		g.reqs = append(g.reqs, &it.req)
	}

	written := map[*index]int64{}
	for _, g := range order {
		res := make([]*writeResult, len(g.reqs))
		maxSeq, err := e.execute(g.ix, g.reqs, res)
		if err != nil {
			c.fail(err)
			return
		}
		written[g.ix] = maxSeq
		for j, p := range g.pos {
			results[p] = res[j]
		}
	}
	forced, err := e.afterWrite(c.r.Context(), policy, written)
	if err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, e.bulkResponse(items, results, failed, forced, time.Since(start), ParseBulkFilter(c.param("filter_path"))))
}

// BulkFilter is the part of a bulk response filter_path keeps, for the
// forms a bulk client asks for: took, errors, items, and fields of every
// item (items.*.status). A nil filter keeps everything, as does a
// filter_path of any other form (see docs/eslite.md).
type BulkFilter struct {
	took, errors, items bool
	// fields are the item fields kept when items is false.
	fields map[string]bool
}

// ParseBulkFilter reads a bulk request's filter_path parameter.
func ParseBulkFilter(param string) *BulkFilter {
	if param == "" {
		return nil
	}
	f := &BulkFilter{fields: map[string]bool{}}
	for _, p := range strings.Split(param, ",") {
		switch p = strings.TrimSpace(p); {
		case p == "took":
			f.took = true
		case p == "errors":
			f.errors = true
		case p == "items" || p == "items.*" || p == "items.**":
			f.items = true
		case strings.HasPrefix(p, "items.*.") && !strings.ContainsAny(p[len("items.*."):], ".*-"):
			f.fields[p[len("items.*."):]] = true
		default:
			return nil
		}
	}
	return f
}

// Took reports whether the response's took is kept.
func (f *BulkFilter) Took() bool { return f == nil || f.took }

// Errors reports whether the response's errors flag is kept.
func (f *BulkFilter) Errors() bool { return f == nil || f.errors }

// Items reports whether the response's items are written at all.
func (f *BulkFilter) Items() bool { return f == nil || f.items || len(f.fields) > 0 }

// Item reports whether an item's field name is kept.
func (f *BulkFilter) Item(name string) bool { return f == nil || f.items || f.fields[name] }

func (e *Engine) isAlias(name string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, ix := range e.indices {
		if _, ok := ix.aliases[name]; ok {
			return true
		}
	}
	return false
}

// bulkResponse renders the _bulk body by hand: it is the hot path of
// indexing and the items are flat. Only what f keeps is written.
func (e *Engine) bulkResponse(items []*bulkItem, results []*writeResult, failed []*search.Error, forced bool, took time.Duration, f *BulkFilter) []byte {
	copies := map[*index]int{}
	e.mu.RLock()
	for _, r := range results {
		if r != nil {
			if _, ok := copies[r.index]; !ok {
				copies[r.index] = 1 + r.index.settings.replicas()
			}
		}
	}
	e.mu.RUnlock()

	errorsFound := false
	for i := range items {
		if failed[i] != nil || results[i] != nil && results[i].err != nil {
			errorsFound = true
			break
		}
	}
	var b bytes.Buffer
	if f == nil || f.items {
		b.Grow(len(items) * 160)
	} else {
		b.Grow(len(items) * 32)
	}
	// A member of an object being written: a comma before all but the first.
	members := 0
	member := func(name string) {
		if members > 0 {
			b.WriteByte(',')
		}
		members++
		b.WriteByte('"')
		b.WriteString(name)
		b.WriteString(`":`)
	}
	// field starts an item's member when f keeps it.
	field := func(name string) bool {
		if !f.Item(name) {
			return false
		}
		member(name)
		return true
	}
	b.WriteByte('{')
	if f.Took() {
		member("took")
		b.WriteString(strconv.FormatInt(took.Milliseconds(), 10))
	}
	if f.Errors() {
		member("errors")
		b.WriteString(strconv.FormatBool(errorsFound))
	}
	if f.Items() {
		member("items")
		b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"`)
			b.WriteString(it.req.kind.String())
			b.WriteString(`":{`)
			members = 0
			r := results[i]
			ferr := failed[i]
			if r != nil && r.err != nil {
				ferr = r.err
			}
			if field("_index") {
				name := it.index
				if r != nil {
					name = r.index.name
				}
				writeJSONString(&b, name)
			}
			if field("_id") {
				if it.req.id == "" {
					b.WriteString("null")
				} else {
					writeJSONString(&b, it.req.id)
				}
			}
			if ferr != nil {
				if field("status") {
					b.WriteString(strconv.Itoa(ferr.Status))
				}
				if field("error") {
					b.Write(ferr.ObjectJSON())
				}
				b.WriteString("}}")
				continue
			}
			if field("_version") {
				b.WriteString(strconv.FormatInt(r.version, 10))
			}
			if field("result") {
				b.WriteByte('"')
				b.WriteString(r.result)
				b.WriteByte('"')
			}
			if forced && r.result != "noop" && field("forced_refresh") {
				b.WriteString("true")
			}
			if field("_shards") {
				if r.result == "noop" {
					b.WriteString(`{"total":0,"successful":0,"failed":0}`)
				} else {
					b.WriteString(`{"total":`)
					b.WriteString(strconv.Itoa(copies[r.index]))
					b.WriteString(`,"successful":1,"failed":0}`)
				}
			}
			if field("_seq_no") {
				b.WriteString(strconv.FormatInt(r.seqNo, 10))
			}
			if field("_primary_term") {
				b.WriteString("1")
			}
			if get := updateGet(r); get != nil && field("get") {
				b.Write(get)
			}
			if field("status") {
				b.WriteString(strconv.Itoa(r.status))
			}
			b.WriteString("}}")
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes()
}
