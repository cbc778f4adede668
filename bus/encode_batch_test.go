package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
)

func row(table string, lsn bus.LSN, pos int, payload string) *bus.Change {
	return &bus.Change{Op: bus.OpInsert, Schema: "public", Table: table, LSN: lsn, Pos: uint64(pos),
		Key: []bus.Column{{Name: "id", Value: pos}}, Row: map[string]any{"id": pos, "p": payload}}
}

// upd is the update of the row at pos: updates never travel as an insert
// batch, so several of them are a JSON array.
func upd(table string, lsn bus.LSN, pos int, payload string) *bus.Change {
	c := row(table, lsn, pos, payload)
	c.Op = bus.OpUpdate
	return c
}

func TestEncodeChanges(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 1000)
	cases := []struct {
		name     string
		evs      []*bus.Change
		max      int
		wantUsed int
		form     byte // '{' one change or an insert batch, '[' an array
	}{
		{"one change is an object", []*bus.Change{row("t", 1, 0, "")}, bus.MaxBatchBytes, 1, '{'},
		{"several are an array", []*bus.Change{upd("t", 1, 0, ""), upd("t", 1, 1, ""), upd("t", 1, 2, "")}, bus.MaxBatchBytes, 3, '['},
		{"cut at the byte limit", []*bus.Change{upd("t", 1, 0, big), upd("t", 1, 1, big), upd("t", 1, 2, big)}, 2500, 2, '['},
		{"a change over the limit goes alone", []*bus.Change{upd("t", 1, 0, big), upd("t", 1, 1, "")}, 500, 1, '{'},
		{"several inserts are an insert batch", []*bus.Change{row("t", 1, 0, ""), row("t", 1, 1, ""), row("t", 1, 2, "")}, bus.MaxBatchBytes, 3, '{'},
		{"an insert batch cut at the byte limit", []*bus.Change{row("t", 1, 0, big), row("t", 1, 1, big), row("t", 1, 2, big)}, 2300, 2, '{'},
		{"an insert over the limit goes alone", []*bus.Change{row("t", 1, 0, big), row("t", 1, 1, "")}, 500, 1, '{'},
		{"an insert batch ends before an update", []*bus.Change{row("t", 1, 0, ""), row("t", 1, 1, ""), upd("t", 1, 2, "")}, bus.MaxBatchBytes, 2, '{'},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, used, err := bus.EncodeChanges(tc.evs, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if used != tc.wantUsed || data[0] != tc.form {
				t.Fatalf("used %d (%c…), want %d (%c…)", used, data[0], tc.wantUsed, tc.form)
			}
			if used > 1 && len(data) > tc.max {
				t.Fatalf("%d bytes over the limit %d", len(data), tc.max)
			}
			got, err := bus.DecodeChanges(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != used {
				t.Fatalf("decoded %d changes, want %d", len(got), used)
			}
			for i, c := range got {
				if c.Pos != uint64(i) || c.V != bus.SchemaVersion || c.Op != tc.evs[i].Op || c.Row["p"] != tc.evs[i].Row["p"] {
					t.Fatalf("change %d decoded as %+v", i, c)
				}
			}
		})
	}
}

func TestDecodeChanges(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		want     int
		err      string
	}{
		{"object", `{"v":1,"op":"insert","schema":"s","table":"t","lsn":"0/10","pos":3}`, 1, ""},
		{"array", ` [{"v":1,"op":"insert","lsn":"0/10"},{"v":1,"op":"delete","lsn":"0/10"}]`, 2, ""},
		{"exact numbers", `[{"v":1,"row":{"n":12345678901234567890.5}}]`, 1, ""},
		{"empty array", `[]`, 0, "empty change batch"},
		{"newer schema in a batch", `[{"v":1},{"v":99}]`, 0, "schema version 99"},
		{"garbage", `[{"v":1},`, 0, "decode event"},
		{"bad lsn", `{"v":1,"lsn":"nope"}`, 0, "decode event"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bus.DecodeChanges([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d changes (%v), want %d", len(got), err, tc.want)
			}
		})
	}
	if got, _ := bus.DecodeChanges([]byte(`[{"v":1,"row":{"n":12345678901234567890.5}}]`)); got[0].Row["n"] != json.Number("12345678901234567890.5") {
		t.Fatalf("number decoded as %#v, want it exact", got[0].Row["n"])
	}
	if _, err := bus.DecodeChanges([]byte(`[{"v":99}]`)); !errors.Is(err, bus.ErrNewerSchema) {
		t.Fatalf("newer schema: %v", err)
	}
}

