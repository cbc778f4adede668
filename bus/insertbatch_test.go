package bus

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// insertsFrom builds the inserts of one transaction that sizes describe,
// as capture makes them: one per byte, the row holding its key columns and
// a text of that many (times 300) bytes. keyNames are the key columns;
// the values are text to escape when text is set, integers otherwise.
func insertsFrom(sizes []byte, keyNames []string, text bool) []*Change {
	evs := make([]*Change, len(sizes))
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for i, sz := range sizes {
		key, row := keyedRow(i, sz, keyNames, text)
		row["n"], row["tags"] = json.Number("1.50"), []any{"a", nil}
		evs[i] = &Change{V: SchemaVersion, Op: OpInsert, Schema: "public", Table: "t\"ä", Key: key, Row: row,
			LSN: 0x16B3748, Pos: uint64(i + 3), CommitTime: at, Xid: 7310}
	}
	return evs
}

// generalForm is the change message of evs in the general form: an array
// of whole changes (one change alone is an object).
func generalForm(t testing.TB, evs []*Change) []byte {
	t.Helper()
	if len(evs) == 1 {
		b, err := encodeChange(nil, evs[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := []byte{'['}
	for i, ev := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = encodeChange(b, ev); err != nil {
			t.Fatal(err)
		}
	}
	return append(b, ']')
}

// checkInsertBatches publishes evs as Publish cuts them into messages and
// checks that every message decodes, raw and whole, to exactly the changes
// the general form of the same changes decodes to, and that runs of
// inserts travel as insert batches within the limits.
func checkInsertBatches(t testing.TB, evs []*Change) {
	t.Helper()
	for rest := evs; len(rest) > 0; {
		m, err := nextMessage(rest)
		if err != nil {
			t.Fatal(err)
		}
		part := rest[:m.Count]
		if m.Count > 1 && len(m.Data) > MaxBatchBytes || m.Count > MaxBatchEvents {
			t.Fatalf("%d changes in %d bytes, over the limits", m.Count, len(m.Data))
		}
		if batch := strings.HasPrefix(string(m.Data), `{"v":3,"op":"insert"`) && strings.Contains(string(m.Data), `"rows":[`); batch != (m.Count > 1 && insertRun(part) == m.Count) {
			t.Fatalf("a message of %d changes (%d of them an insert run) is an insert batch: %v: %.200s", m.Count, insertRun(part), batch, m.Data)
		}
		want := generalForm(t, part)
		for _, dec := range []func([]byte) ([]Change, error){DecodeChanges, DecodeChangesRaw} {
			got, err := dec(m.Data)
			if err != nil {
				t.Fatalf("decode %.200s: %v", m.Data, err)
			}
			exp, err := dec(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("the message decodes to\n%+v\nits changes in the general form to\n%+v", got[:min(2, len(got))], exp[:min(2, len(exp))])
			}
		}
		rest = rest[m.Count:]
	}
}

func TestInsertBatchCarriesWhatTheGeneralFormCarries(t *testing.T) {
	t.Parallel()
	var sized []byte // rows from tiny to over MaxBatchBytes: cut by size
	for i := range 200 {
		sized = append(sized, byte(i*37%256))
	}
	cases := []struct {
		name string
		evs  []*Change
	}{
		{"cut by count", insertsFrom(make([]byte, 3*MaxBatchEvents+5), []string{"id"}, false)},
		{"cut by size, text keys", insertsFrom(sized, []string{"id"}, true)},
		{"composite key", insertsFrom(sized, []string{"a", "b\"c"}, true)},
		{"no key", insertsFrom(make([]byte, 10), nil, false)},
		{"a row larger than a message goes alone", insertsFrom([]byte{1, 255, 1, 1}, []string{"id"}, false)},
	}
	// Changes an insert batch cannot carry end the run and travel in the
	// general form.
	mixed := insertsFrom(make([]byte, 12), []string{"id"}, false)
	mixed[2].Op = OpUpdate
	mixed[4].Unchanged = []string{"p"}
	mixed[6].Key[0].Value = int64(-1) // the row says otherwise
	mixed[7].Pos += 100               // not the next position
	mixed[9].Op, mixed[10].From = OpDelete, []Column{{Name: "id", Value: int64(63)}}
	cases = append(cases, struct {
		name string
		evs  []*Change
	}{"mixed", mixed})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkInsertBatches(t, tc.evs) })
	}
	// A large INSERT's rows travel as insert batches.
	m, err := nextMessage(insertsFrom(make([]byte, 100), []string{"id"}, false))
	if err != nil || m.Count != 100 || !strings.HasPrefix(string(m.Data), `{"v":3,"op":"insert"`) {
		t.Fatalf("100 inserts: %d in one message %.80s (%v)", m.Count, m.Data, err)
	}
}

func FuzzInsertBatchMatchesTheGeneralForm(f *testing.F) {
	f.Add([]byte{1, 2, 3}, false, false, uint16(0))
	f.Add([]byte{255, 0, 218, 218, 218, 218}, true, true, uint16(3))
	f.Add(make([]byte, MaxBatchEvents+1), false, true, uint16(0x8001))
	f.Fuzz(func(t *testing.T, sizes []byte, composite, text bool, breaks uint16) {
		if len(sizes) == 0 || len(sizes) > 4*MaxBatchEvents {
			return
		}
		keys := []string{"id"}
		if composite {
			keys = []string{"id", "region"}
		}
		evs := insertsFrom(sizes, keys, text)
		// Each bit of breaks turns one change into something no insert
		// batch carries.
		for i := range 16 {
			if breaks&(1<<i) != 0 && i < len(evs) {
				switch i % 4 {
				case 0:
					evs[i].Op = OpUpdate
				case 1:
					evs[i].Unchanged = []string{"p"}
				case 2:
					evs[i].CommitTime = evs[i].CommitTime.Add(time.Second)
				case 3:
					evs[i].Key[0].Value = "other"
				}
			}
		}
		checkInsertBatches(t, evs)
	})
}
