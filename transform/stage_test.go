package transform_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/transform"
)

// runStage runs a transform stage over b with mapper until the test ends.
func runStage(t *testing.T, b *bustest.Bus, mapper transform.Mapper, workers int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	src, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "transform"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.NewDocPublisher()
	if err != nil {
		t.Fatal(err)
	}
	cfg := transform.DefaultConfig()
	cfg.Workers = workers
	st, err := transform.New(cfg, src, out, b.Bus, mapper)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		out.Close()
	})
}

// docReader collects document events.
type docReader struct {
	t *testing.T
	r *bus.Reader
}

func newDocReader(t *testing.T, b *bustest.Bus) *docReader {
	r, err := b.NewReader(context.Background(), bus.ReaderConfig{Stream: bus.DocsStream, Durable: "check"})
	if err != nil {
		t.Fatal(err)
	}
	return &docReader{t: t, r: r}
}

// read returns the next n documents, failing after a deadline.
func (d *docReader) read(n int) []*bus.Doc {
	d.t.Helper()
	ctx := context.Background()
	var docs []*bus.Doc
	deadline := time.Now().Add(20 * time.Second)
	for len(docs) < n {
		if time.Now().After(deadline) {
			d.t.Fatalf("got %d documents, want %d: %v", len(docs), n, summaries(docs))
		}
		msgs, err := d.r.Fetch(ctx, n-len(docs), 200*time.Millisecond)
		if err != nil {
			d.t.Fatal(err)
		}
		for _, m := range msgs {
			var doc bus.Doc
			if err := bus.Decode(m.Data(), &doc); err != nil {
				d.t.Fatal(err)
			}
			docs = append(docs, &doc)
		}
		if err := bus.AckBatch(ctx, msgs); err != nil {
			d.t.Fatal(err)
		}
	}
	return docs
}

