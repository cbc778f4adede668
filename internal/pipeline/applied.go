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
	"github.com/walsearch/walsearch/sink"
)

// AppliedKey is the state bucket key where the sink records its applied
// LSN, so that an API in another process can wait for it (read-your-writes).
const AppliedKey = "sink.applied"

// appliedRecordInterval is how often a sink running apart from the API
// records a moved applied LSN: it adds at most this to a read-your-writes
// wait on another process.
const appliedRecordInterval = 10 * time.Millisecond

// recordApplied writes the sink's applied LSN to the state bucket whenever
// it moved, until ctx ends: with several partitions, that of each
// partition this process holds, under AppliedKey.<k>.
func (p *Pipeline) recordApplied(ctx context.Context) error {
	t := time.NewTicker(appliedRecordInterval)
	defer t.Stop()
	last := map[string]bus.LSN{}
	n := p.Bus.Partitions()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sinks := map[int]*sink.Sink{}
		if p.partitioned() {
			sinks = p.parts.held()
		} else if _, sk := p.running(); sk != nil {
			sinks[0] = sk
		}
		for k, sk := range sinks {
			key := bus.PartitionName(AppliedKey, ".", k, n)
			applied := sk.Status().AppliedLSN
			if applied == last[key] {
				continue
			}
			if err := p.Bus.State().Put(ctx, key, []byte(applied.String())); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				p.log.Warn("record the applied position", "error", err)
				continue
			}
			last[key] = applied
		}
	}
}

// appliedWatch follows AppliedKey: with several partitions, the lowest of
// AppliedKey.<k>, each partition's (one not recorded yet counts as 0).
type appliedWatch struct {
	state      *bus.KV
	partitions int
	log        *slog.Logger
	lsn        atomic.Uint64

	byPartition map[string]bus.LSN // owned by run
}

func newAppliedWatch(state *bus.KV, partitions int, log *slog.Logger) *appliedWatch {
	return &appliedWatch{state: state, partitions: max(1, partitions), log: log, byPartition: map[string]bus.LSN{}}
}

func (w *appliedWatch) load() bus.LSN { return bus.LSN(w.lsn.Load()) }

// raise moves the applied LSN up to lsn (it never goes back).
func (w *appliedWatch) raise(lsn bus.LSN) {
	for {
		cur := w.lsn.Load()
		if uint64(lsn) <= cur || w.lsn.CompareAndSwap(cur, uint64(lsn)) {
			return
		}
	}
}

func (w *appliedWatch) parse(key string, v []byte) (bus.LSN, bool) {
	lsn, err := bus.ParseLSN(string(v))
	if err != nil {
		w.log.Warn("unreadable applied position in the state bucket", "key", key, "value", string(v))
		return 0, false
	}
	return lsn, true
}

// run watches the key until ctx ends, starting the watch again after the
// bus failed it.
func (w *appliedWatch) run(ctx context.Context) error {
	for ctx.Err() == nil {
		var err error
		if w.partitions > 1 {
			err = w.state.WatchKeys(ctx, AppliedKey+".*", func(key string, v []byte) {
				if v == nil {
					return
				}
				if lsn, ok := w.parse(key, v); ok {
					w.byPartition[key] = lsn
				}
				if len(w.byPartition) < w.partitions {
					return
				}
				low := bus.LSN(0)
				for k := range w.partitions {
					lsn := w.byPartition[bus.PartitionName(AppliedKey, ".", k, w.partitions)]
					if k == 0 || lsn < low {
						low = lsn
					}
				}
				w.raise(low)
			})
		} else {
			err = w.state.Watch(ctx, AppliedKey, func(v []byte) {
				if v == nil {
					return
				}
				if lsn, ok := w.parse(AppliedKey, v); ok {
					w.raise(lsn)
				}
			})
		}
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
