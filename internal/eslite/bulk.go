package eslite

import (
	"bytes"
	"net/http"
	"strconv"
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
	c.reply(http.StatusOK, e.bulkResponse(items, results, failed, forced, time.Since(start)))
}

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
// indexing and the items are flat.
func (e *Engine) bulkResponse(items []*bulkItem, results []*writeResult, failed []*search.Error, forced bool, took time.Duration) []byte {
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

	var b bytes.Buffer
	b.Grow(len(items) * 160)
	errorsFound := false
	b.WriteString(`{"took":`)
	b.WriteString(strconv.FormatInt(took.Milliseconds(), 10))
	b.WriteString(`,"errors":`)
	errPos := b.Len()
	b.WriteString(`false,"items":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"`)
		b.WriteString(it.req.kind.String())
		b.WriteString(`":{"_index":`)
		r := results[i]
		ferr := failed[i]
		if r != nil && r.err != nil {
			ferr = r.err
		}
		name := it.index
		if r != nil {
			name = r.index.name
		}
		writeJSONString(&b, name)
		b.WriteString(`,"_id":`)
		if it.req.id == "" {
			b.WriteString("null")
		} else {
			writeJSONString(&b, it.req.id)
		}
		if ferr != nil {
			errorsFound = true
			b.WriteString(`,"status":`)
			b.WriteString(strconv.Itoa(ferr.Status))
			b.WriteString(`,"error":`)
			b.Write(ferr.ObjectJSON())
			b.WriteString("}}")
			continue
		}
		b.WriteString(`,"_version":`)
		b.WriteString(strconv.FormatInt(r.version, 10))
		b.WriteString(`,"result":"`)
		b.WriteString(r.result)
		b.WriteString(`"`)
		if forced && r.result != "noop" {
			b.WriteString(`,"forced_refresh":true`)
		}
		if r.result == "noop" {
			b.WriteString(`,"_shards":{"total":0,"successful":0,"failed":0}`)
		} else {
			b.WriteString(`,"_shards":{"total":`)
			b.WriteString(strconv.Itoa(copies[r.index]))
			b.WriteString(`,"successful":1,"failed":0}`)
		}
		b.WriteString(`,"_seq_no":`)
		b.WriteString(strconv.FormatInt(r.seqNo, 10))
		b.WriteString(`,"_primary_term":1`)
		if get := updateGet(r); get != nil {
			b.WriteString(`,"get":`)
			b.Write(get)
		}
		b.WriteString(`,"status":`)
		b.WriteString(strconv.Itoa(r.status))
		b.WriteString("}}")
	}
	b.WriteString("]}")
	out := b.Bytes()
	if errorsFound {
		out = append(out[:errPos:errPos], append([]byte("true"), out[errPos+5:]...)...)
	}
	return out
}
