package bus

import (
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
	for name, msg := range map[string][]byte{"batch": batch, "single": one, "read batch": read.Data} {
		cs, ok := scanChanges(msg)
		if !ok || len(cs) == 0 {
			t.Errorf("%s: the scanner handed %s to encoding/json", name, msg)
		}
	}
}
