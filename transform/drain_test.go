package transform_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/transform"
)

// TestRunUntilDrainAcknowledgesWhatItFetched: a stage told to drain (its
// partition is handed to another process) fetches nothing more, publishes
// and acknowledges the rounds it holds, and returns; nothing it fetched is
// left for the next holder to do again, and the next holder does the rest.
func TestRunUntilDrainAcknowledgesWhatItFetched(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 3000
	pub := b.Changes()
	for i := range n {
		c := &bus.Change{Op: bus.OpInsert, Schema: "public", Table: "users", LSN: bus.LSN(1000 + i),
			Key: []bus.Column{{Name: "id", Value: json.Number(strconv.Itoa(i))}}, Row: map[string]any{"id": i}}
		if err := pub.Publish(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := b.NewDocPublisher()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	stage := func() *transform.Stage {
		src, err := b.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "transform"})
		if err != nil {
			t.Fatal(err)
		}
		cfg := transform.DefaultConfig()
		cfg.BatchSize = 100 // many rounds
		st, err := transform.New(cfg, src, out, b.Bus, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	docs := newDocReader(t, b)
	drain := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- stage().RunUntil(ctx, drain) }()
	docs.read(1) // it works
	close(drain)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("RunUntil did not return within a minute of drain")
	}
	cons, err := b.JetStream().Consumer(ctx, bus.ChangesStream, "transform")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 {
		t.Fatalf("%d changes fetched and left unacknowledged after the drain", info.NumAckPending)
	}
	if info.NumPending == 0 {
		t.Log("the stage drained everything before it saw the drain; the hand-over is not exercised")
	}
	// The next holder does the rest, once.
	next, stop := context.WithCancel(ctx)
	go func() { done <- stage().Run(next) }()
	got := map[string]int{}
	for _, d := range docs.read(n - 1) {
		got[d.ID]++
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for id, k := range got {
		if k > 1 {
			t.Errorf("document %s published %d times", id, k)
		}
	}
}
