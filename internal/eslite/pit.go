package eslite

import (
	"errors"
	"net/http"
	"strings"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// openPITAPI serves POST /{index}/_pit?keep_alive=: it pins the current
// view of the indices for later searches with "pit".
func (e *Engine) openPITAPI(c *call, expr string) {
	if !c.hasParam("keep_alive") {
		c.fail(errValidation("[keep_alive] is not specified"))
		return
	}
	rc, ixs, err := e.openContextFor(c, kindPIT, expr, "keep_alive")
	if err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, map[string]any{
		"id":      rc.id,
		"_shards": map[string]int{"total": len(ixs), "successful": len(ixs), "skipped": 0, "failed": 0},
	})
}

// closePITAPI serves DELETE /_pit with {"id": "..."}.
func (e *Engine) closePITAPI(c *call) {
	var body struct {
		ID string `json:"id"`
	}
	if len(strings.TrimSpace(string(c.body))) == 0 {
		c.fail(errValidation("id is empty"))
		return
	}
	if err := decodeBody(c.body, &body); err != nil {
		c.fail(err)
		return
	}
	if body.ID == "" {
		c.fail(errValidation("id is empty"))
		return
	}
	if _, ok := parseContextID(kindPIT, body.ID); !ok {
		c.fail(errInvalidPITID(body.ID))
		return
	}
	freed := 0
	if e.freeContext(body.ID) {
		freed = 1
	}
	status := http.StatusOK
	if freed == 0 {
		status = http.StatusNotFound
	}
	c.reply(status, map[string]any{"succeeded": true, "num_freed": freed})
}

// pitSearch runs a search whose body names a point in time. As in
// Elasticsearch the request may not name indices: the point in time does.
func (e *Engine) pitSearch(c *call, expr string, req *search.Request) (*search.Response, error) {
	var problems []string
	if expr != "" {
		problems = append(problems, "[indices] cannot be used with point in time. Do not specify any index with point in time.")
	}
	for _, k := range []string{"ignore_unavailable", "allow_no_indices", "expand_wildcards", "ignore_throttled"} {
		if c.hasParam(k) {
			problems = append(problems, "[indicesOptions] cannot be used with point in time")
			break
		}
	}
	if c.hasParam("routing") {
		problems = append(problems, "[routing] cannot be used with point in time")
	}
	if c.hasParam("preference") {
		problems = append(problems, "[preference] cannot be used with point in time")
	}
	if c.hasParam("scroll") {
		problems = append(problems, "using [point in time] is not allowed in a scroll context")
	}
	if len(problems) > 0 {
		return nil, errValidation(problems...)
	}
	pit := req.PIT()
	keepAlive := rcKeepAliveUnchanged
	if pit.KeepAlive != "" {
		d, kerr := parseKeepAlive("keep_alive", pit.KeepAlive)
		if kerr != nil {
			return nil, kerr
		}
		keepAlive = d
	}
	num, ok := parseContextID(kindPIT, pit.ID)
	if !ok {
		return nil, errInvalidPITID(pit.ID)
	}
	rc := e.useContext(pit.ID, keepAlive)
	if rc == nil || rc.kind != kindPIT {
		return nil, errContextMissing(num)
	}
	resp, err := search.Search(c.r.Context(), rc.targets, req, e.searchOptions())
	if err != nil {
		if errors.Is(err, search.ErrClosed) {
			err = errContextMissing(num)
		}
		return nil, err
	}
	resp.SetPITID(rc.id)
	return resp, nil
}

// errInvalidPITID is Elasticsearch's answer to an id that does not decode.
func errInvalidPITID(id string) *search.Error {
	return errIllegalArgument("invalid id: [%s]", id)
}
