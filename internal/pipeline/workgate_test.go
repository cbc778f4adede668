package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/internal/config"
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

// TestWorkLeaseKeysAreValidKeys: every work lease (and partition lease)
// can be taken: a key-value key allows [-/_=.a-zA-Z0-9] only, and a key
// outside it made the lease of `--role transform,sink` impossible to
// acquire.
func TestWorkLeaseKeysAreValidKeys(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, roles := range []config.Roles{{config.RoleTransform: true, config.RoleSink: true},
		{config.RoleTransform: true}, {config.RoleSink: true}} {
		key := workLeaseKey(roles)
		for _, k := range []string{key, bus.PartitionName(key, ".", 3, 4)} {
			l, err := b.OpenLease(ctx, bus.LeaseConfig{Key: k, Holder: "test", TTL: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := l.TryAcquire(ctx); !ok || err != nil {
				t.Fatalf("lease %q: taken %v, %v", k, ok, err)
			}
		}
	}
}
