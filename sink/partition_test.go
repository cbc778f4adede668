package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/sink"
)

// TestTruncateIsABarrierAcrossPartitions: with two partitions, the sink of
// partition 1 is ahead (it wrote B, reached the TRUNCATE and has C, written
// after it, to write) while partition 0 lags (A, written before the
// TRUNCATE, not written yet). Partition 1 must wait at the truncate until
// partition 0 reached it: emptying the index at once and going on would
// let partition 0 write A afterwards — a row the TRUNCATE removed, back in
// the index for good (its truncate is then recorded as done) — and would
// keep C only by luck of who empties the index.
func TestTruncateIsABarrierAcrossPartitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	state := e.bus.State()
	newSink := func(k int) *sink.Sink {
		cfg := sink.DefaultConfig()
		cfg.Control, cfg.Partition, cfg.Partitions = state, k, 2
		s, err := sink.New(cfg, nil, e.es, e.bus.Bus)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s0, s1 := newSink(0), newSink(1)
	truncate := func() *bus.Doc {
		return &bus.Doc{Op: bus.DocTruncate, Index: "users", Version: 200, Table: "users", Schema: "public"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ahead := make(chan error, 1)
	go func() {
		ahead <- s1.Write(ctx, []*bus.Doc{idx("B", 100, `{"p":1}`), truncate(), idx("C", 300, `{"p":1}`)})
	}()
	// Partition 1 either finished (no barrier) or waits at the truncate.
	var aheadErr error
	aheadDone := false
	e.waitFor("partition 1 at the truncate or done", func() bool {
		select {
		case aheadErr = <-ahead:
			aheadDone = true
			return true
		default:
		}
		_, ok, _ := state.Get(ctx, sink.TruncateReachedKey+"users.1")
		return ok
	})
	if !aheadDone {
		if _, v, _ := e.get("users", "C"); v == 300 {
			t.Fatal("partition 1 wrote past the truncate before partition 0 reached it")
		}
	}
	if err := s0.Write(ctx, []*bus.Doc{idx("A", 100, `{"p":0}`), truncate()}); err != nil {
		t.Fatal(err)
	}
	if !aheadDone {
		aheadErr = <-ahead
	}
	if aheadErr != nil {
		t.Fatal(aheadErr)
	}
	for _, id := range []string{"A", "B"} {
		if _, _, found := e.get("users", id); found {
			t.Errorf("document %s, written before the TRUNCATE, is in the index after it", id)
		}
	}
	if _, v, found := e.get("users", "C"); !found || v != 300 {
		t.Errorf("document C, written after the TRUNCATE, is missing (found %v, version %d)", found, v)
	}
	// Delivered again (a partition's new holder), the truncate is skipped.
	if err := s1.Write(ctx, []*bus.Doc{truncate()}); err != nil {
		t.Fatal(err)
	}
	if _, _, found := e.get("users", "C"); !found {
		t.Error("the truncate, delivered again, emptied the index once more")
	}
}
