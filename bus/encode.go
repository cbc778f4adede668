package bus

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Encoding: every event a stage writes goes through this file, and every
// event it reads through decode.go.

// appendChange appends the JSON encoding of ev: the same document
// json.Marshal writes for a Change (same fields, names and omissions),
// without reflection. Capture encodes every row it reads, so this is on the
// hot path of snapshots and streaming; values of types the capture codec
// never produces fall back to encoding/json.
func appendChange(b []byte, ev *Change) ([]byte, error) {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(ev.V), 10)
	b = append(b, `,"op":`...)
	b = appendString(b, string(ev.Op))
	b = append(b, `,"schema":`...)
	b = appendString(b, ev.Schema)
	b = append(b, `,"table":`...)
	b = appendString(b, ev.Table)
	var err error
	if len(ev.Key) > 0 {
		if b, err = appendColumns(append(b, `,"key":`...), ev.Key); err != nil {
			return nil, err
		}
	}
	if len(ev.RowJSON) > 0 {
		b = append(b, `,"row":`...)
		b = append(b, ev.RowJSON...)
	} else if len(ev.Row) > 0 {
		b = append(b, `,"row":`...)
		if b, err = appendObject(b, ev.Row, 0); err != nil {
			return nil, err
		}
	}
	if len(ev.Unchanged) > 0 {
		b = append(b, `,"unchanged":[`...)
		for i, s := range ev.Unchanged {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	if len(ev.From) > 0 {
		if b, err = appendColumns(append(b, `,"from":`...), ev.From); err != nil {
			return nil, err
		}
	}
	if len(ev.OldJSON) > 0 {
		b = append(b, `,"old":`...)
		b = append(b, ev.OldJSON...)
	} else if len(ev.Old) > 0 {
		b = append(b, `,"old":`...)
		if b, err = appendObject(b, ev.Old, 0); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"lsn":"`...)
	b = ev.LSN.appendTo(b)
	b = append(b, `","pos":`...)
	b = strconv.AppendUint(b, ev.Pos, 10)
	if b, err = appendCommit(b, ev.CommitTime, ev.Xid); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendCommit appends the commit_time and xid members, each when set.
func appendCommit(b []byte, at time.Time, xid uint32) ([]byte, error) {
	if !at.IsZero() {
		ts, err := at.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b = append(b, `,"commit_time":`...)
		b = append(b, ts...)
	}
	if xid != 0 {
		b = append(b, `,"xid":`...)
		b = strconv.AppendUint(b, uint64(xid), 10)
	}
	return b, nil
}

// appendBatchHead appends a read or insert batch's members up to
// `"pos":` (see ReadBatch).
func appendBatchHead(b []byte, op Op, schema, table string, keyNames []string, lsn LSN) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, SchemaVersion, 10)
	b = append(b, `,"op":`...)
	b = appendString(b, string(op))
	b = append(b, `,"schema":`...)
	b = appendString(b, schema)
	b = append(b, `,"table":`...)
	b = appendString(b, table)
	b = append(b, `,"key_columns":[`...)
	for i, name := range keyNames {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, name)
	}
	b = append(b, `],"lsn":"`...)
	b = lsn.appendTo(b)
	return append(b, `","pos":`...)
}

// appendColumns appends cols as a JSON array of {"name","value"} objects.
func appendColumns(b []byte, cols []Column) ([]byte, error) {
	b = append(b, '[')
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, c.Name)
		b = append(b, `,"value":`...)
		var err error
		if b, err = appendValue(b, c.Value, 0); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// AppendJSONValue appends v as JSON, as encoding/json would write it, for
// the JSON-ready values the capture codec produces (others are handed to
// encoding/json).
func AppendJSONValue(b []byte, v any) ([]byte, error) { return appendValue(b, v, 0) }

// AppendJSONString appends s as a JSON string.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// maxDepth bounds nesting the way encoding/json does, so a cyclic value is
// an error rather than a stack overflow.
const maxDepth = 1000

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, &json.UnsupportedValueError{Str: "nesting too deep"}
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case float64:
		return appendFloat(b, x)
	case json.Number:
		if x == "" {
			return append(b, '0'), nil
		}
		if !validNumber(string(x)) {
			break // encoding/json reports the error
		}
		return append(b, x...), nil
	case []any:
		b = append(b, '[')
		var err error
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		return appendObject(b, x, depth+1)
	case json.RawMessage:
		if x == nil {
			return append(b, "null"...), nil
		}
	case time.Time:
		ts, err := x.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return append(b, ts...), nil
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

// appendObject writes m with its keys sorted, as encoding/json does, so that
// equal rows encode to equal bytes.
func appendObject(b []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, m[k], depth); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendFloat formats f as encoding/json does (ES6 number formatting).
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD and
// U+2028/U+2029 are escaped, as encoding/json does; <, > and & are kept
// as they are (they only matter inside HTML).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}

