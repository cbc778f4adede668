package eslite

import (
	"net/http"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// targets resolves expr to the search view of each index.
func (e *Engine) targets(c *call, expr string) ([]search.Target, []*index, *search.Error) {
	ixs, err := e.resolveFromParams(c, expr)
	if err != nil {
		return nil, nil, err
	}
	out := make([]search.Target, len(ixs))
	for i, ix := range ixs {
		e.mu.RLock()
		window := ix.settings.maxResultWindow()
		e.mu.RUnlock()
		out[i] = ix.target(window)
	}
	return out, ixs, nil
}

func (e *Engine) searchOptions() search.Options { return search.Options{Now: e.now} }

// searchAPI serves GET|POST /{index}/_search and /_search (expr ""). Like
// Elasticsearch's REST layer it parses and validates the request before it
// resolves any index.
func (e *Engine) searchAPI(c *call, expr string) {
	req, perr := search.ParseRequest(c.body, c.q)
	if perr != nil {
		c.fail(perr)
		return
	}
	if req.PIT() == nil && c.hasParam("scroll") {
		if expr == "" {
			expr = "_all"
		}
		e.openScroll(c, expr, req)
		return
	}
	resp, err := e.runSearch(c, expr, req)
	if err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, resp)
}

// runSearch runs a parsed search on expr ("" for all indices) or on the
// point in time it names; c supplies the URL parameters.
func (e *Engine) runSearch(c *call, expr string, req *search.Request) (*search.Response, error) {
	if req.PIT() != nil {
		return e.pitSearch(c, expr, req)
	}
	if expr == "" {
		expr = "_all"
	}
	targets, _, err := e.targets(c, expr)
	if err != nil {
		return nil, err
	}
	return search.Search(c.r.Context(), targets, req, e.searchOptions())
}

// countAPI serves GET|POST /{index}/_count.
func (e *Engine) countAPI(c *call, expr string) {
	targets, ixs, err := e.targets(c, expr)
	if err != nil {
		c.fail(err)
		return
	}
	n, cerr := search.Count(c.r.Context(), targets, c.body, e.searchOptions())
	if cerr != nil {
		c.fail(cerr)
		return
	}
	shards := 0
	e.mu.RLock()
	for _, ix := range ixs {
		shards += ix.settings.shards()
	}
	e.mu.RUnlock()
	c.reply(http.StatusOK, map[string]any{
		"count":   n,
		"_shards": map[string]int{"total": shards, "successful": shards, "skipped": 0, "failed": 0},
	})
}

// dbqFailure is one entry of a _delete_by_query "failures" list.
type dbqFailure struct {
	Index  string `json:"index"`
	ID     string `json:"id"`
	Cause  any    `json:"cause"`
	Status int    `json:"status"`
}

// scrollSize is the batch size Elasticsearch's _delete_by_query uses.
const scrollSize = 1000

// parseConflicts reads a by-query request's conflicts value: "abort" (or
// none) stops at the first version conflict, "proceed" counts it and goes on.
func parseConflicts(v string) (proceed bool, err *search.Error) {
	switch v {
	case "", "abort":
		return false, nil
	case "proceed":
		return true, nil
	}
	return false, errIllegalArgument("conflicts may only be \"proceed\" or \"abort\" but was [%s]", v)
}

// byQueryTargets reads the parameters _delete_by_query and _update_by_query
// share (refresh, wait_for_completion) and resolves their target indices.
func (e *Engine) byQueryTargets(c *call, expr string) ([]search.Target, []*index, bool, *search.Error) {
	refresh, err := c.boolParam("refresh", false)
	if err != nil {
		return nil, nil, false, err
	}
	if wait, _ := c.boolParam("wait_for_completion", true); !wait {
		return nil, nil, false, errIllegalArgument("wait_for_completion=false is not supported by eslite")
	}
	targets, ixs, err := e.targets(c, expr)
	return targets, ixs, refresh, err
}

// deleteByQueryAPI serves POST /{index}/_delete_by_query. It matches on the
// refreshed view, as Elasticsearch's scroll does, and deletes through the
// normal versioned write path, so versions and tombstones stay right.
func (e *Engine) deleteByQueryAPI(c *call, expr string) {
	start := time.Now()
	proceed, perr := parseConflicts(c.param("conflicts"))
	if perr != nil {
		c.fail(perr)
		return
	}
	targets, ixs, refresh, err := e.byQueryTargets(c, expr)
	if err != nil {
		c.fail(err)
		return
	}
	var total, deleted, conflicts, batches int64
	failures := []dbqFailure{}
	status := http.StatusOK
	for i, t := range targets {
		ids, merr := search.MatchingIDs(c.r.Context(), t, c.body, e.searchOptions())
		if merr != nil {
			c.fail(merr)
			return
		}
		total += int64(len(ids))
		for from := 0; from < len(ids); from += scrollSize {
			to := min(from+scrollSize, len(ids))
			batches++
			reqs := make([]*writeReq, 0, to-from)
			for _, id := range ids[from:to] {
				reqs = append(reqs, &writeReq{kind: opDelete, id: id, version: versionMatchAny, ifSeqNo: seqNoUnassigned})
			}
			res := make([]*writeResult, len(reqs))
			if _, err := e.execute(ixs[i], reqs, res); err != nil {
				c.fail(err)
				return
			}
			for _, r := range res {
				switch {
				case r.err != nil:
					failures = append(failures, dbqFailure{Index: ixs[i].name, ID: r.id, Cause: r.err.ObjectJSON(), Status: r.err.Status})
				case r.result == "deleted":
					deleted++
				default:
					// Deleted since the search saw it: Elasticsearch counts
					// this as a version conflict.
					conflicts++
					if !proceed {
						cause := errVersionConflict(ixs[i], r.id, "document does not exist")
						failures = append(failures, dbqFailure{Index: ixs[i].name, ID: r.id, Cause: causeJSON(cause), Status: http.StatusConflict})
						status = http.StatusConflict
					}
				}
			}
		}
		if refresh {
			if err := e.refresh(ixs[i]); err != nil {
				c.fail(err)
				return
			}
		}
	}
	c.reply(status, map[string]any{
		"took":                   time.Since(start).Milliseconds(),
		"timed_out":              false,
		"total":                  total,
		"deleted":                deleted,
		"batches":                batches,
		"version_conflicts":      conflicts,
		"noops":                  0,
		"retries":                map[string]int{"bulk": 0, "search": 0},
		"throttled_millis":       0,
		"requests_per_second":    -1.0,
		"throttled_until_millis": 0,
		"failures":               failures,
	})
}
