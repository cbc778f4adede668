package eslite

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// updateByQueryAPI serves POST /{index}/_update_by_query. Without a script
// it re-indexes every matching document in place (new version and sequence
// number, same _source), which is how a mapping change is applied to data
// already indexed. It matches on the refreshed view, as Elasticsearch's
// scroll does, and writes each document only if it is unchanged since it was
// read (if_seq_no), so a concurrent write wins and counts as a version
// conflict.
func (e *Engine) updateByQueryAPI(c *call, expr string) {
	start := time.Now()
	opts, body, perr := parseByQueryBody(c.body)
	if perr != nil {
		c.fail(perr)
		return
	}
	if v := c.param("conflicts"); v != "" {
		opts.conflicts = v
	}
	proceed, perr := parseConflicts(opts.conflicts)
	if perr != nil {
		c.fail(perr)
		return
	}
	maxDocs, perr := c.longParam("max_docs", opts.maxDocs)
	if perr != nil {
		c.fail(perr)
		return
	}
	targets, ixs, refresh, err := e.byQueryTargets(c, expr)
	if err != nil {
		c.fail(err)
		return
	}
	var total, updated, conflicts, batches int64
	failures := []dbqFailure{}
	status := http.StatusOK
	for i, t := range targets {
		ids, merr := search.MatchingIDs(c.r.Context(), t, body, e.searchOptions())
		if merr != nil {
			c.fail(merr)
			return
		}
		if maxDocs >= 0 && int64(len(ids)) > maxDocs-total {
			ids = ids[:max(0, maxDocs-total)]
		}
		total += int64(len(ids))
		ix := ixs[i]
		for from := 0; from < len(ids); from += scrollSize {
			to := min(from+scrollSize, len(ids))
			batches++
			var reqs []*writeReq
			for _, id := range ids[from:to] {
				d, gerr := ix.get(id)
				if gerr != nil {
					c.fail(errStoreRead(gerr))
					return
				}
				if d == nil {
					// Deleted since the search saw it.
					conflicts++
					if !proceed {
						cause := errVersionConflict(ix, id, "document does not exist")
						failures = append(failures, dbqFailure{Index: ix.name, ID: id, Cause: causeJSON(cause), Status: http.StatusConflict})
						status = http.StatusConflict
					}
					continue
				}
				reqs = append(reqs, &writeReq{kind: opIndex, id: id, source: d.source, version: versionMatchAny,
					ifSeqNo: d.seqNo, ifPrimaryTerm: primaryTerm})
			}
			res := make([]*writeResult, len(reqs))
			if len(reqs) > 0 {
				if _, err := e.execute(ix, reqs, res); err != nil {
					c.fail(err)
					return
				}
			}
			for _, r := range res {
				switch {
				case r.err != nil && r.err.Type == "version_conflict_engine_exception":
					conflicts++
					if !proceed {
						failures = append(failures, dbqFailure{Index: ix.name, ID: r.id, Cause: r.err.ObjectJSON(), Status: r.err.Status})
						status = http.StatusConflict
					}
				case r.err != nil:
					failures = append(failures, dbqFailure{Index: ix.name, ID: r.id, Cause: r.err.ObjectJSON(), Status: r.err.Status})
				default:
					updated++
				}
			}
			if !proceed && status == http.StatusConflict {
				break // abort: Elasticsearch stops at the first batch with a conflict
			}
		}
		if refresh {
			if err := e.refresh(ix); err != nil {
				c.fail(err)
				return
			}
		}
		if !proceed && status == http.StatusConflict {
			break
		}
	}
	c.reply(status, map[string]any{
		"took":                   time.Since(start).Milliseconds(),
		"timed_out":              false,
		"total":                  total,
		"updated":                updated,
		"deleted":                0,
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

// byQueryOptions are the body keys of _update_by_query besides "query".
type byQueryOptions struct {
	conflicts string
	maxDocs   int64 // -1: all
}

// parseByQueryBody reads conflicts, max_docs and script from an
// _update_by_query body and returns the body the query matcher reads.
// Scripts are refused as Elasticsearch refuses a script language it does
// not have.
func parseByQueryBody(body []byte) (byQueryOptions, []byte, *search.Error) {
	opts := byQueryOptions{maxDocs: -1}
	if len(strings.TrimSpace(string(body))) == 0 {
		return opts, body, nil
	}
	var raw map[string]json.RawMessage
	if err := decodeBody(body, &raw); err != nil {
		return opts, nil, err
	}
	if s, ok := raw["script"]; ok {
		lang := "painless"
		var spec struct {
			Lang string `json:"lang"`
		}
		if json.Unmarshal(s, &spec) == nil && spec.Lang != "" {
			lang = spec.Lang
		}
		return opts, nil, errIllegalArgument("script_lang not supported [%s]", lang)
	}
	if v, ok := raw["conflicts"]; ok {
		opts.conflicts = scalarText(v)
	}
	if v, ok := raw["max_docs"]; ok {
		n, err := longValue("max_docs", scalarText(v))
		if err != nil {
			return opts, nil, err
		}
		opts.maxDocs = n
	}
	return opts, body, nil
}
