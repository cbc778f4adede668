package bus

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	decode := func(data []byte) any {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("invalid JSON %q: %v", data, err)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

// The hand-written encoder writes what encoding/json writes for every kind
// of value the capture codec produces, and a few it does not.
func TestAppendChangeMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	commit := time.Date(2026, 11, 22, 7, 10, 25, 123456000, time.UTC)
	cases := map[string]*Change{
		"empty":     {},
		"watermark": NewWatermark(0x16B3748),
		"row": {V: 1, Op: OpUpdate, Schema: "public", Table: "users", LSN: 0x1_0000_0010, Pos: 7, CommitTime: commit,
			Key: []Column{{Name: "id", Value: int64(42)}},
			Row: map[string]any{
				"id": int64(42), "name": "Zoë \"quoted\" \\ back\nline\ttab\x01<&>", "ok": true, "gone": nil,
				"price": json.Number("12.50"), "big": "123456789012345678901234567890.1", "ratio": 0.1,
				"tiny": 1e-7, "huge": 1e21, "neg": -2.5e-10, "int": 3, "uint": uint64(math.MaxUint64),
				"tags": []any{"a", nil, []any{int64(1), int64(2)}}, "doc": map[string]any{"z": 1, "a": []any{}},
				"at": "2026-11-22T07:10:25.123456Z", "sep": "a\u2028b\u2029c", "bad": "\xff\xfe ok",
				"when": commit, "raw": json.RawMessage(`{"x": [1, 2]}`), "empty_number": json.Number(""),
			},
			Unchanged: []string{"bio", "avatar"}},
		"moved": {V: 2, Op: OpInsert, Schema: "public", Table: "notes", LSN: 0x20, Pos: 1,
			Key: []Column{{Name: "id", Value: int64(11)}}, Row: map[string]any{"id": int64(11)},
			Unchanged: []string{"body"}, From: []Column{{Name: "id", Value: int64(1)}}},
		"delete": {V: 1, Op: OpDelete, Schema: "s", Table: "t.t", Key: []Column{{Name: "a", Value: "x"}, {Name: "b", Value: json.Number("1")}}},
		"old values and xid": {V: 2, Op: OpUpdate, Schema: "public", Table: "lines", Key: []Column{{Name: "id", Value: int64(1)}},
			Row: map[string]any{"id": int64(1), "order_id": int64(20)}, Old: map[string]any{"id": int64(1), "order_id": int64(10)},
			Xid: math.MaxUint32},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendChange(nil, ev)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, got, want) {
				t.Fatalf("encoded\n%s\nwant (encoding/json)\n%s", got, want)
			}
		})
	}
}

func TestAppendChangeRefusesWhatEncodingJSONRefuses(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]any{
		"NaN": math.NaN(), "Inf": math.Inf(1), "bad number": json.Number("1.2.3"), "func": func() {},
	} {
		ev := &Change{Row: map[string]any{"x": v}}
		if _, err := json.Marshal(ev); err == nil {
			t.Fatalf("%s: encoding/json accepts it", name)
		}
		if _, err := appendChange(nil, ev); err == nil {
			t.Fatalf("%s: encoded without an error", name)
		}
	}
}

func FuzzAppendChange(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,"x",null,true,{"b":[2.5e-9]}]`, `"\u2028\ud800"`, `12345678901234567890123`, `-0.0`} {
		f.Add(s, "name\x00", uint64(1))
	}
	f.Fuzz(func(t *testing.T, value, text string, pos uint64) {
		dec := json.NewDecoder(bytes.NewReader([]byte(value)))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			v = value
		}
		ev := &Change{V: 1, Op: OpInsert, Schema: text, Table: text, Pos: pos, LSN: LSN(pos),
			Key: []Column{{Name: text, Value: v}}, Row: map[string]any{text: v, "s": text}}
		want, werr := json.Marshal(ev)
		got, gerr := appendChange(nil, ev)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("encoding/json error %v, ours %v", werr, gerr)
		}
		if werr == nil && !sameJSON(t, got, want) {
			t.Fatalf("encoded\n%s\nwant\n%s", got, want)
		}
	})
}

// TestMessagesKeepAKeyChangeTogether: the insert of a row whose key changed
// (Change.From) travels in the same message as the delete before it, where
// the count or byte limit would have cut between them.
func TestMessagesKeepAKeyChangeTogether(t *testing.T) {
	t.Parallel()
	change := func(pos int, op Op, from bool, pad int) *Change {
		c := &Change{Op: op, Schema: "public", Table: "t", LSN: 0x30, Pos: uint64(pos),
			Key: []Column{{Name: "id", Value: int64(pos)}}}
		if op != OpDelete {
			c.Row = map[string]any{"id": int64(pos), "pad": strings.Repeat("x", pad)}
		}
		if from {
			c.Unchanged, c.From = []string{"body"}, []Column{{Name: "id", Value: int64(pos - 1)}}
		}
		return c
	}
	for _, tc := range []struct {
		name string
		evs  []*Change
	}{
		{"count limit", func() []*Change {
			var evs []*Change
			for i := range MaxBatchEvents - 1 {
				evs = append(evs, change(i, OpDelete, false, 0)) // small: under the byte limit
			}
			return append(evs, change(MaxBatchEvents-1, OpDelete, false, 0), change(MaxBatchEvents, OpInsert, true, 0))
		}()},
		{"byte limit", func() []*Change {
			var evs []*Change
			for i := range 6 {
				evs = append(evs, change(i, OpUpdate, false, 10_000))
			}
			return append(evs, change(6, OpDelete, false, 0), change(7, OpInsert, true, 10_000))
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sizes []int
			for rest := tc.evs; len(rest) > 0; {
				m, err := nextMessage(rest)
				if err != nil {
					t.Fatal(err)
				}
				if m.Count < len(rest) && len(rest[m.Count].From) > 0 {
					t.Fatalf("a message of %d changes ends between a key change's delete and insert (messages so far %v)", m.Count, sizes)
				}
				sizes = append(sizes, m.Count)
				rest = rest[m.Count:]
			}
		})
	}
}

// TestOldValuesAndXidTravel: a change's old values and transaction id
// come back from its message, through the scanner and through
// encoding/json alike.
func TestOldValuesAndXidTravel(t *testing.T) {
	t.Parallel()
	ev := &Change{V: SchemaVersion, Op: OpDelete, Schema: "public", Table: "lines", Key: []Column{{Name: "id", Value: int64(1)}},
		Old: map[string]any{"id": int64(1), "order_id": int64(10)}, LSN: 0x10, Pos: 1, Xid: 4242}
	data, _, err := EncodeChanges([]*Change{ev, ev}, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	fast, ok := scanChanges(data)
	if !ok {
		t.Fatalf("the scanner refused %s", data)
	}
	slow, err := decodeChangesRawSlow(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range [][]Change{fast, slow} {
		for _, c := range cs {
			if err := c.DecodeOld(); err != nil {
				t.Fatal(err)
			}
			if c.Xid != 4242 || c.Old["order_id"] != json.Number("10") {
				t.Fatalf("decoded xid %d, old %v from %s", c.Xid, c.Old, data)
			}
		}
	}
}