func FuzzDecodeChanges(f *testing.F) {
	for _, s := range []string{`{"v":1,"op":"insert","lsn":"0/10","row":{"a":1}}`, `[{"v":1},{"v":1,"key":[{"name":"id","value":2}]}]`, `[]`, ` [`, `{"v":1,"lsn":"1/2"}`,
		`{"v":2,"op":"read","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":7,"rows":[{"id":1},{"id":"x","y":[1]}]}`,
		`{"v":2,"op":"read","schema":"s","table":"t","key_columns":["a","b"],"lsn":"0/1","pos":0,"rows":[{"a":1,"b":null}]}`,
		`{"v":2,"op":"read","schema":"s","table":"t","key_columns":[],"lsn":"0/1","pos":0,"rows":[{}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := bus.DecodeChanges(data)
		if err != nil {
			return
		}
		if len(cs) == 0 {
			t.Fatal("no error and no change")
		}
		// What decodes encodes and decodes again to as many changes.
		ptrs := make([]*bus.Change, len(cs))
		for i := range cs {
			ptrs[i] = &cs[i]
		}
		out, used, err := bus.EncodeChanges(ptrs, 1<<30)
		if err != nil {
			return // e.g. a number json.Number cannot re-encode
		}
		back, err := bus.DecodeChanges(out)
		if err != nil || len(back) != used || used != len(cs) {
			t.Fatalf("round trip: %d of %d changes, %d back (%v)", used, len(cs), len(back), err)
		}
	})
}

// Publishers shared by goroutines keep each goroutine's order, and Flush
// covers what every goroutine published before it: the snapshot relies on
// both.
func TestConcurrentPublishersBatchAndKeepOrder(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	p := b.Changes()
	ctx := context.Background()
	const writers, perWriter = 4, 3000
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			table := fmt.Sprintf("t%d", w)
			batch := make([]*bus.Change, 0, 100)
			for i := range perWriter {
				batch = append(batch, row(table, bus.LSN(100+w), i, "")) // one transaction per writer
				if len(batch) == cap(batch) {
					if err := p.Publish(ctx, batch...); err != nil {
						errs <- err
						return
					}
					batch = batch[:0]
				}
			}
			errs <- p.Flush(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	info, err := b.JetStream().Stream(ctx, bus.ChangesStream)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := info.CachedInfo().State.Msgs; msgs != writers*perWriter/100 {
		t.Fatalf("%d messages, want %d batches of 100", msgs, writers*perWriter/100)
	}
	got := b.ReadChanges(writers*perWriter, 30*time.Second)
	next := map[string]uint64{}
	for _, c := range got {
		if c.Pos != next[c.Table] {
			t.Fatalf("%s: change %d after %d", c.Table, c.Pos, next[c.Table])
		}
		next[c.Table]++
	}
	for w := range writers {
		if n := next[fmt.Sprintf("t%d", w)]; n != perWriter {
			t.Fatalf("t%d: %d changes, want %d", w, n, perWriter)
		}
	}
}

// A fetch takes about MaxFetchBytes, however many messages it may take: the
// server closes a connection that does not keep up with what a fetch pushes
// (max_pending), and batched change messages are large.
func TestFetchIsBoundedByBytes(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	p := b.Changes()
	ctx := context.Background()
	payload := strings.Repeat("x", 1000)
	const msgs, perMsg = 60, 50 // ~50 KB per message
	for m := range msgs {
		batch := make([]*bus.Change, perMsg)
		for i := range batch {
			batch[i] = row("t", bus.LSN(1000+m), i, payload)
		}
		if err := p.Publish(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "bounded", MaxFetchBytes: 500 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []bus.Change
	for rounds := 0; len(got) < msgs*perMsg; rounds++ {
		if rounds > msgs {
			t.Fatalf("%d changes after %d fetches", len(got), rounds)
		}
		fetched, err := r.Fetch(ctx, 1000, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var size int
		for _, m := range fetched {
			size += len(m.Data())
			cs, err := bus.DecodeChanges(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, cs...)
		}
		if len(fetched) == 0 || size > 600<<10 {
			t.Fatalf("fetch of %d messages, %d bytes: want some, and about 500 KiB at most", len(fetched), size)
		}
		if err := bus.AckBatch(ctx, fetched); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range got {
		if c.LSN != bus.LSN(1000+i/perMsg) || c.Pos != uint64(i%perMsg) {
			t.Fatalf("change %d is %s/%d: out of order", i, c.LSN, c.Pos)
		}
	}
}

// A dead letter whose event is too large to store with its reason is kept
// without the event, naming where it was, so that the stage goes on.
func TestDeadLetterTooLargeKeepsTheReason(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	ctx := context.Background()
	big := []byte(`"` + strings.Repeat("x", 9<<20) + `"`) // over the embedded server's 8 MiB
	dl := &bus.DeadLetter{Stage: "transform", Error: "script threw", Subject: bus.ChangeSubject("public", "t"), MsgID: "c:0/10:3", Event: big}
	if err := b.DeadLetter(ctx, dl); err != nil {
		t.Fatalf("dead letter of a huge event: %v", err)
	}
	s, err := b.JetStream().Stream(ctx, bus.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, bus.DLQSubject("transform"))
	if err != nil {
		t.Fatal(err)
	}
	var got bus.DeadLetter
	if err := bus.Decode(m.Data, &got); err != nil {
		t.Fatal(err)
	}
	if (len(got.Event) != 0 && string(got.Event) != "null") || got.Subject != "" || !strings.Contains(got.Error, "script threw") ||
		!strings.Contains(got.Error, "c:0/10:3") || !strings.Contains(got.Error, "not kept") {
		t.Fatalf("stored %+v", got)
	}
}
