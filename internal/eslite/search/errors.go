package search

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
)

// Error is the single Elasticsearch error type used by all of eslite. It renders as
// {"error":{"root_cause":[...],"type":T,"reason":R,...},"status":S}.
type Error struct {
	Status int    // HTTP status
	Type   string // e.g. "index_not_found_exception", "parsing_exception"
	Reason string
	// Index, when set, adds "index_uuid" and "index" where Elasticsearch adds them.
	Index string
	// IndexUUID is shown as "index_uuid"; "_na_" when empty and Index is set.
	IndexUUID string
	CausedBy  *Error
	// RootCauses is shown as "root_cause"; when empty, root_cause is this error
	// without its caused_by.
	RootCauses []*Error
	// Extra holds further fields such as "line", "col", "resource.id", "phase".
	// They are rendered after "reason", in key order.
	Extra map[string]any
}

// Sentinels let callers recognise classes of failure with errors.Is without
// comparing reason texts.
var (
	// ErrNotSupported marks a valid Elasticsearch feature that eslite does not implement.
	ErrNotSupported = errors.New("not supported by eslite")
)

// Error implements error with the Elasticsearch type and reason.
func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	return e.Type + ": " + e.Reason
}

// Unwrap exposes the cause so errors.As finds nested Elasticsearch errors.
func (e *Error) Unwrap() error {
	if e.CausedBy == nil {
		return nil
	}
	return e.CausedBy
}

// MarshalJSON renders the full error response body.
func (e *Error) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"error":`)
	e.writeObject(&b, true)
	b.WriteString(`,"status":`)
	b.WriteString(strconv.Itoa(e.Status))
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ObjectJSON renders only the error object ({"type":..,"reason":..,"caused_by":..}),
// without root_cause and status, as it appears inside a _bulk item or a shard failure.
func (e *Error) ObjectJSON() []byte {
	var b bytes.Buffer
	e.writeObject(&b, false)
	return b.Bytes()
}

func (e *Error) writeObject(b *bytes.Buffer, withRoot bool) {
	b.WriteByte('{')
	if withRoot {
		b.WriteString(`"root_cause":[`)
		roots := e.RootCauses
		if len(roots) == 0 {
			roots = []*Error{e}
		}
		for i, r := range roots {
			if i > 0 {
				b.WriteByte(',')
			}
			cp := *r
			cp.CausedBy = nil
			cp.writeObject(b, false)
		}
		b.WriteString(`],`)
	}
	b.WriteString(`"type":`)
	writeJSONString(b, e.Type)
	b.WriteString(`,"reason":`)
	writeJSONString(b, e.Reason)
	if len(e.Extra) > 0 {
		keys := make([]string, 0, len(e.Extra))
		for k := range e.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteByte(',')
			writeJSONString(b, k)
			b.WriteByte(':')
			v, err := json.Marshal(e.Extra[k])
			if err != nil {
				v = []byte("null")
			}
			b.Write(v)
		}
	}
	if e.Index != "" {
		uuid := e.IndexUUID
		if uuid == "" {
			uuid = "_na_"
		}
		b.WriteString(`,"index_uuid":`)
		writeJSONString(b, uuid)
		b.WriteString(`,"index":`)
		writeJSONString(b, e.Index)
	}
	if e.CausedBy != nil {
		b.WriteString(`,"caused_by":`)
		e.CausedBy.writeObject(b, false)
	}
	b.WriteByte('}')
}

func writeJSONString(b *bytes.Buffer, s string) {
	v, _ := json.Marshal(s)
	b.Write(v)
}

// newError builds an Error with the given status, type and reason.
func newError(status int, typ, reason string) *Error {
	return &Error{Status: status, Type: typ, Reason: reason}
}

// ParsingError is Elasticsearch's parsing_exception with line and col.
func parsingError(src []byte, off int, reason string) *Error {
	l, c := lineCol(src, off)
	return &Error{Status: http.StatusBadRequest, Type: "parsing_exception", Reason: reason,
		Extra: map[string]any{"line": l, "col": c}}
}

// xContentError is Elasticsearch's x_content_parse_exception: "[l:c] reason".
func xContentError(src []byte, off int, reason string) *Error {
	return newError(http.StatusBadRequest, "x_content_parse_exception", loc(src, off)+" "+reason)
}

// illegalArgument is Elasticsearch's illegal_argument_exception (400).
func illegalArgument(reason string) *Error {
	return newError(http.StatusBadRequest, "illegal_argument_exception", reason)
}

// mapperParsing is Elasticsearch's mapper_parsing_exception (400).
func mapperParsing(reason string) *Error {
	return newError(http.StatusBadRequest, "mapper_parsing_exception", reason)
}

// searchPhaseFailure wraps a shard-level failure the way Elasticsearch reports
// a query that failed on every shard: search_phase_execution_exception
// "all shards failed" with the cause as root cause.
func searchPhaseFailure(cause *Error, index string) *Error {
	shard := map[string]any{
		"shard":  0,
		"index":  index,
		"node":   "eslite",
		"reason": json.RawMessage(cause.ObjectJSON()),
	}
	return &Error{
		Status:     cause.Status,
		Type:       "search_phase_execution_exception",
		Reason:     "all shards failed",
		RootCauses: []*Error{cause},
		CausedBy:   cause,
		Extra: map[string]any{
			"phase":         "query",
			"grouped":       true,
			"failed_shards": []any{shard},
		},
	}
}

// syntaxToError turns a JSON syntax problem in a request body into the error
// Elasticsearch returns for it.
func syntaxToError(src []byte, err error) *Error {
	var se *syntaxError
	if errors.As(err, &se) {
		return xContentError(src, se.off, se.msg)
	}
	return newError(http.StatusBadRequest, "parse_exception", err.Error())
}
