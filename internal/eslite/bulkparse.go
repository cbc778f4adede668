package eslite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// bulkItem is one parsed _bulk action with its source line.
type bulkItem struct {
	req          writeReq
	index        string // "" when the line named none
	pipeline     string
	requireAlias bool
	emptyID      bool // "_id":"" was given, which Elasticsearch refuses per item
	line         int  // 1-based line of the action
	// requireAliasSet: the item gave require_alias, which overrides the
	// request's.
	requireAliasSet bool
	// fetch is the _source of the action line: an update answers with the
	// updated _source ("get") when it asks for it.
	fetch json.RawMessage
}

// parseBulk parses an NDJSON _bulk body the way Elasticsearch's
// BulkRequestParser does, with its error messages. It is pure: nothing is
// resolved or executed.
func parseBulk(body []byte) ([]*bulkItem, *search.Error) {
	var items []*bulkItem
	line := 0
	from := 0
	for {
		next, err := nextMarker(body, from)
		if err != nil {
			return nil, err
		}
		if next < 0 {
			break
		}
		line++
		actionLine := body[from:next]
		from = next + 1
		item, perr := parseActionLine(actionLine, line)
		if perr != nil {
			return nil, perr
		}
		if item == nil { // an empty line
			continue
		}
		if item.req.kind == opDelete {
			items = append(items, item)
			continue
		}
		next, err = nextMarker(body, from)
		if err != nil {
			return nil, err
		}
		if next < 0 {
			break
		}
		line++
		src := trimCR(body[from:next])
		from = next + 1
		switch item.req.kind {
		case opUpdate:
			if item.req.version != versionMatchAny || item.req.vtype != vtInternal {
				return nil, errIllegalArgument("Update requests do not support versioning. Please use `if_seq_no` and `if_primary_term` instead")
			}
			u, uerr := parseUpdateBody(src)
			if uerr != nil {
				return nil, uerr
			}
			if item.fetch != nil {
				f, ferr := sourceFilterFromJSON(item.fetch)
				if ferr != nil {
					return nil, ferr
				}
				u.fetch = f // the action line's _source wins over the body's
			}
			item.req.update = u
		default:
			item.req.source = src
		}
		items = append(items, item)
	}
	return items, nil
}

func nextMarker(body []byte, from int) (int, *search.Error) {
	i := bytes.IndexByte(body[from:], '\n')
	if i >= 0 {
		return from + i, nil
	}
	if from != len(body) {
		return -1, errIllegalArgument("The bulk request must be terminated by a newline [\\n]")
	}
	return -1, nil
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// tokenName is the name Jackson gives the token a JSON value starts with.
func tokenName(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "null"
	}
	switch raw[0] {
	case '{':
		return "START_OBJECT"
	case '[':
		return "START_ARRAY"
	case '"':
		return "VALUE_STRING"
	case 't', 'f':
		return "VALUE_BOOLEAN"
	case 'n':
		return "VALUE_NULL"
	}
	return "VALUE_NUMBER"
}

func malformed(line int, format string, args ...any) *search.Error {
	return errIllegalArgument("Malformed action/metadata line [%d], %s", line, fmt.Sprintf(format, args...))
}

func xcontentAt(raw []byte, err error) *search.Error {
	var se *json.SyntaxError
	col := int64(1)
	if errors.As(err, &se) {
		col = se.Offset
	}
	msg := err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = "Unexpected end-of-input"
	}
	return errXContent(fmt.Sprintf("[1:%d] %s", col, msg))
}

// parseActionLine parses one action/metadata line; it returns nil for an
// empty line.
func parseActionLine(raw []byte, line int) (*bulkItem, *search.Error) {
	if item, perr, ok := parseActionLineFast(raw, line); ok {
		return item, perr
	}
	return parseActionLineJSON(raw, line)
}

// parseActionLineJSON is parseActionLine for any line, through
// encoding/json.
func parseActionLineJSON(raw []byte, line int) (*bulkItem, *search.Error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, xcontentAt(raw, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, malformed(line, "expected START_OBJECT but found [%s]", tokenOf(tok))
	}
	if !dec.More() {
		return nil, malformed(line, "expected FIELD_NAME but found [END_OBJECT]")
	}
	tok, err = dec.Token()
	if err != nil {
		return nil, xcontentAt(raw, err)
	}
	action, _ := tok.(string)
	item := &bulkItem{line: line, req: writeReq{version: versionMatchAny, ifSeqNo: seqNoUnassigned}}
	var known bool
	if item.req.kind, known = bulkAction(action); !known {
		return nil, malformed(line, "expected field [create], [delete], [index] or [update] but found [%s]", action)
	}
	var meta json.RawMessage
	if err := dec.Decode(&meta); err != nil {
		return nil, xcontentAt(raw, err)
	}
	if tokenName(meta) != "START_OBJECT" {
		return nil, malformed(line, "expected START_OBJECT or END_OBJECT but found [%s]", tokenName(meta))
	}
	if perr := parseActionMeta(item, meta, line); perr != nil {
		return nil, perr
	}
	if dec.More() {
		return nil, malformed(line, "expected END_OBJECT but found [FIELD_NAME]")
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, malformed(line, "expected END_OBJECT but end-of-input was found")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed(line, "unexpected data after the closing brace")
	}
	return item, nil
}

