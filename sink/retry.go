package sink

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff waits before retry number attempt (1, 2, …): exponential from
// 100ms, capped at MaxBackoff, with full jitter so that many writers do not
// hammer a recovering cluster in step.
func (s *Sink) backoff(ctx context.Context, attempt int) error {
	ceiling := 100 * time.Millisecond << min(attempt-1, 16)
	if ceiling > s.cfg.MaxBackoff || ceiling <= 0 {
		ceiling = s.cfg.MaxBackoff
	}
	wait := ceiling/2 + rand.N(ceiling/2+1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
