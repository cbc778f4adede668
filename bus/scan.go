package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The change scanner: DecodeChangesRaw's fast path. It validates the JSON
// as it reads it (valueEnd checks what json.Valid checks), accepts only
// what it reads exactly as encoding/json would (members of the expected
// types, names as written or differing in case only) and reports ok=false
// for anything else, invalid JSON included, which DecodeChangesRaw then
// hands to encoding/json. FuzzDecodeChangesRawMatches holds the two to the
// same result, FuzzValueEndIsJSONValid the validation to json.Valid's.

// scanChanges decodes the change message data, validating every byte of
// it as it goes: it reports ok=false for invalid JSON as for anything else
// it does not read exactly as encoding/json would.
func scanChanges(data []byte) ([]Change, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) {
		return nil, false
	}
	if data[i] == '{' {
		var w wireChange
		var last scanCache
		end, ok := scanWire(data[i:], &w, &last)
		if !ok || skipSpace(data, i+end) != len(data) || w.V > SchemaVersion {
			return nil, false
		}
		if w.Rows != nil {
			cs, err := w.expandRaw()
			return cs, err == nil
		}
		return []Change{w.change()}, true
	}
	if data[i] != '[' {
		return nil, false
	}
	var cs []Change
	var last scanCache
	end, ok := walkElements(data[i:], func(elem []byte) bool {
		var w wireChange
		if _, ok := scanWire(elem, &w, &last); !ok || w.V > SchemaVersion {
			return false
		}
		cs = append(cs, w.change())
		return true
	})
	return cs, ok && skipSpace(data, i+end) == len(data) && len(cs) > 0
}

// scanCache keeps the last commit time read: the changes of a message
// share their transaction's.
type scanCache struct {
	raw []byte
	t   time.Time
}

// scanWire reads the change object at the start of obj into w and
// returns the index just past it.
func scanWire(obj []byte, w *wireChange, last *scanCache) (int, bool) {
	if len(obj) == 0 || obj[0] != '{' {
		return 0, false
	}
	ok := true
	end, err := walkMembersAt(obj, 0, func(name []byte, at int) (int, error) {
		field := fieldName(name, wireNames)
		if field == "rows" && at < len(obj) && obj[at] == '[' && w.KeyColumns != nil {
			// The rows are read once: validated, cut and their keys
			// read in one pass (the encoder writes key_columns first).
			w.Rows, w.rowKeys = w.Rows[:0], w.rowKeys[:0]
			if w.Rows == nil {
				w.Rows = []json.RawMessage{}
			}
			n := len(w.KeyColumns)
			return walkElementsAt(obj, at, func(at int) int {
				w.rowKeys = append(w.rowKeys, make([]Column, n)...)
				end, err := rowKeyAt(obj, at, w.KeyColumns, w.rowKeys[len(w.rowKeys)-n:])
				if err != nil {
					// expandRaw, given the rows, says what is wrong.
					ok, w.rowKeys = false, nil
					return -1
				}
				w.Rows = append(w.Rows, obj[at:end])
				return end
			})
		}
		vend := valueEnd(obj, at)
		if vend < 0 {
			return 0, fmt.Errorf("malformed value at byte %d", at)
		}
		v := obj[at:vend]
		switch field {
		case "v":
			n, isInt := scanInt(v)
			ok = ok && isInt
			w.V = int(n)
		case "op":
			s, isStr := scanString(v)
			ok = ok && isStr
			w.Op = Op(s)
		case "schema":
			w.Schema, ok = scanStringAnd(ok, v)
		case "table":
			w.Table, ok = scanStringAnd(ok, v)
		case "key":
			w.Key, ok = scanKey(v), ok && scanKeyOK(v)
		case "row":
			if v[0] != '{' && !isNull(v) {
				ok = false
			}
			w.Row = v
		case "unchanged":
			w.Unchanged, ok = scanStrings(ok, v)
		case "from":
			w.From, ok = scanKey(v), ok && scanKeyOK(v)
		case "lsn":
			s, isStr := scanString(v)
			ok = ok && isStr && w.LSN.UnmarshalText([]byte(s)) == nil
		case "pos":
			n, isUint := scanUint(v)
			ok = ok && isUint
			w.Pos = n
		case "commit_time":
			if last.raw != nil && string(last.raw) == string(v) {
				w.CommitTime = last.t
				break
			}
			var t time.Time
			ok = ok && v[0] == '"' && t.UnmarshalJSON(v) == nil
			w.CommitTime, last.raw, last.t = t, v, t
		case "old":
			if v[0] != '{' && !isNull(v) {
				ok = false
			}
			w.Old = v
		case "xid":
			n, isUint := scanUint(v)
			ok = ok && isUint && n <= math.MaxUint32
			w.Xid = uint32(n)
		case "key_columns":
			w.KeyColumns, ok = scanStrings(ok, v)
			w.rowKeys = nil // read for other columns, if at all
		case "rows":
			if v[0] != '[' {
				ok = false
				break
			}
			w.Rows, w.rowKeys = []json.RawMessage{}, nil
			ok = eachElement(v, func(row []byte) bool { w.Rows = append(w.Rows, row); return true }) && ok
		}
		return vend, nil
	})
	return end, ok && err == nil
}

