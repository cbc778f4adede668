package eslite

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// msearchItem is one header/body pair of a _msearch request.
type msearchItem struct {
	expr   string
	params url.Values
	body   []byte
}

// msearchParams are the header keys Elasticsearch accepts, other than
// "index".
var msearchParams = map[string]bool{
	"search_type": true, "ccs_minimize_roundtrips": true, "request_cache": true, "routing": true,
	"preference": true, "allow_partial_search_results": true, "ignore_unavailable": true,
	"allow_no_indices": true, "expand_wildcards": true, "ignore_throttled": true,
}

// parseMsearch splits an NDJSON _msearch body into header/body pairs, as
// MultiSearchRequest.readMultiLineFormat does: an empty header line is {},
// and the index of the path applies where a header names none.
func parseMsearch(body []byte, defaultIndex string) ([]msearchItem, *search.Error) {
	var items []msearchItem
	lines := bytes.Split(body, []byte("\n"))
	if len(lines) > 0 && len(bytes.TrimSpace(lines[len(lines)-1])) == 0 {
		lines = lines[:len(lines)-1]
	}
	for i := 0; i < len(lines); i += 2 {
		header := bytes.TrimSpace(lines[i])
		it := msearchItem{expr: defaultIndex, params: url.Values{}}
		if len(header) > 0 {
			var h map[string]json.RawMessage
			if err := decodeBody(header, &h); err != nil {
				return nil, err
			}
			for k, v := range h {
				switch {
				case k == "index":
					it.expr = strings.Join(stringOrList(v), ",")
				case msearchParams[k]:
					it.params.Set(k, scalarText(v))
				default:
					return nil, errIllegalArgument("key [%s] is not supported in the metadata section", k)
				}
			}
		}
		if i+1 >= len(lines) {
			break // a header without a body is dropped, as in Elasticsearch
		}
		it.body = bytes.TrimSpace(lines[i+1])
		items = append(items, it)
	}
	return items, nil
}

// msearchAPI serves GET|POST /_msearch and /{index}/_msearch. Each search
// answers on its own: a failed one is an item with "error" and "status".
func (e *Engine) msearchAPI(c *call, defaultIndex string) {
	start := time.Now()
	if len(bytes.TrimSpace(c.body)) == 0 {
		c.fail(errParse("request body or source parameter is required"))
		return
	}
	items, perr := parseMsearch(c.body, defaultIndex)
	if perr != nil {
		c.fail(perr)
		return
	}
	if len(items) == 0 {
		c.fail(errValidation("no requests added"))
		return
	}
	// Every body is parsed before any search runs: a malformed one fails
	// the whole request.
	reqs := make([]*search.Request, len(items))
	failed := make([]*search.Error, len(items))
	for i, it := range items {
		params := url.Values{}
		for k, v := range it.params {
			params[k] = v
		}
		if v, ok := c.q["rest_total_hits_as_int"]; ok {
			params["rest_total_hits_as_int"] = v
		}
		req, err := search.ParseRequest(it.body, params)
		if err != nil {
			se := asESError(err)
			if se.Type != "action_request_validation_exception" {
				c.fail(se)
				return
			}
			failed[i] = se
			continue
		}
		reqs[i] = req
	}
	var b bytes.Buffer
	b.WriteString(`{"took":`)
	tookAt := b.Len()
	b.WriteString(`,"responses":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		var err error
		var resp *search.Response
		if failed[i] != nil {
			err = failed[i]
		} else {
			sub := &call{w: c.w, r: c.r, q: items[i].params, segs: c.segs}
			resp, err = e.runSearch(sub, it.expr, reqs[i])
		}
		if err != nil {
			se := asESError(err)
			raw, _ := se.MarshalJSON()
			b.Write(raw)
			continue
		}
		raw, merr := resp.MarshalJSON()
		if merr != nil {
			c.fail(merr)
			return
		}
		b.Write(raw[:len(raw)-1])
		b.WriteString(`,"status":200}`)
	}
	b.WriteString("]}")
	out := b.Bytes()
	took := strconv.FormatInt(time.Since(start).Milliseconds(), 10)
	out = append(out[:tookAt:tookAt], append([]byte(took), out[tookAt:]...)...)
	c.reply(http.StatusOK, out)
}