func publish(t *testing.T, b *bustest.Bus, changes ...*bus.Change) {
	t.Helper()
	ctx := context.Background()
	p := b.Changes()
	for _, c := range changes {
		if err := p.Publish(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// deadLetters reads every dead letter stored, with its stream sequence.
func deadLetters(t *testing.T, b *bustest.Bus) map[uint64]bus.DeadLetter {
	t.Helper()
	ctx := context.Background()
	s, err := b.JetStream().Stream(ctx, bus.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bus.DeadLetter{}
	for seq := uint64(1); ; seq++ {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(bus.DLQPrefix+">"))
		if err != nil {
			return out
		}
		var dl bus.DeadLetter
		if err := bus.Decode(m.Data, &dl); err != nil {
			t.Fatal(err)
		}
		out[m.Sequence] = dl
		seq = m.Sequence
	}
}

func TestStageDeadLettersScriptErrorsAndReplaysAfterAFix(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	dir := t.TempDir()
	writeScript(t, dir, "users", `function transform(doc) {
  if (doc.loop) { for (;;) {} }
  if (doc.name === undefined) throw new Error("name missing on row " + doc.id);
  return {id: doc.id, name: doc.name.toUpperCase()};
}`)
	s := loadScripts(t, dir, func(c *transform.ScriptConfig) { c.Timeout = 50 * time.Millisecond })
	runStage(t, b, s, 4)
	docs := newDocReader(t, b)

	var changes []*bus.Change
	for i := 1; i <= 20; i++ {
		row := map[string]any{"id": i, "name": fmt.Sprintf("u%d", i)}
		switch i {
		case 5:
			delete(row, "name")
		case 9:
			row["loop"] = true
		}
		changes = append(changes, change(bus.OpInsert, "users", i, bus.LSN(100+i), row))
	}
	publish(t, b, changes...)
	got := docs.read(18)
	var ids []string
	for _, d := range got {
		ids = append(ids, d.ID)
	}
	want := []string{"1", "2", "3", "4", "6", "7", "8", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20"}
	if !slices.Equal(ids, want) {
		t.Fatalf("documents %v, want %v in order", ids, want)
	}
	if src := source(t, got[0]); src["name"] != "U1" {
		t.Fatalf("doc 1 = %v", src)
	}

	var dls map[uint64]bus.DeadLetter
	eventually(t, "two dead letters", func() bool { dls = deadLetters(t, b); return len(dls) == 2 })
	var thrown, looped bus.DeadLetter
	for _, dl := range dls {
		if strings.Contains(dl.Error, "name missing") {
			thrown = dl
		} else {
			looped = dl
		}
	}
	if thrown.Stage != "transform" || !strings.Contains(thrown.Error, "name missing on row 5") ||
		!strings.Contains(thrown.Stack, "transform.js:3:") || thrown.Subject != bus.ChangeSubject("public", "users") || thrown.Time.IsZero() {
		t.Fatalf("dead letter of the throw: %+v", thrown)
	}
	var orig bus.Change
	if err := bus.Decode(thrown.Event, &orig); err != nil || orig.LSN != 105 {
		t.Fatalf("original event kept: %+v (%v)", orig, err)
	}
	// After every retry, with how long it ran in all.
	if !strings.Contains(looped.Error, "time limit: interrupted 5 times") || !strings.Contains(looped.Error, "in total") ||
		!strings.Contains(looped.Stack, "transform.js:2:") {
		t.Fatalf("dead letter of the loop: %+v", looped)
	}

	// Fix the script, then replay the dead letter as `walsearch dlq replay` does.
	writeScript(t, dir, "users", `function transform(doc) { return {id: doc.id, name: (doc.name || "anonymous").toUpperCase()}; }`)
	if !s.Reload() {
		t.Fatal("fixed script not reloaded")
	}
	ctx := context.Background()
	if _, err := b.JetStream().Publish(ctx, thrown.Subject, thrown.Event, jetstream.WithMsgID(thrown.MsgID+":replay")); err != nil {
		t.Fatal(err)
	}
	replayed := docs.read(1)
	if replayed[0].ID != "5" || source(t, replayed[0])["name"] != "ANONYMOUS" || replayed[0].Version != 105 {
		t.Fatalf("replayed document: %v", summaries(replayed))
	}
}

func TestStageKeepsPerDocumentOrderAcrossWorkers(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	dir := t.TempDir()
	// A script that routes by a column: each document's changes must come
	// out in order, index and deletes alike, with many workers.
	writeScript(t, dir, "items", `var indices = ["items-odd"];
function transform(doc, ctx) {
  if (doc.v % 2 === 1) ctx.index = "items-odd";
  return doc;
}`)
	s := loadScripts(t, dir, nil)
	runStage(t, b, s, 4)
	docs := newDocReader(t, b)
	var changes []*bus.Change
	var want []string
	for v := 0; v < 60; v++ {
		id := v % 6
		changes = append(changes, change(bus.OpUpdate, "items", id, bus.LSN(1000+v), map[string]any{"id": id, "v": v}))
		src := fmt.Sprintf(`{"id":%d,"v":%d}`, id, v)
		if v%2 == 1 {
			want = append(want, fmt.Sprintf("index items-odd/%d %s", id, src), fmt.Sprintf("delete items/%d", id))
		} else {
			want = append(want, fmt.Sprintf("index items/%d %s", id, src), fmt.Sprintf("delete items-odd/%d", id))
		}
	}
	publish(t, b, changes...)
	got := summaries(docs.read(len(want)))
	if !slices.Equal(got, want) {
		t.Fatalf("documents out of order:\n got %v\nwant %v", got, want)
	}
}

func TestStageDeadLettersOneChangeOfABatchedMessage(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	dir := t.TempDir()
	writeScript(t, dir, "users", `function transform(doc) {
  if (doc.name === undefined) throw new Error("name missing on row " + doc.id);
  return {id: doc.id, name: doc.name.toUpperCase()};
}`)
	s := loadScripts(t, dir, nil)
	runStage(t, b, s, 4)
	docs := newDocReader(t, b)

	// One transaction: every change shares the commit LSN, so the bus
	// carries them in one message.
	var changes []*bus.Change
	for i := 1; i <= 30; i++ {
		row := map[string]any{"id": i, "name": fmt.Sprintf("u%d", i)}
		if i == 7 {
			delete(row, "name")
		}
		c := change(bus.OpInsert, "users", i, 500, row)
		c.Pos = uint64(i - 1)
		changes = append(changes, c)
	}
	ctx := context.Background()
	p := b.Changes()
	if err := p.Publish(ctx, changes...); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if info, err := b.JetStream().Stream(ctx, bus.ChangesStream); err != nil || info.CachedInfo().State.Msgs != 1 {
		t.Fatalf("30 changes of one transaction should travel as one message: %v", err)
	}
	got := docs.read(29)
	for i, d := range got {
		want := i + 1
		if want >= 7 {
			want++
		}
		if d.ID != fmt.Sprint(want) || d.Version != 500 {
			t.Fatalf("documents %v: want ids 1..30 without 7, in order", summaries(got))
		}
	}

	var dls map[uint64]bus.DeadLetter
	eventually(t, "one dead letter", func() bool { dls = deadLetters(t, b); return len(dls) == 1 })
	var dl bus.DeadLetter
	for _, v := range dls {
		dl = v
	}
	// The dead letter holds the failing change alone, with its own id.
	orig, err := bus.DecodeChanges(dl.Event)
	if err != nil || len(orig) != 1 || orig[0].Pos != 6 || orig[0].LSN != 500 || dl.MsgID != changes[6].MsgID() {
		t.Fatalf("dead letter %+v holds %+v (%v), want change 7 alone", dl, orig, err)
	}

	writeScript(t, dir, "users", `function transform(doc) { return {id: doc.id, name: (doc.name || "anonymous").toUpperCase()}; }`)
	if !s.Reload() {
		t.Fatal("fixed script not reloaded")
	}
	if _, err := b.JetStream().Publish(ctx, dl.Subject, dl.Event, jetstream.WithMsgID(dl.MsgID+":replay")); err != nil {
		t.Fatal(err)
	}
	replayed := docs.read(1)
	if replayed[0].ID != "7" || source(t, replayed[0])["name"] != "ANONYMOUS" || replayed[0].Version != 500 {
		t.Fatalf("replayed document: %v", summaries(replayed))
	}
}
