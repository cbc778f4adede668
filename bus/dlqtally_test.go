package bus

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestDeadLetterTable(t *testing.T) {
	change := func(schema, table string) []byte {
		ev, _ := json.Marshal(Change{V: 1, Op: OpInsert, Schema: schema, Table: table})
		dl, _ := json.Marshal(DeadLetter{Stage: "transform", Subject: ChangeSubject(schema, table), Event: ev})
		return dl
	}
	doc, _ := json.Marshal(Doc{V: 1, Op: DocIndex, Index: "orders-eu", Schema: "shop", Table: "orders"})
	routed, _ := json.Marshal(DeadLetter{Stage: "sink", Subject: DocSubject("orders-eu"), Event: doc})
	batch, _ := json.Marshal(DeadLetter{Stage: "transform", Subject: ChangeSubject("Odd Schema", "t.a~b"),
		Event: json.RawMessage(`[{"v":1,"op":"insert"}]`)})
	unreadable, _ := json.Marshal(DeadLetter{Stage: "sink", Subject: DocSubject("x"), Event: json.RawMessage(`"?"`)})
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"a change", change("public", "users"), "public.users"},
		{"a document names its table, not its index", routed, "shop.orders"},
		{"an event without a table: the change subject", batch, "Odd Schema.t.a~b"},
		{"neither", unreadable, ""},
		{"not a dead letter", []byte("garbage"), ""},
	} {
		if got := deadLetterTable(tc.data); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestDLQTallyFollowsTheStream counts real dead letters in an embedded bus
// while entries are added, removed one by one, purged by stage, and added
// again, comparing each time with the stream's own count.
func TestDLQTallyFollowsTheStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bc := DefaultConfig()
	bc.DataDir = t.TempDir()
	b, err := Open(ctx, bc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	put := func(stage, schema, table string, n int) {
		t.Helper()
		for range n {
			ev, _ := json.Marshal(Change{V: 1, Op: OpInsert, Schema: schema, Table: table})
			if err := b.DeadLetter(ctx, &DeadLetter{Stage: stage, Subject: ChangeSubject(schema, table), Event: ev}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tally := newDLQTally(b.JetStream())
	check := func(total uint64, want map[string]uint64) {
		t.Helper()
		n, byTable, err := tally.count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := b.DeadLetters().Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != total || stored != total || !maps.Equal(byTable, want) {
			t.Fatalf("count %d (stream %d) %v, want %d %v", n, stored, byTable, total, want)
		}
	}
	check(0, map[string]uint64{})
	put("transform", "public", "users", 3)
	put("sink", "shop", "orders", 2000) // more than one fetch
	if err := b.DeadLetter(ctx, &DeadLetter{Stage: "sink", Subject: DocSubject("x"), Event: json.RawMessage(`"?"`)}); err != nil {
		t.Fatal(err)
	}
	check(2004, map[string]uint64{"public.users": 3, "shop.orders": 2000})
	check(2004, map[string]uint64{"public.users": 3, "shop.orders": 2000}) // nothing new: nothing read

	s, err := b.JetStream().Stream(ctx, DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, 2); err != nil { // the second users entry
		t.Fatal(err)
	}
	put("transform", "public", "users", 1)
	check(2004, map[string]uint64{"public.users": 3, "shop.orders": 2000})

	if err := s.Purge(ctx, jetstream.WithPurgeSubject(DLQSubject("sink"))); err != nil {
		t.Fatal(err)
	}
	check(3, map[string]uint64{"public.users": 3})
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	check(0, map[string]uint64{})
	put("sink", "shop", "orders", 1)
	check(1, map[string]uint64{"shop.orders": 1})

	// Counting leaves no consumer behind.
	names := s.ConsumerNames(ctx)
	var left []string
	for n := range names.Name() {
		left = append(left, n)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("consumers left on the dead-letter stream: %v", left)
	}
}

// faultyJetStream is a fault injector: the consumers created on its streams
// refuse every fetch once *fetches reaches 0.
type faultyJetStream struct {
	jetstream.JetStream
	fetches *int
}

func (f faultyJetStream) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := f.JetStream.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return faultyStream{Stream: s, fetches: f.fetches}, nil
}

type faultyStream struct {
	jetstream.Stream
	fetches *int
}

func (f faultyStream) CreateConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := f.Stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return faultyConsumer{Consumer: c, fetches: f.fetches}, nil
}

type faultyConsumer struct {
	jetstream.Consumer
	fetches *int
}

func (f faultyConsumer) FetchNoWait(n int) (jetstream.MessageBatch, error) {
	if *f.fetches <= 0 {
		return nil, errors.New("fault injected: fetch refused")
	}
	*f.fetches--
	return f.Consumer.FetchNoWait(n)
}

// TestDLQTallyReportsTheTotalWhenReadingFails: when reading the entries
// fails part-way, the total is still reported (without a breakdown), and
// the next count goes on from what was read.
func TestDLQTallyReportsTheTotalWhenReadingFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bc := DefaultConfig()
	bc.DataDir = t.TempDir()
	b, err := Open(ctx, bc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for range 3 * dlqReadBatch {
		ev, _ := json.Marshal(Change{V: 1, Op: OpInsert, Schema: "public", Table: "users"})
		if err := b.DeadLetter(ctx, &DeadLetter{Stage: "transform", Subject: ChangeSubject("public", "users"), Event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	fetches := 1
	tally := newDLQTally(faultyJetStream{JetStream: b.JetStream(), fetches: &fetches})
	n, byTable, err := tally.count(ctx)
	if err == nil || n != 3*dlqReadBatch || byTable != nil {
		t.Fatalf("with the second fetch refused: %d %v %v, want the total, no breakdown and the error", n, byTable, err)
	}
	if tally.last != dlqReadBatch {
		t.Fatalf("read up to %d before the fault, want %d", tally.last, dlqReadBatch)
	}
	fetches = 2 // what is left: two batches
	n, byTable, err = tally.count(ctx)
	if err != nil || n != 3*dlqReadBatch || !maps.Equal(byTable, map[string]uint64{"public.users": 3 * dlqReadBatch}) {
		t.Fatalf("after the fault: %d %v %v", n, byTable, err)
	}
}
