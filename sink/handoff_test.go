package sink_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/sink"
)

// TestHandoffWritesInOrderAndDeadLettersTheDocumentEvent: documents handed
// over in process are confirmed by the engine when Flush returns, in
// order (a delete after an index of the same document wins), a watermark
// counts as applied only with them, and a rejected one is dead-lettered as
// the document event it would have been on the bus — on the documents
// subject the sink reads, so that replaying it indexes it there.
func TestHandoffWritesInOrderAndDeadLettersTheDocumentEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := e.start(sink.DefaultConfig())
	ctx := context.Background()
	h := sink.NewHandoff(s)
	flush := func(docs ...*bus.Doc) {
		t.Helper()
		for _, d := range docs {
			if err := h.Publish(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	flush(idx("1", 100, `{"age":30}`))
	if _, v, _ := e.get("users", "1"); v != 100 {
		t.Fatalf("after Flush document 1 has version %d, want 100", v)
	}
	bad := idx("2", 110, `{"age":"not a number"}`)
	flush(bad, idx("3", 120, `{"age":31}`), idx("4", 130, `{"age":40}`), del("4", 130),
		&bus.Doc{Op: bus.DocWatermark, Index: bus.WatermarkIndex, Version: 140})
	if _, v, _ := e.get("users", "3"); v != 120 {
		t.Fatalf("after Flush document 3 has version %d, want 120", v)
	}
	if _, _, found := e.get("users", "4"); found {
		t.Fatal("document 4 was deleted after it was indexed, in one batch, but is found")
	}
	if _, _, found := e.get("users", "2"); found {
		t.Fatal("rejected document was indexed")
	}
	st := s.Status()
	if st.AppliedLSN != 140 || st.DeadLetters != 1 {
		t.Fatalf("status: applied %s, %d dead letters; want 0/8C and 1", st.AppliedLSN, st.DeadLetters)
	}
	stream, err := e.bus.JetStream().Stream(ctx, bus.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var dl bus.DeadLetter
	if err := bus.Decode(m.Data, &dl); err != nil {
		t.Fatal(err)
	}
	var event bus.Doc
	if err := bus.Decode(dl.Event, &event); err != nil {
		t.Fatalf("the dead letter's event is not a document event: %v: %s", err, dl.Event)
	}
	if dl.Stage != "sink" || dl.Subject != bus.DocSubject("users") || dl.MsgID != bad.MsgID() ||
		event.ID != "2" || event.Version != 110 || string(event.Source) != `{"age":"not a number"}` {
		t.Fatalf("dead letter: stage %q subject %q id %q, event %+v", dl.Stage, dl.Subject, dl.MsgID, event)
	}

	// Corrected and published where the dead letter says, the document is
	// indexed by the sink's own reader, beside the handoff.
	raw, err := json.Marshal(map[string]any{"v": bus.SchemaVersion, "op": "index", "index": "users", "id": "2", "version": 150,
		"source": map[string]any{"age": 32}, "schema": "public", "table": "users"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.bus.JetStream().Publish(ctx, dl.Subject, raw); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the replayed document indexed from the documents stream", func() bool { _, v, _ := e.get("users", "2"); return v == 150 })
}
