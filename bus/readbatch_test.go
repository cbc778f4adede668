package bus

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// readsFrom builds the read changes that sizes describe: one per byte, the
// row holding its key columns and a text of that many (times 300) bytes, so
// that runs cross both MaxBatchBytes and MaxBatchEvents. keyNames are the
// key columns; the values (and the table's name) are text to escape when
// text is set, integers otherwise.
func readsFrom(t testing.TB, sizes []byte, keyNames []string, text bool) []*Change {
	evs := make([]*Change, len(sizes))
	table := "t"
	if text {
		table = "t\"ä"
	}
	for i, sz := range sizes {
		key, row := keyedRow(i, sz, keyNames, text)
		rowJSON, err := AppendJSONValue(nil, row)
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = &Change{Op: OpRead, Schema: "public", Table: table, Key: key, RowJSON: rowJSON, LSN: 0x16B3748, Pos: uint64(i + 3)}
	}
	return evs
}

// keyedRow is the i-th row of readsFrom and insertsFrom and its key: the
// key columns and a text of size (times 300) bytes.
func keyedRow(i int, size byte, keyNames []string, text bool) ([]Column, map[string]any) {
	key := make([]Column, len(keyNames))
	row := map[string]any{"p": strings.Repeat("x", int(size)*300)}
	for k, name := range keyNames {
		var v any = int64(i*7 + k)
		if text {
			v = strings.Repeat("k\"é", k+1) + string(rune('a'+i%26))
		}
		key[k] = Column{Name: name, Value: v}
		row[name] = v
	}
	return key, row
}

// batchMessages is what a ReadBatch makes of evs.
func batchMessages(evs []*Change, keyNames []string) []Message {
	b := NewReadBatch(evs[0].Schema, evs[0].Table, keyNames, evs[0].LSN)
	var out []Message
	for _, ev := range evs {
		if m, full := b.Add(ev.Pos, ev.RowJSON, func() []Column { return ev.Key }); full {
			out = append(out, m)
		}
	}
	if m, ok := b.Take(); ok {
		out = append(out, m)
	}
	return out
}

// decodeAll decodes change messages (of either form) into their changes.
func decodeAll(t testing.TB, data ...[]byte) []Change {
	var all []Change
	for _, d := range data {
		cs, err := DecodeChanges(d)
		if err != nil {
			t.Fatalf("decode %.200s: %v", d, err)
		}
		all = append(all, cs...)
	}
	return all
}

// checkReadBatch checks that a ReadBatch carries evs as Publish would
// (the same changes once decoded), in messages as full as the limits allow,
// named like Publish names a message of the same changes.
func checkReadBatch(t testing.TB, evs []*Change, keyNames []string) {
	msgs := batchMessages(evs, keyNames)
	var want [][]byte
	for rest := evs; len(rest) > 0; {
		m, err := nextMessage(rest)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m.Data)
		rest = rest[m.Count:]
	}
	var got [][]byte
	i := 0
	for n, m := range msgs {
		got = append(got, m.Data)
		part := evs[i : i+m.Count]
		if m.Subject != ChangeSubject(evs[0].Schema, evs[0].Table) || m.ID != BatchMsgID(part) {
			t.Fatalf("message %d: subject %s id %s, want %s %s", n, m.Subject, m.ID, ChangeSubject(evs[0].Schema, evs[0].Table), BatchMsgID(part))
		}
		if m.Count > MaxBatchEvents || m.Count > 1 && len(m.Data) > MaxBatchBytes {
			t.Fatalf("message %d: %d rows in %d bytes, over the limits", n, m.Count, len(m.Data))
		}
		if next := i + m.Count; next < len(evs) && m.Count < MaxBatchEvents && len(m.Data)+1+len(evs[next].RowJSON) <= MaxBatchBytes {
			t.Fatalf("message %d: cut after %d rows (%d bytes) though the next row fit", n, m.Count, len(m.Data))
		}
		i += m.Count
	}
	if i != len(evs) {
		t.Fatalf("messages hold %d rows, want %d", i, len(evs))
	}
	if g, w := decodeAll(t, got...), decodeAll(t, want...); !reflect.DeepEqual(g, w) {
		t.Fatalf("read batches decode to\n%+v\nPublish's messages to\n%+v", g[:min(3, len(g))], w[:min(3, len(w))])
	}
}

func TestReadBatchCarriesWhatPublishCarries(t *testing.T) {
	t.Parallel()
	many := make([]byte, 3*MaxBatchEvents+5) // small rows: cut by count
	var sized []byte                         // rows from tiny to over MaxBatchBytes: cut by size
	for i := range 200 {
		sized = append(sized, byte(i*37%256))
	}
	cases := []struct {
		name  string
		sizes []byte
		keys  []string
		text  bool
	}{
		{"one row", []byte{1}, []string{"id"}, false},
		{"cut by count", many, []string{"id"}, false},
		{"cut by size", sized, []string{"id"}, true},
		{"a row larger than a message goes alone", []byte{1, 255, 1, 1}, []string{"id"}, false},
		{"composite key", sized, []string{"a", "b\"c"}, true},
		{"exactly MaxBatchEvents", make([]byte, MaxBatchEvents), []string{"id"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkReadBatch(t, readsFrom(t, tc.sizes, tc.keys, tc.text), tc.keys)
		})
	}
}

// TestReadBatchCutsAtTheByteLimitExactly tries every size of a first row
// around the point where a second one no longer fits.
func TestReadBatchCutsAtTheByteLimitExactly(t *testing.T) {
	t.Parallel()
	keys := []string{"id"}
	for pad := MaxBatchBytes - 400; pad < MaxBatchBytes; pad++ {
		evs := readsFrom(t, []byte{0, 0}, keys, false)
		evs[0].RowJSON = append(AppendJSONString([]byte(`{"id":0,"p":`), strings.Repeat("x", pad)), '}')
		checkReadBatch(t, evs, keys)
	}
}

func TestDecodeReadBatchRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, data string
		newer      bool
	}{
		{"a row without its key", `{"v":2,"op":"read","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"rows":[{"id":1},{"x":2}]}`, false},
		{"an empty batch", `{"v":2,"op":"read","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"rows":[]}`, false},
		{"rows of another operation", `{"v":2,"op":"update","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"rows":[{"id":1}]}`, false},
		{"a newer version", `{"v":99,"op":"read","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"rows":[{"id":1}]}`, true},
	} {
		_, err := DecodeChanges([]byte(tc.data))
		if err == nil || errors.Is(err, ErrNewerSchema) != tc.newer {
			t.Errorf("%s: DecodeChanges = %v", tc.name, err)
		}
	}
}

func FuzzReadBatchMatchesPublish(f *testing.F) {
	f.Add([]byte{1, 2, 3}, false, false)
	f.Add([]byte{255, 0, 218, 218, 218, 218}, true, true)
	f.Add(make([]byte, MaxBatchEvents+1), false, true)
	f.Fuzz(func(t *testing.T, sizes []byte, composite, text bool) {
		if len(sizes) == 0 || len(sizes) > 4*MaxBatchEvents {
			return
		}
		keys := []string{"id"}
		if composite {
			keys = []string{"id", "region"}
		}
		checkReadBatch(t, readsFrom(t, sizes, keys, text), keys)
	})
}