// Batching: a change message holds either one change (a JSON object) or
// several consecutive changes of one table with one LSN (a JSON array, in
// order). Grouping the rows of a transaction or a snapshot chunk this way
// is what lets capture keep up with PostgreSQL: the bus's cost is mostly per
// message, not per byte. Readers decode both forms with DecodeChanges.
const (
	// MaxBatchBytes bounds an encoded batch message. A change larger than
	// this travels alone. It stays far under NATS's default max_payload
	// (1 MiB), and keeps what a reader fetches at once small: readers fetch
	// by message count.
	MaxBatchBytes = 64 << 10
	// MaxBatchEvents bounds the changes in one message.
	MaxBatchEvents = 512
)

// sameBatch is the length of the longest prefix of evs (at most
// MaxBatchEvents) that may share a message: one table, one LSN, no
// watermark.
func sameBatch(evs []*Change) int {
	first := evs[0]
	if first.Op == OpWatermark {
		return 1
	}
	n := 1
	for n < len(evs) && n < MaxBatchEvents {
		e := evs[n]
		if e.Op == OpWatermark || e.LSN != first.LSN || e.Table != first.Table || e.Schema != first.Schema {
			break
		}
		n++
	}
	return n
}

// EncodeChanges encodes the longest prefix of evs that fits in maxBytes (at
// least one change) and says how many it took. One change is encoded as an
// object, several as an array. evs must share one subject.
func EncodeChanges(evs []*Change, maxBytes int) (data []byte, used int, err error) {
	if len(evs) == 0 {
		return nil, 0, fmt.Errorf("encode changes: none given")
	}
	if len(evs) == 1 {
		b, err := encodeChange(nil, evs[0])
		return b, 1, err
	}
	if n := insertRun(evs); n > 1 {
		return encodeInsertBatch(evs[:n], maxBytes)
	}
	buf := []byte{'['}
	for _, ev := range evs {
		if used == 1 {
			// Rows of one table are alike: size the buffer from the first.
			buf = slices.Grow(buf, max(0, min(maxBytes, len(buf)*len(evs)+len(evs))-len(buf)))
		}
		mark := len(buf)
		if used > 0 {
			buf = append(buf, ',')
		}
		if buf, err = encodeChange(buf, ev); err != nil {
			return nil, 0, err
		}
		if used > 0 && len(buf)+1 > maxBytes {
			buf = buf[:mark]
			break
		}
		used++
	}
	if used == 1 {
		return buf[1:], 1, nil
	}
	return append(buf, ']'), used, nil
}

// insertRun is how many changes from the start of evs may travel as one
// insert batch: consecutive inserts of one transaction (same LSN, commit
// time and xid, positions one apart) whose rows hold their keys, with the
// same key columns, and nothing an insert batch cannot say (unchanged
// columns, a key change's old key, old values). 0 or 1 means none.
func insertRun(evs []*Change) int {
	first := evs[0]
	if !batchableInsert(first) {
		return 0
	}
	n := 1
	for n < len(evs) {
		e := evs[n]
		if !batchableInsert(e) || e.Pos != first.Pos+uint64(n) || e.LSN != first.LSN || e.Xid != first.Xid ||
			e.CommitTime != first.CommitTime || e.Table != first.Table || e.Schema != first.Schema ||
			!sameKeyNames(e.Key, first.Key) {
			break
		}
		n++
	}
	return n
}

// batchableInsert reports whether e can be an insert batch's row: an
// insert whose row holds each key column with the key's value, so that a
// reader recovers the key from the row. A row as values is checked; an
// encoded row (RowJSON) needs its producer's word (KeyInRow).
func batchableInsert(e *Change) bool {
	if e.Op != OpInsert || len(e.Unchanged) > 0 || len(e.From) > 0 || len(e.Old) > 0 || len(e.OldJSON) > 0 {
		return false
	}
	if len(e.RowJSON) > 0 {
		return e.KeyInRow
	}
	if e.Row == nil {
		return false
	}
	for _, k := range e.Key {
		v, ok := e.Row[k.Name]
		if !ok || !sameScalar(v, k.Value) {
			return false
		}
	}
	return true
}

// sameScalar reports whether a and b are the same scalar of one type; any
// other value (a slice, a map, a type not listed) is never the same.
func sameScalar(a, b any) bool {
	switch a.(type) {
	case string, json.Number, int64, int, int32, uint64, bool:
		return a == b // comparable: false for another type, never a panic
	}
	return false
}

