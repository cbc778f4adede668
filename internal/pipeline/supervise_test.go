package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walsearch/walsearch/capture"
)

func TestSupervisorStopsOnFatalErrorsAndRetriesOthers(t *testing.T) {
	refused := &capture.SetupError{Err: capture.ErrNotOwned}
	var runs atomic.Int32
	sv := &supervised{name: "capture", log: slog.New(slog.DiscardHandler), run: func(context.Context) error {
		if runs.Add(1) < 3 {
			return errors.New("connection refused")
		}
		return refused
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := sv.loop(ctx)
	if !errors.Is(err, capture.ErrNotOwned) {
		t.Fatalf("loop = %v, want the fatal error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("loop went on retrying a fatal error")
	}
	if n := runs.Load(); n != 3 {
		t.Fatalf("stage ran %d times, want 3: two retried errors, then the fatal one", n)
	}
	if !errors.Is(sv.health(), capture.ErrNotOwned) {
		t.Fatalf("health = %v, want the fatal error", sv.health())
	}
}
