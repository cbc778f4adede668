package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// supervised runs a stage again after it fails, with capped exponential
// backoff, until its context ends. A stage that ran cleanly for a minute
// starts its backoff over.
type supervised struct {
	name string
	log  *slog.Logger
	run  func(context.Context) error

	mu      sync.Mutex
	lastErr error
	running bool
}

func (s *supervised) loop(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		s.set(true, nil)
		start := time.Now()
		err := s.run(ctx)
		if ctx.Err() != nil {
			s.set(false, nil)
			return
		}
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		s.set(false, err)
		if time.Since(start) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		s.log.Error("stage failed; restarting", "stage", s.name, "error", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (s *supervised) set(running bool, err error) {
	s.mu.Lock()
	s.running, s.lastErr = running, err
	s.mu.Unlock()
}

func (s *supervised) health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil {
		return s.lastErr
	}
	if !s.running {
		return errors.New("not running")
	}
	return nil
}
