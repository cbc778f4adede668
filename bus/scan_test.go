package bus

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestScannerReadsWhatCaptureWrites: the messages capture publishes (batches
// of changes, single changes, read batches) take the scanner's fast path,
// not encoding/json's.
func TestScannerReadsWhatCaptureWrites(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	evs := []*Change{
		{Op: OpInsert, Schema: "public", Table: "t", Key: []Column{{Name: "id", Value: int64(1)}}, Row: map[string]any{"id": int64(1), "s": "é\"\n"}, LSN: 0x16B3748, CommitTime: at},
		{Op: OpUpdate, Schema: "public", Table: "t", Key: []Column{{Name: "id", Value: int64(2)}}, Row: map[string]any{"id": int64(2)}, Unchanged: []string{"big"}, LSN: 0x16B3748, Pos: 1, CommitTime: at},
		{Op: OpDelete, Schema: "public", Table: "t", Key: []Column{{Name: "id", Value: int64(3)}}, LSN: 0x16B3748, Pos: 2, CommitTime: at},
		{Op: OpInsert, Schema: "public", Table: "t", Key: []Column{{Name: "id", Value: int64(4)}}, Row: map[string]any{"id": int64(4)}, Unchanged: []string{"big"},
			From: []Column{{Name: "id", Value: int64(3)}}, LSN: 0x16B3748, Pos: 3, CommitTime: at},
	}
	batch, used, err := EncodeChanges(evs, MaxBatchBytes)
	if err != nil || used != len(evs) {
		t.Fatal(used, err)
	}
	one, _, err := EncodeChanges(evs[2:3], MaxBatchBytes)
	if err != nil {
		t.Fatal(err)
	}
	rb := NewReadBatch("public", "t", []string{"id"}, 0x16B3748)
	rb.Add(0, []byte(`{"id":1,"s":"a"}`), func() []Column { return []Column{{Name: "id", Value: int64(1)}} })
	rb.Add(1, []byte(`{"id":2,"s":"b"}`), nil)
	read, _ := rb.Take()
	inserts := []*Change{
		{Op: OpInsert, Schema: "public", Table: "t", Key: []Column{{Name: "id", Value: int64(5)}}, Row: map[string]any{"id": int64(5), "s": "\u2028\\"}, LSN: 0x16B3749, CommitTime: at, Xid: 9},
		{Op: OpInsert, Schema: "public", Table: "t", Key: []Column{{Name: "id", Value: int64(6)}}, Row: map[string]any{"id": int64(6), "n": -1.5e-7}, LSN: 0x16B3749, Pos: 1, CommitTime: at, Xid: 9},
	}
	insertBatch, used, err := EncodeChanges(inserts, MaxBatchBytes)
	if err != nil || used != len(inserts) || !strings.Contains(string(insertBatch), `"rows":[`) {
		t.Fatalf("insert batch %s: %d, %v", insertBatch, used, err)
	}
	for name, msg := range map[string][]byte{"batch": batch, "single": one, "read batch": read.Data, "insert batch": insertBatch} {
		cs, ok := scanChanges(msg)
		if !ok || len(cs) == 0 {
			t.Errorf("%s: the scanner handed %s to encoding/json", name, msg)
		}
	}
}

// valueEnd validates what it passes exactly as json.Valid does: the change
// scanner relies on it instead of a separate json.Valid pass.
func FuzzValueEndIsJSONValid(f *testing.F) {
	for _, s := range []string{`{"a":[1,-0.5e+3,true,false,null,"x\u00e9\n"]}`, ` [ ] `, `{}`, `"\x"`, `01`, `-`, `1.`, `1e`, `[1,]`, `{"a":1,}`,
		`{"a" 1}`, "\"\x01\"", `"\u12G4"`, `tru`, `nulll`, `[[[[]]]]`, `{"a":{"b":[{"c":"d"}]}} x`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "\"\xff\"", `1e+`, `-01`, `0.0e-0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := valueEnd(b, skipSpace(b, 0))
		got := end >= 0 && skipSpace(b, end) == len(b)
		if want := json.Valid(b); got != want {
			t.Fatalf("%q: valueEnd says valid %v, json.Valid %v", b, got, want)
		}
	})
}
