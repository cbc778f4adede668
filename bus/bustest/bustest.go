// Package bustest runs a real embedded JetStream bus for tests.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// Bus is an embedded bus on a temporary directory, closed at test cleanup.
type Bus struct {
	*bus.Bus
	t testing.TB
}

// Open starts an embedded bus for t.
func Open(t testing.TB) *Bus {
	t.Helper()
	return OpenDir(t, t.TempDir())
}

// OpenDir starts an embedded bus storing under dir (reopen the same dir to
// simulate a restart).
func OpenDir(t testing.TB, dir string) *Bus {
	t.Helper()
	cfg := bus.DefaultConfig()
	cfg.DataDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return &Bus{Bus: b, t: t}
}

// Changes returns a change publisher closed at test cleanup.
func (b *Bus) Changes() *bus.ChangePublisher {
	b.t.Helper()
	p, err := b.NewChangePublisher()
	if err != nil {
		b.t.Fatalf("new change publisher: %v", err)
	}
	b.t.Cleanup(func() { p.Close() })
	return p
}

// ReadChanges consumes change events through a durable consumer named
// "bustest" until n arrived or timeout passed, and returns what arrived.
func (b *Bus) ReadChanges(n int, timeout time.Duration) []bus.Change {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "bustest"})
	if err != nil {
		b.t.Fatalf("reader: %v", err)
	}
	var out []bus.Change
	for len(out) < n && ctx.Err() == nil {
		msgs, err := r.Fetch(ctx, n-len(out), 200*time.Millisecond)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			b.t.Fatalf("fetch changes: %v", err)
		}
		for _, m := range msgs {
			cs, err := bus.DecodeChanges(m.Data())
			if err != nil {
				b.t.Fatalf("decode change: %v", err)
			}
			out = append(out, cs...)
		}
		if err := bus.AckBatch(ctx, msgs); err != nil {
			b.t.Fatalf("ack: %v", err)
		}
	}
	return out
}
