package eslite

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// openScroll serves a search with ?scroll=: it pins the view of the target
// indices, answers the first page and keeps the rest for _search/scroll.
func (e *Engine) openScroll(c *call, expr string, req *search.Request) {
	rc, _, err := e.openContextFor(c, kindScroll, expr, "scroll")
	if err != nil {
		c.fail(err)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	resp, serr := search.Search(c.r.Context(), rc.targets, req, e.searchOptions())
	if serr != nil {
		e.freeContext(rc.id)
		c.fail(serr)
		return
	}
	rc.req, rc.cursor = req, resp.Last()
	resp.SetScrollID(rc.id)
	c.reply(http.StatusOK, resp)
}

// scrollRequest is the body of GET|POST /_search/scroll.
type scrollRequest struct {
	ScrollID string `json:"scroll_id"`
	Scroll   string `json:"scroll"`
}

// scrollAPI serves GET|POST /_search/scroll[/{scroll_id}]: the next page.
func (e *Engine) scrollAPI(c *call, pathID string) {
	sr := scrollRequest{ScrollID: pathID}
	if v := c.param("scroll_id"); v != "" {
		sr.ScrollID = v
	}
	sr.Scroll = c.param("scroll")
	if len(strings.TrimSpace(string(c.body))) > 0 {
		var body map[string]json.RawMessage
		if err := decodeBody(c.body, &body); err != nil {
			c.fail(err)
			return
		}
		for k, v := range body {
			var s string
			if json.Unmarshal(v, &s) != nil {
				c.fail(errIllegalArgument("Unknown parameter [%s] in request body or parameter is of the wrong type[%s] ", k, tokenKind(v)))
				return
			}
			switch k {
			case "scroll_id":
				sr.ScrollID = s
			case "scroll":
				sr.Scroll = s
			default:
				c.fail(errIllegalArgument("Unknown parameter [%s] in request body or parameter is of the wrong type[VALUE_STRING] ", k))
				return
			}
		}
	}
	totalAsInt, perr := c.boolParam("rest_total_hits_as_int", false)
	if perr != nil {
		c.fail(perr)
		return
	}
	if sr.ScrollID == "" {
		c.fail(errValidation("scrollId is missing"))
		return
	}
	var keepAlive = rcKeepAliveUnchanged
	if sr.Scroll != "" {
		d, kerr := parseKeepAlive("scroll", sr.Scroll)
		if kerr != nil {
			c.fail(kerr)
			return
		}
		keepAlive = d
	}
	num, ok := parseContextID(kindScroll, sr.ScrollID)
	if !ok {
		c.fail(errCannotParseScrollID())
		return
	}
	rc := e.useContext(sr.ScrollID, keepAlive)
	if rc == nil || rc.kind != kindScroll {
		c.fail(errContextMissing(num))
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.req.ContinueAfter(rc.cursor)
	resp, serr := search.Search(c.r.Context(), rc.targets, rc.req, e.searchOptions())
	if serr != nil {
		if errors.Is(serr, search.ErrClosed) {
			serr = errContextMissing(num)
		}
		c.fail(serr)
		return
	}
	rc.cursor = resp.Last()
	resp.SetScrollID(rc.id)
	resp.SetTotalAsInt(totalAsInt)
	c.reply(http.StatusOK, resp)
}

// rcKeepAliveUnchanged keeps a context's keep-alive when a request gives
// none.
const rcKeepAliveUnchanged time.Duration = 0

// clearScrollAPI serves DELETE /_search/scroll[/{ids}] with a body
// {"scroll_id": id or [ids]}; "_all" frees every scroll.
func (e *Engine) clearScrollAPI(c *call, pathIDs string) {
	var ids []string
	if pathIDs != "" {
		ids = splitList(pathIDs)
	}
	if v := c.param("scroll_id"); v != "" {
		ids = append(ids, splitList(v)...)
	}
	if len(strings.TrimSpace(string(c.body))) > 0 {
		var body struct {
			ScrollID json.RawMessage `json:"scroll_id"`
		}
		if err := decodeBody(c.body, &body); err != nil {
			c.fail(err)
			return
		}
		ids = append(ids, stringOrList(body.ScrollID)...)
	}
	if len(ids) == 0 {
		c.fail(errValidation("no scroll ids specified"))
		return
	}
	freed := 0
	if len(ids) == 1 && ids[0] == "_all" {
		freed = e.freeContexts(func(rc *readerContext) bool { return rc.kind == kindScroll })
	} else {
		for _, id := range ids {
			if _, ok := parseContextID(kindScroll, id); !ok {
				c.fail(errCannotParseScrollID())
				return
			}
		}
		for _, id := range ids {
			if e.freeContext(id) {
				freed++
			}
		}
	}
	status := http.StatusOK
	if freed == 0 {
		status = http.StatusNotFound
	}
	c.reply(status, map[string]any{"succeeded": true, "num_freed": freed})
}

func errCannotParseScrollID() *search.Error {
	return errIllegalArgument("Cannot parse scroll id")
}

// tokenKind names a JSON value's token as Jackson does.
func tokenKind(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case strings.HasPrefix(s, "{"):
		return "START_OBJECT"
	case strings.HasPrefix(s, "["):
		return "START_ARRAY"
	case s == "true" || s == "false":
		return "VALUE_BOOLEAN"
	case s == "null":
		return "VALUE_NULL"
	}
	return "VALUE_NUMBER"
}
