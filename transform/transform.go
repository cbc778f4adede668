// Package transform turns change events into document events: it decides, per
// table, which document (if any) a row becomes, in which index, and routes
// events it cannot process to the dead-letter stream.
//
// It never talks to PostgreSQL or Elasticsearch, and never acknowledges a
// change before the documents it produced are durably published (or the
// change is dead-lettered).
package transform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
)

// Defaults for Config.
const (
	DefaultBatchSize = 500
	DefaultFetchWait = time.Second
)

// Config configures the transform stage.
type Config struct {
	// BatchSize is the most changes processed per round. Default: 500.
	BatchSize int
	// FetchWait is how long to wait for changes when idle. Default: 1s.
	FetchWait time.Duration
	Logger    *slog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{BatchSize: DefaultBatchSize, FetchWait: DefaultFetchWait}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.BatchSize < 1 || c.BatchSize > 20000 {
		errs = append(errs, fmt.Errorf("transform.batch_size: want 1 to 20000, got %d", c.BatchSize))
	}
	if c.FetchWait <= 0 {
		errs = append(errs, fmt.Errorf("transform.fetch_wait: want a positive duration, got %s", c.FetchWait))
	}
	return errors.Join(errs...)
}

// Source delivers change messages in stream order.
type Source interface {
	Fetch(ctx context.Context, max int, wait time.Duration) ([]jetstream.Msg, error)
}

// Publisher publishes document events; Flush returns once all are durable.
type Publisher interface {
	Publish(ctx context.Context, d *bus.Doc) error
	Flush(ctx context.Context) error
}

// DeadLetters stores events that cannot be processed.
type DeadLetters interface {
	DeadLetter(ctx context.Context, dl *bus.DeadLetter) error
}

// Mapper turns one change into the document events to publish. Returning an
// error dead-letters the change.
type Mapper interface {
	Map(c *bus.Change) ([]*bus.Doc, error)
}

// Stage runs the transform loop.
//
// Lifecycle: Run processes batches until ctx is done and then returns nil;
// a batch in progress when ctx ends is left unacknowledged and is delivered
// again. Run returns an error when the bus fails; the caller may call Run again.
type Stage struct {
	cfg    Config
	src    Source
	out    Publisher
	dlq    DeadLetters
	mapper Mapper
	log    *slog.Logger
}

// New returns a transform stage. A nil mapper uses Identity.
func New(cfg Config, src Source, out Publisher, dlq DeadLetters, mapper Mapper) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if mapper == nil {
		mapper = Identity{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stage{cfg: cfg, src: src, out: out, dlq: dlq, mapper: mapper, log: log.With("component", "transform")}, nil
}

// Run processes change batches until ctx is done.
func (s *Stage) Run(ctx context.Context) error {
	for {
		msgs, err := s.src.Fetch(ctx, s.cfg.BatchSize, s.cfg.FetchWait)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("transform: %w", err)
		}
		if len(msgs) == 0 {
			continue
		}
		if err := s.process(ctx, msgs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("transform: %w", err)
		}
	}
}

func (s *Stage) process(ctx context.Context, msgs []jetstream.Msg) error {
	for _, m := range msgs {
		var c bus.Change
		docs, err := s.decodeAndMap(m.Data(), &c)
		if err != nil {
			if err := s.deadLetter(ctx, m, err); err != nil {
				return err
			}
			continue
		}
		for _, d := range docs {
			if err := s.out.Publish(ctx, d); err != nil {
				return fmt.Errorf("publish document: %w", err)
			}
		}
	}
	if err := s.out.Flush(ctx); err != nil {
		return fmt.Errorf("flush documents: %w", err)
	}
	if err := bus.AckBatch(ctx, msgs); err != nil {
		return err
	}
	return nil
}

func (s *Stage) decodeAndMap(data []byte, c *bus.Change) ([]*bus.Doc, error) {
	if err := bus.Decode(data, c); err != nil {
		return nil, err
	}
	return s.mapper.Map(c)
}

func (s *Stage) deadLetter(ctx context.Context, m jetstream.Msg, cause error) error {
	dl := &bus.DeadLetter{Stage: "transform", Error: cause.Error(), Subject: m.Subject(), Event: m.Data()}
	if h := m.Headers(); h != nil {
		dl.MsgID = h.Get(jetstream.MsgIDHeader)
	}
	var se *ScriptError
	if errors.As(cause, &se) {
		dl.Stack = se.Stack
	}
	if err := s.dlq.DeadLetter(ctx, dl); err != nil {
		return fmt.Errorf("dead-letter change: %w", err)
	}
	s.log.Warn("change dead-lettered", "subject", m.Subject(), "error", cause)
	return nil
}
