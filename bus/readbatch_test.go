package bus

import (
	"bytes"
	"strings"
	"testing"
)

// readsFrom builds the read changes that sizes describe: one per byte, the
// row holding a text of that many (times 300) bytes, so that runs cross
// both MaxBatchBytes and MaxBatchEvents. keyNames are the key columns; the
// values (and the table's name) are text to escape when text is set,
// integers otherwise.
func readsFrom(sizes []byte, keyNames []string, text bool) []*Change {
	evs := make([]*Change, len(sizes))
	for i, sz := range sizes {
		key := make([]Column, len(keyNames))
		for k, name := range keyNames {
			var v any = int64(i*7 + k)
			if text {
				v = strings.Repeat("k\"é", k+1) + string(rune('a'+i%26))
			}
			key[k] = Column{Name: name, Value: v}
		}
		row := AppendJSONString([]byte(`{"p":`), strings.Repeat("x", int(sz)*300))
		table := "t"
		if text {
			table = "t\"ä"
		}
		evs[i] = &Change{Op: OpRead, Schema: "public", Table: table, Key: key, RowJSON: append(row, '}'), LSN: 0x16B3748, Pos: uint64(i)}
	}
	return evs
}

// publishMessages is what ChangePublisher.Publish sends for evs.
func publishMessages(t testing.TB, evs []*Change) []Message {
	var out []Message
	for len(evs) > 0 {
		m, err := nextMessage(evs)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		evs = evs[m.Count:]
	}
	return out
}

// batchMessages is what a ReadBatch makes of evs.
func batchMessages(t testing.TB, evs []*Change, keyNames []string) []Message {
	b := NewReadBatch(evs[0].Schema, evs[0].Table, keyNames, evs[0].LSN)
	var out []Message
	for _, ev := range evs {
		keyJSON := make([][]byte, len(ev.Key))
		for i, c := range ev.Key {
			v, err := AppendJSONValue(nil, c.Value)
			if err != nil {
				t.Fatal(err)
			}
			keyJSON[i] = v
		}
		if m, full := b.Add(ev.Pos, keyJSON, ev.RowJSON, func() []Column { return ev.Key }); full {
			out = append(out, m)
		}
	}
	if m, ok := b.Take(); ok {
		out = append(out, m)
	}
	if _, ok := b.Take(); ok {
		t.Fatal("Take after Take returned a message")
	}
	return out
}

func checkSameMessages(t testing.TB, evs []*Change, keyNames []string) {
	want := publishMessages(t, evs)
	got := batchMessages(t, evs, keyNames)
	if len(got) != len(want) {
		t.Fatalf("ReadBatch made %d messages, Publish %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Subject != w.Subject || g.ID != w.ID || g.Count != w.Count || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("message %d:\n got %s %s (%d changes) %.300s\nwant %s %s (%d changes) %.300s",
				i, g.Subject, g.ID, g.Count, g.Data, w.Subject, w.ID, w.Count, w.Data)
		}
	}
}

func TestReadBatchSendsWhatPublishSends(t *testing.T) {
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
		{"one change is an object", []byte{1}, []string{"id"}, false},
		{"cut by count", many, []string{"id"}, false},
		{"cut by size", sized, []string{"id"}, true},
		{"a change larger than a message goes alone", []byte{1, 255, 1, 1}, []string{"id"}, false},
		{"composite key", sized, []string{"a", "b\"c"}, true},
		{"exactly MaxBatchEvents", make([]byte, MaxBatchEvents), []string{"id"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkSameMessages(t, readsFrom(tc.sizes, tc.keys, tc.text), tc.keys)
		})
	}
}

// TestReadBatchCutsAtTheByteLimitExactly tries every size of a first row
// around the point where a second change no longer fits.
func TestReadBatchCutsAtTheByteLimitExactly(t *testing.T) {
	t.Parallel()
	keys := []string{"id"}
	small := readsFrom([]byte{0}, keys, false)[0]
	for pad := MaxBatchBytes - 400; pad < MaxBatchBytes; pad++ {
		first := *small
		first.RowJSON = append(AppendJSONString([]byte(`{"p":`), strings.Repeat("x", pad)), '}')
		second := *small
		second.Pos = 1
		checkSameMessages(t, []*Change{&first, &second}, keys)
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
		checkSameMessages(t, readsFrom(sizes, keys, text), keys)
	})
}