func tokenOf(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return "START_OBJECT"
		case '}':
			return "END_OBJECT"
		case '[':
			return "START_ARRAY"
		}
		return "END_ARRAY"
	case string:
		return "VALUE_STRING"
	case bool:
		return "VALUE_BOOLEAN"
	case nil:
		return "VALUE_NULL"
	}
	return "VALUE_NUMBER"
}

func parseActionMeta(item *bulkItem, meta json.RawMessage, line int) *search.Error {
	dec := json.NewDecoder(bytes.NewReader(meta))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return xcontentAt(meta, err)
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return xcontentAt(meta, err)
		}
		key, _ := kt.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return xcontentAt(meta, err)
		}
		if perr := applyActionMeta(item, key, val, tokenName(val), scalarText, line); perr != nil {
			return perr
		}
	}
	return nil
}

// applyActionMeta applies one field of an action line's metadata object:
// key, its raw JSON value val, the value's token kind and text, which
// renders a scalar val as the parameter's text.
func applyActionMeta(item *bulkItem, key string, val json.RawMessage, kind string, text func(json.RawMessage) string, line int) *search.Error {
	switch {
	case kind == "VALUE_NULL":
		return nil
	case kind == "START_OBJECT" && key == "_source":
		item.fetch = val
		return nil
	case kind == "START_OBJECT" && key == "dynamic_templates":
		return nil
	case kind == "START_ARRAY" || kind == "START_OBJECT":
		return malformed(line, "expected a simple value for field [%s] but found [%s]", key, kind)
	}
	r := &item.req
	var perr *search.Error
	switch key {
	case "_index":
		item.index = text(val)
	case "_id":
		r.id = text(val)
		item.emptyID = r.id == ""
	case "_source":
		item.fetch = val
	case "routing", "retry_on_conflict", "require_data_stream", "list_executed_pipelines":
	case "op_type":
		switch t := text(val); t {
		case "create":
			if r.kind == opIndex {
				r.kind = opCreate
			}
		case "index":
		default:
			return errIllegalArgument("opType must be 'create' or 'index', found: [%s]", t)
		}
	case "version":
		r.version, perr = longValue(key, text(val))
	case "version_type":
		r.vtype, perr = parseVersionType(text(val))
	case "if_seq_no":
		r.ifSeqNo, perr = longValue(key, text(val))
		if perr == nil && r.ifSeqNo < 0 {
			perr = errIllegalArgument("sequence numbers must be non negative. got [%d].", r.ifSeqNo)
		}
	case "if_primary_term":
		r.ifPrimaryTerm, perr = longValue(key, text(val))
		if perr == nil && r.ifPrimaryTerm < 0 {
			perr = errIllegalArgument("primary term must be non negative. got [%d]", r.ifPrimaryTerm)
		}
	case "pipeline":
		item.pipeline = text(val)
	case "require_alias":
		item.requireAlias = text(val) == "true"
		item.requireAliasSet = true
	default:
		return errIllegalArgument("Action/metadata line [%d] contains an unknown parameter [%s]", line, key)
	}
	return perr
}

func scalarText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

func longValue(key, text string) (int64, *search.Error) {
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, errIllegalArgument("failed to parse field [%s]: For input string: \"%s\"", key, text)
		}
		n = int64(f)
	}
	return n, nil
}

// bulkAction is the write an action line names: index, create, update or
// delete.
func bulkAction(action string) (opKind, bool) {
	switch action {
	case "index":
		return opIndex, true
	case "create":
		return opCreate, true
	case "update":
		return opUpdate, true
	case "delete":
		return opDelete, true
	}
	return 0, false
}

// ParseBulkAction reads one _bulk action line as the engine does and
// returns its action (index, create, update or delete), index ("" when
// the line names none) and document id. It serves programs that answer
// bulk requests without an engine, such as a benchmark's discard
// endpoint; a blank line is an error.
func ParseBulkAction(raw []byte) (action, index, id string, err error) {
	item, perr := parseActionLine(raw, 1)
	if perr != nil {
		return "", "", "", perr
	}
	if item == nil {
		return "", "", "", errors.New("an empty action line")
	}
	return item.req.kind.String(), item.index, item.req.id, nil
}
