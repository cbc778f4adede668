package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// supervised runs a stage again after it fails, with capped exponential
// backoff, until its context ends. A stage that ran cleanly for a minute
// starts its backoff over. An error that says retrying cannot fix it (a
// Fatal() true method, such as capture's ownership errors) stops the loop:
// loop returns it so that the process stops.
type supervised struct {
	name string
	log  *slog.Logger
	run  func(context.Context) error

	mu      sync.Mutex
	lastErr error
	running bool
}

func (s *supervised) loop(ctx context.Context) error {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		s.set(true, nil)
		start := time.Now()
		err := s.run(ctx)
		if ctx.Err() != nil {
			s.set(false, nil)
			return nil
		}
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		s.set(false, err)
		if fatal(err) {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if time.Since(start) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		s.log.Error("stage failed; restarting", "stage", s.name, "error", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, 30*time.Second)
	}
	return nil
}

// fatal reports whether err, or an error it wraps, says that retrying
// cannot fix it.
func fatal(err error) bool {
	var f interface{ Fatal() bool }
	return errors.As(err, &f) && f.Fatal()
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
