package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// AppliedKey is the state bucket key where the sink records its applied
// LSN, so that an API in another process can wait for it (read-your-writes).
const AppliedKey = "sink.applied"

// appliedRecordInterval is how often a sink running apart from the API
// records a moved applied LSN: it adds at most this to a read-your-writes
// wait on another process.
const appliedRecordInterval = 10 * time.Millisecond

// recordApplied writes the sink's applied LSN to the state bucket whenever
// it moved, until ctx ends.
func (p *Pipeline) recordApplied(ctx context.Context) error {
	t := time.NewTicker(appliedRecordInterval)
	defer t.Stop()
	var last bus.LSN
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		_, sk := p.running()
		if sk == nil {
			continue
		}
		applied := sk.Status().AppliedLSN
		if applied == last {
			continue
		}
		if err := p.Bus.State().Put(ctx, AppliedKey, []byte(applied.String())); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("record the applied position", "error", err)
			continue
		}
		last = applied
	}
}

// appliedWatch follows AppliedKey.
type appliedWatch struct {
	state *bus.KV
	log   *slog.Logger
	lsn   atomic.Uint64
}

func newAppliedWatch(state *bus.KV, log *slog.Logger) *appliedWatch {
	return &appliedWatch{state: state, log: log}
}

func (w *appliedWatch) load() bus.LSN { return bus.LSN(w.lsn.Load()) }

// run watches the key until ctx ends, starting the watch again after the
// bus failed it.
func (w *appliedWatch) run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := w.state.Watch(ctx, AppliedKey, func(v []byte) {
			if v == nil {
				return
			}
			lsn, err := bus.ParseLSN(string(v))
			if err != nil {
				w.log.Warn("unreadable applied position in the state bucket", "key", AppliedKey, "value", string(v))
				return
			}
			for {
				cur := w.lsn.Load()
				if uint64(lsn) <= cur || w.lsn.CompareAndSwap(cur, uint64(lsn)) {
					return
				}
			}
		})
		if err != nil && ctx.Err() == nil {
			w.log.Warn("watch the applied position", "error", err)
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

// holderID names this process in the capture lease: host, process id and
// a random part, so that a restarted process is a new holder.
func holderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}