func sameKeyNames(a, b []Column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

// encodeInsertBatch encodes the longest prefix of evs (an insertRun) that
// fits in maxBytes, at least two, as an insert batch: the read batch's form
// (see ReadBatch) with op "insert" and the transaction's commit_time and
// xid, which states once what the rows share. It halves the bytes of a
// large INSERT on the bus, and what each stage spends on them.
func encodeInsertBatch(evs []*Change, maxBytes int) (data []byte, used int, err error) {
	first := evs[0]
	names := make([]string, len(first.Key))
	for i, k := range first.Key {
		names[i] = k.Name
	}
	b := appendBatchHead(make([]byte, 0, min(maxBytes, 256+len(evs)*128)), OpInsert, first.Schema, first.Table, names, first.LSN)
	b = strconv.AppendUint(b, first.Pos, 10)
	if b, err = appendCommit(b, first.CommitTime, first.Xid); err != nil {
		return nil, 0, err
	}
	b = append(b, `,"rows":[`...)
	for _, ev := range evs {
		mark := len(b)
		if used > 0 {
			b = append(b, ',')
		}
		if len(ev.RowJSON) > 0 {
			b = append(b, ev.RowJSON...)
		} else if b, err = appendObject(b, ev.Row, 0); err != nil {
			return nil, 0, fmt.Errorf("encode change %s.%s: %w", ev.Schema, ev.Table, err)
		}
		if used > 0 && len(b)+len("]}") > maxBytes {
			b = b[:mark]
			break
		}
		used++
	}
	if used == 1 {
		// The second row did not fit: the first travels alone, as itself.
		b, err := encodeChange(nil, first)
		return b, 1, err
	}
	for _, ev := range evs[:used] {
		ev.V = SchemaVersion
	}
	return append(b, "]}"...), used, nil
}

// encodeChange appends ev, stamped with this build's schema version, to b.
func encodeChange(b []byte, ev *Change) ([]byte, error) {
	ev.V = SchemaVersion
	out, err := appendChange(b, ev)
	if err != nil {
		return nil, fmt.Errorf("encode change %s.%s: %w", ev.Schema, ev.Table, err)
	}
	return out, nil
}

// nextMessage encodes the message that starts evs: as many of them as may
// share it (see sameBatch and EncodeChanges), Count saying how many.
//
// A message never ends between a key change's delete and the insert that
// follows it (Change.From): the sink needs both in one batch to carry the
// unchanged values over (see sink's fillUnchanged).
func nextMessage(evs []*Change) (Message, error) {
	n := sameBatch(evs)
	if n > 1 && n < len(evs) && len(evs[n].From) > 0 {
		n--
	}
	data, used, err := EncodeChanges(evs[:n], MaxBatchBytes)
	if err != nil {
		return Message{}, err
	}
	if used > 1 && used < n && len(evs[used].From) > 0 {
		if data, used, err = EncodeChanges(evs[:used-1], MaxBatchBytes); err != nil {
			return Message{}, err
		}
	}
	return Message{Subject: ChangeSubject(evs[0].Schema, evs[0].Table), ID: BatchMsgID(evs[:used]), Data: data, Count: used}, nil
}

// BatchMsgID is the message id of a message holding evs: the first change's
// id, plus how many follow it. A message republished after a crash with the
// same changes gets the same id, so JetStream drops it as a duplicate.
func BatchMsgID(evs []*Change) string { return batchID(evs[0], len(evs)) }

// batchID is the id of a message of n changes, the first being first.
func batchID(first *Change, n int) string {
	id := first.MsgID()
	if n > 1 {
		id += "+" + strconv.Itoa(n-1)
	}
	return id
}

// PartitionedMessages encodes evs — one change message's worth as sameBatch
// cuts it: a watermark, or consecutive changes of one table and one LSN —
// into the messages of partitions partitions. Each change goes to the
// partition of its key (PartitionOf); a key change's delete goes with the
// insert that follows it, to the new key's partition, so that the two stay
// in one message; truncates and watermarks go to every partition, in their
// place. Message ids carry "@k", the partition, so that the copies of a
// truncate or watermark are distinct messages.
//
// The old key's delete may land in another partition than the old key's
// earlier writes; its version (the commit LSN, above theirs) makes it win
// whatever the order.
func PartitionedMessages(evs []*Change, partitions int) ([]Message, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	part := make([]int, len(evs))
	everywhere := func(c *Change) bool { return c.Op == OpWatermark || c.Op == OpTruncate }
	for i := len(evs) - 1; i >= 0; i-- {
		c := evs[i]
		switch {
		case everywhere(c):
			part[i] = -1
		case c.Op == OpDelete && i+1 < len(evs) && len(evs[i+1].From) > 0:
			part[i] = part[i+1]
		default:
			part[i] = PartitionOf(c.Key, partitions)
		}
	}
	var out []Message
	sub := make([]*Change, 0, len(evs))
	for k := 0; k < partitions; k++ {
		sub = sub[:0]
		for i, c := range evs {
			if part[i] == k || part[i] == -1 {
				sub = append(sub, c)
			}
		}
		for len(sub) > 0 {
			data, used, err := EncodeChanges(sub, MaxBatchBytes)
			if err != nil {
				return nil, err
			}
			if used > 1 && used < len(sub) && len(sub[used].From) > 0 {
				if data, used, err = EncodeChanges(sub[:used-1], MaxBatchBytes); err != nil {
					return nil, err
				}
			}
			out = append(out, Message{Subject: PartitionChangeSubject(sub[0].Schema, sub[0].Table, k, partitions),
				ID: BatchMsgID(sub[:used]) + "@" + strconv.Itoa(k), Data: data, Count: used})
			sub = sub[used:]
		}
	}
	return out, nil
}
