package bus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Decoding: every event a stage reads goes through this file. Numbers stay
// exact (json.Number) and every event's schema version is checked, so a
// reader refuses what a newer writer produced instead of guessing at it.

// Decode unmarshals an event, keeping numbers exact, and checks its schema version.
func Decode[T Change | Doc | DeadLetter](data []byte, v *T) error {
	if err := decodeJSON(data, v); err != nil {
		return err
	}
	var ver int
	switch x := any(v).(type) {
	case *Change:
		ver = x.V
	case *Doc:
		ver = x.V
	case *DeadLetter:
		ver = x.V
	}
	if ver > SchemaVersion {
		return fmt.Errorf("decode event (schema version %d): %w", ver, ErrNewerSchema)
	}
	return nil
}

func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	return nil
}

// DecodeChanges decodes a change message: one change, a batch of them, or a
// read batch.
// Numbers stay exact and every change's schema version is checked.
func DecodeChanges(data []byte) ([]Change, error) {
	cs, err := DecodeChangesRaw(data)
	if err != nil {
		return nil, err
	}
	for i := range cs {
		if err := cs[i].DecodeRow(); err != nil {
			return nil, err
		}
		cs[i].RowJSON = nil
	}
	return cs, nil
}

// wireChange is a change message's element as it travels, its row left
// encoded; with KeyColumns and Rows it is a read batch (see ReadBatch).
type wireChange struct {
	V          int               `json:"v"`
	Op         Op                `json:"op"`
	Schema     string            `json:"schema"`
	Table      string            `json:"table"`
	Key        []Column          `json:"key,omitempty"`
	Row        json.RawMessage   `json:"row,omitempty"`
	Unchanged  []string          `json:"unchanged,omitempty"`
	From       []Column          `json:"from,omitempty"`
	LSN        LSN               `json:"lsn"`
	Pos        uint64            `json:"pos"`
	CommitTime time.Time         `json:"commit_time,omitzero"`
	Old        json.RawMessage   `json:"old,omitempty"`
	Xid        uint32            `json:"xid,omitempty"`
	KeyColumns []string          `json:"key_columns,omitempty"`
	Rows       []json.RawMessage `json:"rows,omitempty"`
	// rowKeys, when the scanner read them with the rows, holds each row's
	// key columns in turn: len(KeyColumns) per row.
	rowKeys []Column
}

func (w *wireChange) change() Change {
	c := Change{V: w.V, Op: w.Op, Schema: w.Schema, Table: w.Table, Key: w.Key, Unchanged: w.Unchanged,
		From: w.From, LSN: w.LSN, Pos: w.Pos, CommitTime: w.CommitTime, Xid: w.Xid}
	if len(w.Row) > 0 && !bytes.Equal(w.Row, []byte("null")) {
		c.RowJSON = w.Row
	}
	if len(w.Old) > 0 && !bytes.Equal(w.Old, []byte("null")) {
		c.OldJSON = w.Old
	}
	return c
}

// DecodeChangesRaw decodes a change message like DecodeChanges, but leaves
// each row as it was encoded, in RowJSON, with Row nil: a stage that passes
// rows on as they are (a table without a script) never builds them as
// values. DecodeRow decodes one when it is needed.
//
// Messages as capture writes them are read by a scanner that validates
// them as it goes and builds nothing but the envelope's fields; anything
// else (unknown forms, values of unexpected types, invalid JSON) goes
// through encoding/json, which gives the same changes, or the same error.
func DecodeChangesRaw(data []byte) ([]Change, error) {
	if cs, ok := scanChanges(data); ok {
		return cs, nil
	}
	return decodeChangesRawSlow(data)
}

// decodeChangesRawSlow is DecodeChangesRaw through encoding/json.
func decodeChangesRawSlow(data []byte) ([]Change, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		var one wireChange
		if err := decodeJSON(data, &one); err != nil {
			return nil, err
		}
		if one.V > SchemaVersion {
			return nil, fmt.Errorf("decode event (schema version %d): %w", one.V, ErrNewerSchema)
		}
		if one.Rows != nil {
			return one.expandRaw()
		}
		return []Change{one.change()}, nil
	}
	var ws []wireChange
	if err := decodeJSON(data, &ws); err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("decode event: empty change batch")
	}
	cs := make([]Change, len(ws))
	for i := range ws {
		if ws[i].V > SchemaVersion {
			return nil, fmt.Errorf("decode event (schema version %d): %w", ws[i].V, ErrNewerSchema)
		}
		cs[i] = ws[i].change()
	}
	return cs, nil
}

