// Package sink writes document events to Elasticsearch with _bulk requests.
//
// Every index and delete carries the commit LSN as an external version
// (version_type=external_gte), so replays and redeliveries can never make a
// document older: Elasticsearch answers 409 to a stale write, which the sink
// counts as done. Messages are acknowledged to the bus only after
// Elasticsearch confirmed them, or after they were dead-lettered with the
// reason. Transient failures (429, 5xx, timeouts, connection errors) are
// retried without limit, with backoff; the backlog waits on disk in JetStream.
//
// The sink never reads PostgreSQL and never drops a document silently.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/esclient"
)

// Defaults for Config.
const (
	DefaultMinBatchSize  = 1
	DefaultMaxBatchSize  = 1000
	DefaultMaxBatchBytes = 8 << 20
	DefaultSyncInterval  = time.Second
	DefaultFetchWait     = time.Second
	DefaultMaxBackoff    = 30 * time.Second
)

// Config configures the sink.
type Config struct {
	// MinBatchSize is how many documents the sink waits for before sending a
	// bulk request, for at most SyncInterval. Env MIN_BATCH_SIZE. Default: 1
	// (send as soon as anything is there).
	MinBatchSize int
	// MaxBatchSize is the most documents per bulk request. Env MAX_BATCH_SIZE.
	// Default: 1000.
	MaxBatchSize int
	// MaxBatchBytes caps a bulk request body. Default: 8 MiB.
	MaxBatchBytes int
	// SyncInterval is the longest a document waits for a batch to fill up to
	// MinBatchSize. Env SYNC_INTERVAL (seconds). Default: 1s.
	SyncInterval time.Duration
	// RateLimit caps documents per second sent to Elasticsearch; 0 means no
	// limit. Env RATE_LIMIT. Default: 0.
	RateLimit float64
	// MaxBackoff caps the wait between retries of a failing request. Default: 30s.
	MaxBackoff time.Duration
	// AckWait must be the bus's ack wait: while a batch is retried the sink
	// tells the bus it is still working on it at a third of this interval.
	// Default: bus.DefaultAckWait.
	AckWait time.Duration
	Logger  *slog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		MinBatchSize: DefaultMinBatchSize, MaxBatchSize: DefaultMaxBatchSize, MaxBatchBytes: DefaultMaxBatchBytes,
		SyncInterval: DefaultSyncInterval, MaxBackoff: DefaultMaxBackoff, AckWait: bus.DefaultAckWait,
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBatchSize < 1 || c.MaxBatchSize > 100000 {
		errs = append(errs, fmt.Errorf("sink.max_batch_size (MAX_BATCH_SIZE): want 1 to 100000, got %d", c.MaxBatchSize))
	}
	if c.MinBatchSize < 1 || c.MinBatchSize > c.MaxBatchSize {
		errs = append(errs, fmt.Errorf("sink.min_batch_size (MIN_BATCH_SIZE): want 1 to max_batch_size (%d), got %d", c.MaxBatchSize, c.MinBatchSize))
	}
	if c.MaxBatchBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("sink.max_batch_bytes: want at least 1024, got %d", c.MaxBatchBytes))
	}
	if c.SyncInterval <= 0 {
		errs = append(errs, fmt.Errorf("sink.sync_interval (SYNC_INTERVAL): want a positive duration, got %s", c.SyncInterval))
	}
	if c.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("sink.rate_limit (RATE_LIMIT): want 0 (no limit) or more documents per second, got %g", c.RateLimit))
	}
	if c.MaxBackoff < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("sink.max_backoff: want at least 100ms, got %s", c.MaxBackoff))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("sink.ack_wait: want at least 1s, got %s", c.AckWait))
	}
	return errors.Join(errs...)
}

// Source delivers document messages in stream order.
type Source interface {
	Fetch(ctx context.Context, max int, wait time.Duration) ([]jetstream.Msg, error)
}

// DeadLetters stores documents Elasticsearch rejected for good.
type DeadLetters interface {
	DeadLetter(ctx context.Context, dl *bus.DeadLetter) error
}

// Status is a point-in-time view of the sink's progress.
type Status struct {
	Indexed     uint64  `json:"documents_indexed"`
	Deleted     uint64  `json:"documents_deleted"`
	Stale       uint64  `json:"stale_writes_skipped"`
	DeadLetters uint64  `json:"dead_lettered"`
	Retries     uint64  `json:"retries"`
	LastVersion bus.LSN `json:"last_written_lsn"`
	// AppliedLSN is the latest watermark reached: every transaction that
	// committed before it is written to the search engine (visible after the
	// next refresh).
	AppliedLSN bus.LSN   `json:"applied_lsn"`
	LastCommit time.Time `json:"last_commit_time,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
}

// Sink runs the indexing loop.
//
// Lifecycle: Run indexes batches until ctx is done and returns nil; a batch in
// flight when ctx ends is not acknowledged and will be delivered again. Run
// returns an error when the bus fails; the caller may call Run again.
type Sink struct {
	cfg     Config
	src     Source
	es      *esclient.Client
	dlq     DeadLetters
	log     *slog.Logger
	limiter *rate.Limiter

	mu     sync.Mutex
	status Status
}

// New returns a sink.
func New(cfg Config, src Source, es *esclient.Client, dlq DeadLetters) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{cfg: cfg, src: src, es: es, dlq: dlq, log: log.With("component", "sink")}
	if cfg.RateLimit > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), max(1, int(cfg.RateLimit)))
	}
	return s, nil
}

// Status returns the sink's progress counters.
func (s *Sink) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Run indexes document batches until ctx is done.
func (s *Sink) Run(ctx context.Context) error {
	for {
		msgs, err := s.fetchBatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		if len(msgs) == 0 {
			continue
		}
		if err := s.process(ctx, msgs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sink: %w", err)
		}
		if err := bus.AckBatch(ctx, msgs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sink: %w", err)
		}
	}
}

// fetchBatch gathers up to MaxBatchSize messages, waiting up to SyncInterval
// for MinBatchSize of them once the first has arrived.
func (s *Sink) fetchBatch(ctx context.Context) ([]jetstream.Msg, error) {
	msgs, err := s.src.Fetch(ctx, s.cfg.MaxBatchSize, DefaultFetchWait)
	if err != nil || len(msgs) == 0 || len(msgs) >= s.cfg.MinBatchSize {
		return msgs, err
	}
	deadline := time.Now().Add(s.cfg.SyncInterval)
	for len(msgs) < s.cfg.MinBatchSize {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		more, err := s.src.Fetch(ctx, s.cfg.MaxBatchSize-len(msgs), wait)
		if err != nil {
			return msgs, nil // process what we have; the error will recur on the next fetch
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

func (s *Sink) record(f func(*Status)) {
	s.mu.Lock()
	f(&s.status)
	s.mu.Unlock()
}
