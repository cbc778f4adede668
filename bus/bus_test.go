package bus_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
)

func TestPublishFlushReadInOrder(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	p := b.Changes()
	ctx := context.Background()
	const n = 5000
	for i := 0; i < n; i++ {
		ev := &bus.Change{Op: bus.OpInsert, Schema: "public", Table: "users", LSN: 100, Pos: uint64(i),
			Key: []bus.Column{{Name: "id", Value: i}}, Row: map[string]any{"id": i}}
		if err := p.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Republishing the same events is dropped by the duplicate window.
	for i := 0; i < 10; i++ {
		ev := &bus.Change{Op: bus.OpInsert, Schema: "public", Table: "users", LSN: 100, Pos: uint64(i)}
		if err := p.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := b.JetStream().Stream(ctx, bus.ChangesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("stream holds %d changes, want %d (republished ids must be dropped)", info.State.Msgs, n)
	}
	got := b.ReadChanges(n, 20*time.Second)
	if len(got) != n {
		t.Fatalf("read %d changes, want %d", len(got), n)
	}
	for i, c := range got {
		if c.Pos != uint64(i) || c.V != bus.SchemaVersion {
			t.Fatalf("change %d: pos %d v %d, out of order or unversioned", i, c.Pos, c.V)
		}
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	b := bustest.OpenDir(t, dir)
	if err := b.State().Put(ctx, "capture.walsearch.snapshot", []byte("0/16B3748")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b2 := bustest.OpenDir(t, dir)
	v, ok, err := b2.State().Get(ctx, "capture.walsearch.snapshot")
	if err != nil || !ok || string(v) != "0/16B3748" {
		t.Fatalf("after restart: %q %v %v", v, ok, err)
	}
	if _, ok, err := b2.State().Get(ctx, "missing"); ok || err != nil {
		t.Fatalf("missing key: found=%v err=%v", ok, err)
	}
}

func TestFlushReportsContextCancel(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	p := b.Changes()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Flush(ctx)
	if err != nil {
		t.Fatalf("flush with nothing pending must succeed even on a done context, got %v", err)
	}
	if err := p.Publish(ctx, &bus.Change{Op: bus.OpInsert, Schema: "s", Table: "t"}); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("publish on a done context: %v", err)
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	cfg := bus.Config{Replicas: -1, DuplicateWindow: 0, AckWait: 0}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"data_dir", "nats.replicas", "nats.duplicate_window", "nats.ack_wait"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestLSNRoundTrip(t *testing.T) {
	for _, s := range []string{"0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := bus.ParseLSN(s)
		if err != nil {
			t.Fatal(err)
		}
		if l.String() != s {
			t.Errorf("%s -> %s", s, l)
		}
	}
	for _, bad := range []string{"", "16", "x/1", "1/x", "100000000/0"} {
		if _, err := bus.ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) accepted", bad)
		}
	}
}

func TestDocumentID(t *testing.T) {
	cases := []struct {
		key  []bus.Column
		want string
	}{
		{[]bus.Column{{"id", int64(42)}}, "42"},
		{[]bus.Column{{"id", "abc"}}, "abc"},
		{[]bus.Column{{"a", int64(1)}, {"b", "eu"}}, `[1,"eu"]`},
	}
	for _, c := range cases {
		if got := bus.DocumentID(c.key); got != c.want {
			t.Errorf("DocumentID(%v) = %q, want %q", c.key, got, c.want)
		}
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestFetchReturnsPromptlyWhenIdle(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	ctx := context.Background()
	r, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "prompt"})
	if err != nil {
		t.Fatal(err)
	}
	p := b.Changes()
	if err := p.Publish(ctx, &bus.Change{Op: bus.OpInsert, Schema: "public", Table: "t", LSN: 1}); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Asking for 500 with a long wait must hand over the one message without
	// waiting out the timeout.
	start := time.Now()
	msgs, err := r.Fetch(ctx, 500, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("fetch waited %s for an available message", el)
	}
	if err := bus.AckBatch(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	msgs, err = r.Fetch(ctx, 10, 100*time.Millisecond)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("after ack: %d messages, err %v", len(msgs), err)
	}
}

func TestTableSchemaRoundTrip(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	ctx := context.Background()
	if ts, err := bus.GetTableSchema(ctx, b.State(), "public", "users"); ts != nil || err != nil {
		t.Fatalf("missing schema: %v %v", ts, err)
	}
	in := &bus.TableSchema{Schema: "public", Table: "users", Key: []string{"id"},
		Columns: []bus.ColumnSchema{{Name: "id", Type: "bigint", OID: 20}, {Name: "tags", Type: "text[]", OID: 1009, Array: true}}}
	if err := bus.PutTableSchema(ctx, b.State(), in); err != nil {
		t.Fatal(err)
	}
	out, err := bus.GetTableSchema(ctx, b.State(), "public", "users")
	if err != nil || out == nil || len(out.Columns) != 2 || out.Columns[1].Type != "text[]" || !out.Columns[1].Array || out.Key[0] != "id" {
		t.Fatalf("round trip: %+v %v", out, err)
	}
}

// TestOpenRefusesATakenListenAddressAtOnce: a nats.listen address another
// process holds is an error naming the setting, not a 30 s wait.
func TestOpenRefusesATakenListenAddressAtOnce(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := bus.DefaultConfig()
	cfg.DataDir, cfg.Listen = t.TempDir(), ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, cfg)
	if err == nil {
		b.Close()
		t.Fatal("opened a bus on a taken address")
	}
	if !strings.Contains(err.Error(), "nats.listen "+cfg.Listen) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error does not say which setting and why: %v", err)
	}
}

// A publisher writes on a connection of its own, over the embedded server's
// loopback listener: a batch of changes must not hold up the fetches and
// acknowledgements on the bus's connection, nor wait for the server to read
// it before capture reads on.
func TestPublisherHasItsOwnLoopbackConnection(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	p := b.Changes()
	ctx := context.Background()
	if addr := b.Conn().ConnectedAddr(); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("the bus's connection is to %q, want the embedded server's loopback listener", addr)
	}
	before := b.Conn().Stats().OutMsgs
	for i := range 100 {
		ev := &bus.Change{Op: bus.OpInsert, Schema: "public", Table: "users", LSN: 200, Pos: uint64(i),
			Key: []bus.Column{{Name: "id", Value: i}}, Row: map[string]any{"id": i}}
		if err := p.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if sent := b.Conn().Stats().OutMsgs - before; sent != 0 {
		t.Fatalf("%d messages of the publisher went out on the bus's shared connection, want none", sent)
	}
	if got := b.ReadChanges(100, 20*time.Second); len(got) != 100 {
		t.Fatalf("read %d changes, want 100", len(got))
	}
}