// expandRaw turns a read or insert batch into its changes, the rows left
// encoded:
// each row's key is read from its top-level members without decoding the
// rest.
func (w *wireChange) expandRaw() ([]Change, error) {
	if w.Op != OpRead && w.Op != OpInsert || len(w.Rows) == 0 {
		return nil, fmt.Errorf("decode event: a batch of %d %q rows", len(w.Rows), w.Op)
	}
	cs := make([]Change, len(w.Rows))
	keys, read := w.rowKeys, len(w.rowKeys) == len(w.Rows)*len(w.KeyColumns)
	if !read {
		keys = make([]Column, len(w.Rows)*len(w.KeyColumns))
	}
	for i, row := range w.Rows {
		key := keys[i*len(w.KeyColumns) : (i+1)*len(w.KeyColumns) : (i+1)*len(w.KeyColumns)]
		if !read {
			if err := rowKey(row, w.KeyColumns, key); err != nil {
				return nil, fmt.Errorf("decode event: row %d of a read batch of %s.%s: %w", i, w.Schema, w.Table, err)
			}
		}
		if len(key) == 0 {
			key = nil
		}
		cs[i] = Change{V: w.V, Op: w.Op, Schema: w.Schema, Table: w.Table, Key: key, RowJSON: row,
			LSN: w.LSN, Pos: w.Pos + uint64(i), CommitTime: w.CommitTime, Xid: w.Xid}
	}
	return cs, nil
}

// DecodeRow fills c.Row from c.RowJSON when only the latter is set (see
// DecodeChangesRaw), keeping numbers exact.
func (c *Change) DecodeRow() error {
	if c.Row != nil || len(c.RowJSON) == 0 {
		return nil
	}
	var row map[string]any
	if err := decodeJSON(c.RowJSON, &row); err != nil {
		return fmt.Errorf("decode row of %s.%s: %w", c.Schema, c.Table, err)
	}
	c.Row = row
	return nil
}

// DecodeOld decodes OldJSON into Old, if it is still encoded.
func (c *Change) DecodeOld() error {
	if c.Old != nil || len(c.OldJSON) == 0 {
		return nil
	}
	var old map[string]any
	if err := decodeJSON(c.OldJSON, &old); err != nil {
		return fmt.Errorf("decode old values of %s.%s: %w", c.Schema, c.Table, err)
	}
	c.Old = old
	return nil
}

// rowKey sets key[i] to the value of row's top-level member names[i]. row
// must be a JSON object; as when it is decoded whole, a name given twice
// takes its last value.
func rowKey(row []byte, names []string, key []Column) error {
	end, err := rowKeyAt(row, skipSpace(row, 0), names, key)
	if err == nil && skipSpace(row, end) != len(row) {
		err = fmt.Errorf("not a JSON object")
	}
	return err
}

// rowKeyAt is rowKey for the object starting at b[i], validating it; it
// returns the index just past the object.
func rowKeyAt(b []byte, i int, names []string, key []Column) (int, error) {
	if len(names) > 64 {
		return 0, fmt.Errorf("%d key columns: at most 64 are supported", len(names))
	}
	var seen uint64
	end, err := walkMembersAt(b, i, func(name []byte, at int) (int, error) {
		end := valueEnd(b, at)
		if end < 0 {
			return 0, fmt.Errorf("malformed value at byte %d", at)
		}
		for k, n := range names {
			if n != string(name) {
				continue
			}
			key[k] = Column{Name: n, Value: scanValue(b[at:end])}
			seen |= 1 << k
		}
		return end, nil
	})
	if err != nil {
		return 0, err
	}
	for k, n := range names {
		if seen&(1<<k) == 0 {
			return 0, fmt.Errorf("lacks key column %q", n)
		}
	}
	return end, nil
}

