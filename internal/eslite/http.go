package eslite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// maxContentLength is Elasticsearch's default http.max_content_length.
const maxContentLength = 100 << 20

// call is one REST request being served.
type call struct {
	w    http.ResponseWriter
	r    *http.Request
	q    url.Values
	segs []string
	body []byte
}

func (c *call) param(name string) string { return c.q.Get(name) }

func (c *call) hasParam(name string) bool { _, ok := c.q[name]; return ok }

// boolParam parses an Elasticsearch boolean parameter: "" (present without a
// value) and "true" are true, "false" is false, anything else is an error.
func (c *call) boolParam(name string, def bool) (bool, *search.Error) {
	v, ok := c.q[name]
	if !ok {
		return def, nil
	}
	switch v[0] {
	case "", "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errIllegalArgument("Failed to parse value [%s] as only [true] or [false] are allowed.", v[0])
}

func (c *call) longParam(name string, def int64) (int64, *search.Error) {
	v, ok := c.q[name]
	if !ok || v[0] == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		return 0, errIllegalArgument("Failed to parse long parameter [%s] with value [%s]", name, v[0])
	}
	return n, nil
}

// readBody reads the request body (nil-safe) within Elasticsearch's limit.
func readBody(r *http.Request) ([]byte, *search.Error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, maxContentLength+1))
	if err != nil {
		return nil, esError(http.StatusBadRequest, "parse_exception", "failed to read request body: "+err.Error())
	}
	if len(b) > maxContentLength {
		return nil, esError(http.StatusRequestEntityTooLarge, "content_too_long_exception", "request body is too large")
	}
	return b, nil
}

// contentTypeProblem returns Elasticsearch's complaint about a Content-Type
// it would not accept, or "".
func contentTypeProblem(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "Content-Type header [" + ct + "] is not supported"
	}
	switch mt {
	case "application/json", "application/x-ndjson",
		"application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson":
		return ""
	}
	return "Content-Type header [" + ct + "] is not supported"
}

func setHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-Elastic-Product", "Elasticsearch")
	h.Set("Content-Type", "application/json")
}

// reply writes a JSON body (or only the status for HEAD).
func (c *call) reply(status int, v any) {
	var raw []byte
	switch t := v.(type) {
	case []byte:
		raw = t
	case json.RawMessage:
		raw = t
	default:
		var err error
		raw, err = json.Marshal(v)
		if err != nil {
			c.fail(fmt.Errorf("encode response: %w", err))
			return
		}
	}
	setHeaders(c.w)
	if c.r.Method == http.MethodHead {
		c.w.WriteHeader(status)
		return
	}
	c.w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	c.w.WriteHeader(status)
	_, _ = c.w.Write(raw)
}

// fail answers with the Elasticsearch error for err.
func (c *call) fail(err error) {
	se := asESError(err)
	raw, _ := se.MarshalJSON()
	c.reply(se.Status, json.RawMessage(raw))
}

// failPlain answers with Elasticsearch's plain {"error":"...","status":N}
// body, used for routing problems.
func (c *call) failPlain(status int, msg string) {
	c.reply(status, map[string]any{"error": msg, "status": status})
}

func (c *call) uri() string {
	if c.r.URL.RawQuery != "" {
		return c.r.URL.Path + "?" + c.r.URL.RawQuery
	}
	return c.r.URL.Path
}

func (c *call) noHandler() {
	c.failPlain(http.StatusBadRequest, "no handler found for uri ["+c.uri()+"] and method ["+c.r.Method+"]")
}

func (c *call) badMethod(allowed ...string) {
	c.failPlain(http.StatusMethodNotAllowed, "Incorrect HTTP method for uri ["+c.uri()+"] and method ["+c.r.Method+"], allowed: ["+strings.Join(allowed, ", ")+"]")
}

// shards renders a _shards header.
func shardsHeader(total, successful int) map[string]int {
	return map[string]int{"total": total, "successful": successful, "failed": 0}
}

// decodeBody parses a JSON request body into v with Elasticsearch's error for
// malformed JSON.
func decodeBody(body []byte, v any) *search.Error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return errXContent(fmt.Sprintf("[1:%d] %s", se.Offset, se.Error()))
		}
		return errXContent("[1:1] " + err.Error())
	}
	return nil
}
