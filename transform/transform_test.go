package transform_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/transform"
)

// rejectTable is a Mapper that fails for one table, to exercise the
// dead-letter path.
type rejectTable struct{ table string }

func (r rejectTable) Map(c *bus.Change) ([]*bus.Doc, error) {
	if c.Table == r.table {
		return nil, errors.New("rejected by test mapper")
	}
	return transform.Identity{}.Map(c)
}

func TestStageMapsChangesToDocumentsInOrder(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	changes := []*bus.Change{
		{Op: bus.OpRead, Schema: "public", Table: "users", LSN: 10, Pos: 0, Key: []bus.Column{{Name: "id", Value: 1}}, Row: map[string]any{"id": 1, "name": "ann"}},
		{Op: bus.OpUpdate, Schema: "public", Table: "users", LSN: 20, Pos: 0, Key: []bus.Column{{Name: "id", Value: 1}}, Row: map[string]any{"id": 1}, Unchanged: []string{"bio"}},
		{Op: bus.OpInsert, Schema: "shop", Table: "orders", LSN: 20, Pos: 1, Key: []bus.Column{{Name: "id", Value: 7}, {Name: "region", Value: "eu"}}, Row: map[string]any{"id": 7}},
		{Op: bus.OpInsert, Schema: "public", Table: "bad", LSN: 20, Pos: 2, Key: []bus.Column{{Name: "id", Value: 1}}, Row: map[string]any{"id": 1}},
		{Op: bus.OpDelete, Schema: "public", Table: "users", LSN: 30, Pos: 0, Key: []bus.Column{{Name: "id", Value: 1}}},
		{Op: bus.OpTruncate, Schema: "public", Table: "users", LSN: 40, Pos: 0},
		bus.NewWatermark(50),
	}
	p := b.Changes()
	for _, c := range changes {
		if err := p.Publish(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	src, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "transform"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.NewDocPublisher()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	st, err := transform.New(transform.DefaultConfig(), src, out, b.Bus, rejectTable{"bad"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()

	docsReader, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.DocsStream, Durable: "check"})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bus.Doc
	deadline := time.Now().Add(20 * time.Second)
	for len(docs) < 6 && time.Now().Before(deadline) {
		msgs, err := docsReader.Fetch(ctx, 10, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var d bus.Doc
			if err := bus.Decode(m.Data(), &d); err != nil {
				t.Fatal(err)
			}
			docs = append(docs, d)
		}
		if err := bus.AckBatch(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(docs) != 6 {
		t.Fatalf("got %d documents, want 6: %+v", len(docs), docs)
	}
	want := []struct {
		op      bus.DocOp
		index   string
		id      string
		version uint64
	}{
		{bus.DocIndex, "users", "1", 10},
		{bus.DocIndex, "users", "1", 20},
		{bus.DocIndex, "shop.orders", `[7,"eu"]`, 20},
		{bus.DocDelete, "users", "1", 30},
		{bus.DocTruncate, "users", "", 40},
		{bus.DocWatermark, bus.WatermarkIndex, "", 50},
	}
	for i, w := range want {
		d := docs[i]
		if d.Op != w.op || d.Index != w.index || d.ID != w.id || d.Version != w.version {
			t.Errorf("doc %d = %s %s/%s v%d, want %s %s/%s v%d", i, d.Op, d.Index, d.ID, d.Version, w.op, w.index, w.id, w.version)
		}
	}
	var src0 map[string]any
	if err := json.Unmarshal(docs[0].Source, &src0); err != nil || src0["name"] != "ann" {
		t.Errorf("doc 0 source = %s (%v)", docs[0].Source, err)
	}
	if len(docs[1].Unchanged) != 1 || docs[1].Unchanged[0] != "bio" {
		t.Errorf("unchanged TOAST columns lost: %v", docs[1].Unchanged)
	}
	n, err := b.DLQCount(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("dead letters = %d (%v), want 1", n, err)
	}
}