// wireNames are wireChange's member names.
var wireNames = []string{"v", "op", "schema", "table", "key", "row", "unchanged", "from", "lsn", "pos", "commit_time", "old", "xid", "key_columns", "rows"}

// fieldName is the one of names that name stands for, as encoding/json
// matches struct fields: exactly, else ignoring case; "" for none.
func fieldName(name []byte, names []string) string {
	for _, n := range names {
		if n == string(name) {
			return n
		}
	}
	for _, n := range names {
		if strings.EqualFold(n, string(name)) {
			return n
		}
	}
	return ""
}

func isNull(v []byte) bool { return string(v) == "null" }

// scanString reads a JSON string as encoding/json does.
func scanString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if !strings.ContainsRune(string(inner), '\\') && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

func scanStringAnd(ok bool, v []byte) (string, bool) {
	s, isStr := scanString(v)
	return s, ok && isStr
}

// scanStrings reads an array of strings, or null.
func scanStrings(ok bool, v []byte) ([]string, bool) {
	if isNull(v) {
		return nil, ok
	}
	if v[0] != '[' {
		return nil, false
	}
	out := []string{}
	good := eachElement(v, func(e []byte) bool {
		s, isStr := scanString(e)
		out = append(out, s)
		return isStr
	})
	return out, ok && good
}

func scanInt(v []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 0)
	return n, err == nil
}

func scanUint(v []byte) (uint64, bool) {
	n, err := strconv.ParseUint(string(v), 10, 64)
	return n, err == nil
}

// scanKeyOK reports whether v is null or an array of {"name","value"}
// objects whose names are strings.
func scanKeyOK(v []byte) bool {
	if isNull(v) {
		return true
	}
	if v[0] != '[' {
		return false
	}
	return eachElement(v, func(e []byte) bool {
		if e[0] != '{' {
			return false
		}
		good := true
		_ = eachMember(e, func(name, val []byte) error {
			if fieldName(name, columnNames) == "name" {
				_, isStr := scanString(val)
				good = good && isStr
			}
			return nil
		})
		return good
	})
}

var columnNames = []string{"name", "value"}

// scanKey reads a key scanKeyOK accepted.
func scanKey(v []byte) []Column {
	if isNull(v) || v[0] != '[' {
		return nil
	}
	key := []Column{}
	eachElement(v, func(e []byte) bool {
		var c Column
		_ = eachMember(e, func(name, val []byte) error {
			switch fieldName(name, columnNames) {
			case "name":
				c.Name, _ = scanString(val)
			case "value":
				c.Value = scanValue(val)
			}
			return nil
		})
		key = append(key, c)
		return true
	})
	return key
}

// scanValue reads a JSON value into what decodeJSON gives for it in an
// `any`: json.Number for numbers.
func scanValue(v []byte) any {
	switch {
	case isNull(v):
		return nil
	case string(v) == "true":
		return true
	case string(v) == "false":
		return false
	case v[0] == '"':
		if s, ok := scanString(v); ok {
			return s
		}
	case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
		return json.Number(v)
	}
	var out any
	_ = decodeJSON(v, &out)
	return out
}

// eachElement calls f with each element of the JSON array arr until f
// returns false, and reports whether every call returned true.
func eachElement(arr []byte, f func(elem []byte) bool) bool {
	_, ok := walkElements(arr, f)
	return ok
}

// walkElements is eachElement for a JSON array at the start of arr (after
// spaces), which may be followed by more; it returns the index just past
// the array. Every byte it passes is validated JSON.
func walkElements(arr []byte, f func(elem []byte) bool) (int, bool) {
	end, err := walkElementsAt(arr, skipSpace(arr, 0), func(at int) int {
		end := valueEnd(arr, at)
		if end < 0 || !f(arr[at:end]) {
			return -1
		}
		return end
	})
	return end, err == nil
}

// walkElementsAt walks the JSON array starting at b[i] and returns the
// index just past it. It validates the array's own bytes and leaves each
// element to f, which gets the index where the element starts and returns
// the index just past it, having validated what it passed, or -1 to stop.
func walkElementsAt(b []byte, i int, f func(at int) int) (int, error) {
	if i >= len(b) || b[i] != '[' {
		return 0, errNotArray
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		end := f(i)
		if end < 0 {
			return 0, errNotArray
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return 0, errNotArray
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return 0, errNotArray
		}
	}
}

// errNotArray is walkElementsAt's answer to anything but a valid array
// whose elements f accepted; its callers report ok=false, not the error.
var errNotArray = errors.New("malformed JSON array")
