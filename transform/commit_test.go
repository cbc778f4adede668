package transform_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/transform"
)

// heldPublisher is a fault injector standing for a slow downstream (the sink
// writing to an engine that does not answer): each Flush takes hold, or
// the first fails with failFirst. It records what each successful Flush
// stored.
type heldPublisher struct {
	hold      time.Duration
	failFirst error

	mu      sync.Mutex
	pending []*bus.Doc
	stored  []*bus.Doc
	flushes int
}

func (p *heldPublisher) Publish(_ context.Context, d *bus.Doc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, d)
	return nil
}

func (p *heldPublisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.flushes++
	first := p.flushes == 1
	docs := p.pending
	p.pending = nil
	p.mu.Unlock()
	if first && p.failFirst != nil {
		return p.failFirst
	}
	if p.hold > 0 {
		select {
		case <-time.After(p.hold): // the outage's length
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	p.stored = append(p.stored, docs...)
	p.mu.Unlock()
	return nil
}

func (p *heldPublisher) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, d := range p.stored {
		out = append(out, d.ID)
	}
	return out
}

// openBus opens an embedded bus whose consumers redeliver after ackWait.
func openBus(t *testing.T, ackWait time.Duration) *bus.Bus {
	t.Helper()
	cfg := bus.DefaultConfig()
	cfg.DataDir, cfg.AckWait = t.TempDir(), ackWait
	b, err := bus.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func publishChanges(t *testing.T, b *bus.Bus, ids ...int64) {
	t.Helper()
	ctx := context.Background()
	p, err := b.NewChangePublisher()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i, id := range ids {
		c := &bus.Change{Op: bus.OpInsert, Schema: "public", Table: "users", LSN: bus.LSN(100 + i),
			Key: []bus.Column{{Name: "id", Value: id}}, Row: map[string]any{"id": id}}
		if err := p.Publish(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// running is a stage started by startStage.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned, set before done is closed
}

// stop cancels Run and returns what it returned.
func (r *running) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// startStage runs a stage over b until the test ends.
func startStage(t *testing.T, b *bus.Bus, out transform.Publisher, ackWait time.Duration) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	src, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "transform"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := transform.DefaultConfig()
	cfg.AckWait, cfg.BatchSize = ackWait, 1 // a round per change: rounds overlap
	st, err := transform.New(cfg, src, out, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() { r.err = st.Run(ctx); close(r.done) }()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func consumerState(t *testing.T, b *bus.Bus) (pending, ackPending, redelivered int) {
	t.Helper()
	c, err := b.JetStream().Consumer(context.Background(), bus.ChangesStream, "transform")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(info.NumPending), info.NumAckPending, info.NumRedelivered
}

// TestStageKeepsItsChangesWhileTheirDocumentsAreHeld: while the documents
// of each round wait two ack-wait periods downstream, the changes of the
// rounds waiting behind it are not delivered again when the stage fetches
// next; every document is stored once, in order, and every change
// acknowledged.
func TestStageKeepsItsChangesWhileTheirDocumentsAreHeld(t *testing.T) {
	t.Parallel()
	const ackWait = time.Second
	b := openBus(t, ackWait)
	publishChanges(t, b, 1, 2, 3, 4)
	out := &heldPublisher{hold: 2 * ackWait}
	r := startStage(t, b, out, ackWait)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pending, ackPending, redelivered := consumerState(t, b)
		if redelivered != 0 {
			t.Fatalf("%d changes delivered again while their documents were held", redelivered)
		}
		if pending == 0 && ackPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("changes not acknowledged: %d pending, %d unacknowledged; stored %v", pending, ackPending, out.ids())
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if got := out.ids(); len(got) != 4 || got[0] != "1" || got[1] != "2" || got[2] != "3" || got[3] != "4" {
		t.Fatalf("stored documents %v, want 1 2 3 4 once each, in order", got)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestStageFailsWithoutAcknowledgingWhenDocumentsAreNotStored: a Flush that
// fails ends Run with its error, and the round's changes stay on the bus
// for the next Run, which stores them.
func TestStageFailsWithoutAcknowledgingWhenDocumentsAreNotStored(t *testing.T) {
	t.Parallel()
	const ackWait = time.Second
	b := openBus(t, ackWait)
	publishChanges(t, b, 1, 2)
	failure := errors.New("fault injection: engine refused")
	failed := startStage(t, b, &heldPublisher{failFirst: failure}, ackWait)
	select {
	case <-failed.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not end on the publisher's failure")
	}
	if !errors.Is(failed.err, failure) {
		t.Fatalf("Run returned %v, want the publisher's failure", failed.err)
	}
	out := &heldPublisher{}
	startStage(t, b, out, ackWait)
	deadline := time.Now().Add(2 * time.Minute)
	for len(out.ids()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after a restart, stored %v; want both changes' documents", out.ids())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if got := out.ids(); got[0] != "1" || got[1] != "2" {
		t.Fatalf("after a restart, stored %v; want 1 2", got)
	}
}

// gatedPublisher is a fault injector: the Flush holding the document id
// gate waits until release is closed, after saying so on entered.
type gatedPublisher struct {
	gate    string
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	pending []*bus.Doc
	stored  int
}

func (p *gatedPublisher) Publish(_ context.Context, d *bus.Doc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, d)
	return nil
}

func (p *gatedPublisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	docs := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, d := range docs {
		if d.ID == p.gate {
			close(p.entered)
			select {
			case <-p.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	p.mu.Lock()
	p.stored += len(docs)
	p.mu.Unlock()
	return nil
}

func streamState(t *testing.T, b *bus.Bus) (msgs, first uint64) {
	t.Helper()
	st, err := b.JetStream().Stream(context.Background(), bus.ChangesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, info.State.FirstSeq
}

// TestStageAcknowledgesOneMessageBehind: the newest change whose documents
// are stored stays on the bus until the next round is acknowledged, so the
// work queue does not empty (and the server does not delete and create
// its block file) between rounds; what is acknowledged is a prefix, in
// order; after a quiet moment the last change is acknowledged too.
func TestStageAcknowledgesOneMessageBehind(t *testing.T) {
	t.Parallel()
	b := openBus(t, bus.DefaultAckWait)
	publishChanges(t, b, 1, 2, 3, 4) // stream sequences 1 to 4, a round each
	out := &gatedPublisher{gate: "4", entered: make(chan struct{}), release: make(chan struct{})}
	r := startStage(t, b, out, bus.DefaultAckWait)
	select {
	case <-out.entered:
	case <-time.After(2 * time.Minute):
		t.Fatal("the fourth round was not written")
	}
	// Rounds 1 to 3 are committed: 1 and 2 are acknowledged, 3 is held.
	if msgs, first := streamState(t, b); msgs != 2 || first != 3 {
		t.Fatalf("while the fourth round is written the stream holds %d changes from sequence %d, want 2 from 3 (the third held back)", msgs, first)
	}
	close(out.release)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		msgs, _ := streamState(t, b)
		pending, ackPending, redelivered := consumerState(t, b)
		if redelivered != 0 {
			t.Fatalf("%d changes delivered again", redelivered)
		}
		if msgs == 0 && pending == 0 && ackPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last change was not acknowledged once the stage was quiet: %d in the stream, %d unacknowledged", msgs, ackPending)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out.stored != 4 {
		t.Fatalf("stored %d documents, want 4", out.stored)
	}
}
