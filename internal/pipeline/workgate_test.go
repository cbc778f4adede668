package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// TestStagesRunOnlyWhileTheWorkLeaseIsHeld: a stage behind the gate waits
// for the lease, stops when it is lost with an error (so that its
// supervisor runs it again), and runs again once the lease is held again.
func TestStagesRunOnlyWhileTheWorkLeaseIsHeld(t *testing.T) {
	t.Parallel()
	gate := &workGate{ready: make(chan struct{})}
	started := make(chan struct{}, 2)
	stage := whenHeld(gate, func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		return nil
	})
	ctx := context.Background()
	result := make(chan error, 1)
	go func() { result <- stage(ctx) }()
	select {
	case <-started:
		t.Fatal("the stage ran before the lease was held")
	case <-time.After(50 * time.Millisecond): // a stage that wrongly starts does so at once
	}
	held, lost := context.WithCancel(ctx)
	gate.open(held)
	<-started
	gate.close()
	lost()
	if err := <-result; !errors.Is(err, bus.ErrLeaseLost) {
		t.Fatalf("the stage returned %v when the lease was lost, want an error wrapping ErrLeaseLost", err)
	}
	// Run again, as the supervisor does: it waits for the next hold.
	go func() { result <- stage(ctx) }()
	held2, lost2 := context.WithCancel(ctx)
	defer lost2()
	gate.open(held2)
	<-started
	stopCtx, stop := context.WithCancel(ctx)
	stop()
	if _, ok := gate.wait(stopCtx); ok != true {
		t.Fatal("wait did not return the current hold")
	}
}