// eachMember calls f with the name (unquoted) and the raw value of each
// top-level member of the JSON object obj, in order.
func eachMember(obj []byte, f func(name, value []byte) error) error {
	_, err := walkMembers(obj, f)
	return err
}

// walkMembers is eachMember for a JSON object at the start of obj (after
// spaces), which may be followed by more; it returns the index just past
// the object. Every byte it passes is validated JSON.
func walkMembers(obj []byte, f func(name, value []byte) error) (int, error) {
	return walkMembersAt(obj, skipSpace(obj, 0), func(name []byte, at int) (int, error) {
		end := valueEnd(obj, at)
		if end < 0 {
			return 0, fmt.Errorf("malformed value at byte %d", at)
		}
		return end, f(name, obj[at:end])
	})
}

// walkMembersAt walks the JSON object starting at b[i] and returns the
// index just past it. It validates the object's own bytes and leaves each
// member's value to f, which gets the index where the value starts and
// returns the index just past it, having validated what it passed: a
// caller that reads a value's inside reads it once.
func walkMembersAt(b []byte, i int, f func(name []byte, at int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return 0, fmt.Errorf("not a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, fmt.Errorf("malformed JSON object at byte %d", i)
		}
		end, escaped := stringEnd(b, i)
		if end < 0 {
			return 0, fmt.Errorf("unterminated string at byte %d", i)
		}
		name := b[i+1 : end-1]
		if escaped {
			var s string
			if err := json.Unmarshal(b[i:end], &s); err != nil {
				return 0, fmt.Errorf("member name at byte %d: %w", i, err)
			}
			name = []byte(s)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, fmt.Errorf("malformed JSON object at byte %d", i)
		}
		vend, err := f(name, skipSpace(b, i+1))
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return 0, fmt.Errorf("unterminated JSON object")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, fmt.Errorf("malformed JSON object at byte %d", i)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at b[i], or
// -1 when no valid JSON value starts there. It checks what json.Valid
// checks (grammar, escapes, control characters in strings, nesting depth),
// so that a scan made of it validates every byte it passes: the change
// scanner reads a message once instead of validating it first.
func valueEnd(b []byte, i int) int { return validEnd(b, i, 0) }

// maxNesting is encoding/json's limit on nested objects and arrays.
const maxNesting = 10000

func validEnd(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		end, _ := stringEnd(b, i)
		return end
	case c == '{' || c == '[':
		if depth >= maxNesting {
			return -1
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		j := skipSpace(b, i+1)
		if j < len(b) && b[j] == closing {
			return j + 1
		}
		for {
			if c == '{' {
				if j >= len(b) || b[j] != '"' {
					return -1
				}
				if j, _ = stringEnd(b, j); j < 0 {
					return -1
				}
				if j = skipSpace(b, j); j >= len(b) || b[j] != ':' {
					return -1
				}
				j = skipSpace(b, j+1)
			}
			if j = validEnd(b, j, depth+1); j < 0 {
				return -1
			}
			if j = skipSpace(b, j); j >= len(b) {
				return -1
			}
			switch b[j] {
			case ',':
				j = skipSpace(b, j+1)
			case closing:
				return j + 1
			default:
				return -1
			}
		}
	case c == '-' || '0' <= c && c <= '9':
		return numberEnd(b, i)
	case c == 't':
		return literalEnd(b, i, "true")
	case c == 'f':
		return literalEnd(b, i, "false")
	case c == 'n':
		return literalEnd(b, i, "null")
	}
	return -1
}

// stringEnd returns the index just past the valid JSON string starting at
// b[i] (a quote), and whether it holds an escape; -1 when it does not end
// or is not valid (a bad escape, a control character).
func stringEnd(b []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, escaped
		case c == '\\':
			escaped = true
			j++
			if j >= len(b) {
				return -1, escaped
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return -1, escaped
				}
				for _, h := range b[j+1 : j+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1, escaped
					}
				}
				j += 4
			default:
				return -1, escaped
			}
		case c < 0x20:
			return -1, escaped
		}
	}
	return -1, escaped
}

// numberEnd returns the index just past the JSON number starting at b[i],
// or -1: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(b []byte, i int) int {
	digits := func(j int) int {
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(i + 1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func literalEnd(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}
