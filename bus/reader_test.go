package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
)

// TestANewReaderGetsWhatTheLastOneLeftUnacknowledgedFirst: a stage that
// fetched messages and died (or restarted) before acknowledging them must
// get them again first, in stream order, when it reads again — not the
// newer messages first and the old ones after the ack wait, which would
// apply an old change (a TRUNCATE, say) over newer ones.
func TestANewReaderGetsWhatTheLastOneLeftUnacknowledgedFirst(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	pub := b.Changes()
	ctx := context.Background()
	publish := func(from, to int) {
		t.Helper()
		for pos := from; pos <= to; pos++ {
			// One message per change: a different table each time.
			c := &bus.Change{Op: bus.OpInsert, Schema: "public", Table: "t" + string(rune('a'+pos)), LSN: bus.LSN(0x100 + pos), Pos: 0,
				Key: []bus.Column{{Name: "id", Value: int64(pos)}}, Row: map[string]any{"id": int64(pos)}}
			if err := pub.Publish(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	read := func(r *bus.Reader, max int) []bus.LSN {
		t.Helper()
		msgs, err := r.Fetch(ctx, max, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var lsns []bus.LSN
		for _, m := range msgs {
			cs, err := bus.DecodeChanges(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				lsns = append(lsns, c.LSN)
			}
		}
		return lsns
	}
	publish(1, 3)
	first, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "stage"})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(first, 2); len(got) != 2 || got[0] != 0x101 {
		t.Fatalf("first reader got %v, want the first two changes", got)
	}
	// The stage dies holding them; more changes arrive; it starts again.
	publish(4, 5)
	again, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "stage"})
	if err != nil {
		t.Fatal(err)
	}
	got := read(again, 10)
	for len(got) < 5 {
		more := read(again, 10)
		if len(more) == 0 {
			break
		}
		got = append(got, more...)
	}
	want := []bus.LSN{0x101, 0x102, 0x103, 0x104, 0x105}
	if len(got) != len(want) {
		t.Fatalf("the reader after the restart got %v, want %v in order", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("the reader after the restart got %v, want %v in order", got, want)
		}
	}
}
