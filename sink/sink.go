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
	"hash/maphash"
	"log/slog"
	"slices"
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
	DefaultConcurrency   = 4
	DefaultSlowRequest   = 2 * time.Second

	// DefaultMaxContentLength is Elasticsearch's default
	// http.max_content_length (100mb).
	DefaultMaxContentLength = 100 << 20

	// maxFetch bounds the messages held in memory at once (with MaxBatchSize
	// and Concurrency at their maxima), well under the consumer's
	// MaxAckPending.
	maxFetch = 10000
	// topUpWait is how long fetchBatch waits for more messages once some
	// arrived: next to nothing, it only takes what is ready.
	topUpWait = time.Millisecond
)

// Config configures the sink.
type Config struct {
	// MinBatchSize is how many documents the sink waits for before sending a
	// bulk request, for at most SyncInterval. Env MIN_BATCH_SIZE. Default: 1
	// (send as soon as anything is there).
	MinBatchSize int `koanf:"min_batch_size" help:"documents the sink waits for before it sends a bulk request, for at most sink.sync_interval"`
	// MaxBatchSize is the most documents per bulk request. Env MAX_BATCH_SIZE.
	// Default: 1000.
	MaxBatchSize int `koanf:"max_batch_size" help:"most documents in one bulk request (1 to 100000)"`
	// MaxBatchBytes caps a bulk request body. Default: 8 MiB.
	MaxBatchBytes int `koanf:"-"`
	// MaxContentLength is the search engine's request size limit
	// (Elasticsearch's http.max_content_length). A document whose bulk item
	// alone is larger can never be accepted: it is dead-lettered without
	// being sent. Bulk requests never exceed it either. Default: 100 MiB,
	// Elasticsearch's default.
	MaxContentLength int `koanf:"max_content_length" help:"the search engine's request size limit in bytes (Elasticsearch's http.max_content_length): a document too large to fit a request on its own is dead-lettered instead of sent"`
	// SyncInterval is the longest a document waits for a batch to fill up to
	// MinBatchSize. Env SYNC_INTERVAL (seconds). Default: 1s.
	SyncInterval time.Duration `koanf:"sync_interval" help:"longest a document waits for its batch to fill up to sink.min_batch_size"`
	// RateLimit caps documents per second sent to Elasticsearch; 0 means no
	// limit. Env RATE_LIMIT. Default: 0.
	RateLimit float64 `koanf:"rate_limit" help:"documents per second sent to the search engine; 0 means no limit"`
	// MaxBackoff caps the wait between retries of a failing request. Default: 30s.
	MaxBackoff time.Duration `koanf:"-"`
	// Concurrency is the number of lanes: documents are partitioned by a hash
	// of their index and id, each lane sends one bulk request at a time, in
	// order, so up to Concurrency requests are in flight while every
	// document's writes stay ordered. Env SINK_CONCURRENCY. Default: 4.
	Concurrency int `koanf:"concurrency" help:"ordered lanes, each with one bulk request in flight (1 to 64); a document's writes always stay in order"`
	// SlowRequest is the bulk response time above which the sink halves its
	// batch size, as it does on a 429; below half of it the batch size grows
	// again, step by step, up to MaxBatchSize. Default: 2s.
	SlowRequest time.Duration `koanf:"-"`
	// Indices overrides index names, settings and mappings, keyed like
	// document index names ("users" for public.users, "schema.table").
	Indices map[string]IndexConfig `koanf:"-"`
	// Schemas is where capture stores table schemas (the bus state KV); the
	// mapping of a table's index is derived from its column types. Nil means
	// dynamic mapping only.
	Schemas bus.SchemaStore `koanf:"-"`
	// SchemaRecheck is how often stored schemas are checked for new columns.
	// Default: 10s.
	SchemaRecheck time.Duration `koanf:"-"`
	// Control is where reindex requests and their progress are kept (the bus
	// state KV). Nil disables reindex requests.
	Control ControlStore `koanf:"-"`
	// ControlPoll is how often the sink looks for a reindex request.
	// Default: 1s.
	ControlPoll time.Duration `koanf:"-"`
	// ReindexGrace is how long a replaced index is kept after a reindex
	// swapped the alias. Default: 1m.
	ReindexGrace time.Duration `koanf:"reindex_grace" help:"how long walsearch reindex keeps the replaced index after it moved the alias"`
	// Partition and Partitions place this sink among the partitions of the
	// bus (bus.Config.Partitions): it writes partition Partition's
	// documents. With several partitions a truncate is a barrier across
	// them (see truncate.go), and only partition 0's sink serves
	// index-level requests (reindex). Default: 0 of 1.
	Partition  int `koanf:"-"`
	Partitions int `koanf:"-"`
	// AckWait must be the bus's ack wait: while a batch is retried the sink
	// tells the bus it is still working on it at a third of this interval.
	// Default: bus.DefaultAckWait.
	AckWait time.Duration `koanf:"-"`
	Logger  *slog.Logger  `koanf:"-"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		MinBatchSize: DefaultMinBatchSize, MaxBatchSize: DefaultMaxBatchSize, MaxBatchBytes: DefaultMaxBatchBytes,
		SyncInterval: DefaultSyncInterval, MaxBackoff: DefaultMaxBackoff, AckWait: bus.DefaultAckWait,
		Concurrency: DefaultConcurrency, SlowRequest: DefaultSlowRequest, SchemaRecheck: DefaultSchemaRecheck,
		ControlPoll: DefaultControlPoll, ReindexGrace: DefaultReindexGrace, MaxContentLength: DefaultMaxContentLength,
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
	if c.MaxContentLength < 1<<10 {
		errs = append(errs, fmt.Errorf("sink.max_content_length: want the search engine's http.max_content_length in bytes, at least 1024, got %d", c.MaxContentLength))
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
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("sink.concurrency (SINK_CONCURRENCY): want 1 to 64, got %d", c.Concurrency))
	}
	if c.SlowRequest < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("sink.slow_request: want at least 10ms, got %s", c.SlowRequest))
	}
	if c.ControlPoll <= 0 {
		errs = append(errs, fmt.Errorf("sink.control_poll: want a positive duration, got %s", c.ControlPoll))
	}
	if c.ReindexGrace < 0 {
		errs = append(errs, fmt.Errorf("sink.reindex_grace: want 0 or more, got %s", c.ReindexGrace))
	}
	if c.SchemaRecheck <= 0 {
		errs = append(errs, fmt.Errorf("sink.schema_recheck: want a positive duration, got %s", c.SchemaRecheck))
	}
	for name, ic := range c.Indices {
		if ic.Index != "" && AliasName(ic.Index) != ic.Index {
			errs = append(errs, fmt.Errorf("indices.%s.index: %q is not a usable index name (lower case, no \\/*?\"<>|,#: or spaces, not starting with _-+, not ending in _v<digits>)", name, ic.Index))
		}
	}
	if c.Partitions < 0 || c.Partition < 0 || c.Partition >= max(1, c.Partitions) {
		errs = append(errs, fmt.Errorf("sink partition %d of %d: want 0 to partitions-1", c.Partition, c.Partitions))
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
	Indexed     uint64 `json:"documents_indexed"`
	Deleted     uint64 `json:"documents_deleted"`
	Stale       uint64 `json:"stale_writes_skipped"`
	DeadLetters uint64 `json:"dead_lettered"`
	Retries     uint64 `json:"retries"`
	// Splits counts bulk requests that timed out and were sent again as
	// two halves.
	Splits      uint64  `json:"timeout_splits"`
	LastVersion bus.LSN `json:"last_written_lsn"`
	// AppliedLSN is the latest watermark reached: every transaction that
	// committed before it is written to the search engine (visible after the
	// next refresh).
	AppliedLSN bus.LSN   `json:"applied_lsn"`
	LastCommit time.Time `json:"last_commit_time,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	// BatchSize is the current most documents per bulk request, adapted to
	// Elasticsearch's response times and rejections.
	BatchSize int `json:"batch_size"`
	// InFlight is the number of bulk requests being sent now.
	InFlight int `json:"bulk_requests_in_flight"`
	// BulkDocs counts the bulk requests sent (retries not counted again) by
	// their number of documents: BulkDocs[i] counts those of at most
	// BulkDocBuckets()[i] documents and above the bound before; the last
	// counts the larger ones. BulkDocsSum is their documents in all.
	BulkDocs    [bulkBuckets + 1]uint64 `json:"-"`
	BulkDocsSum uint64                  `json:"-"`
	// Reindexing names the indices being rebuilt.
	Reindexing []string `json:"reindexing,omitempty"`
}

// BulkDocBuckets returns the upper bounds of Status.BulkDocs, in documents
// per bulk request.
func BulkDocBuckets() [bulkBuckets]float64 {
	return [bulkBuckets]float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
}

const bulkBuckets = 10

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
	idx     *indexManager
	// laneSeed keys the hash that assigns documents to lanes.
	laneSeed maphash.Seed
	// bufs holds *bytes.Buffer for bulk answers, which are alike in size
	// from one request to the next.
	bufs sync.Pool

	// writeMu makes batches apply one at a time, whether Run fetched them
	// or Write was handed them, and keeps reindex control between batches.
	writeMu sync.Mutex

	mu     sync.Mutex
	status Status
	// reindex holds the running reindex, if any (one at a time).
	reindex *reindexJob
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
	s.idx = newIndexManager(s)
	s.laneSeed = maphash.MakeSeed()
	s.status.BatchSize = cfg.MaxBatchSize
	if cfg.RateLimit > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), max(1, int(cfg.RateLimit)))
	}
	return s, nil
}

// Status returns the sink's progress counters.
func (s *Sink) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Reindexing = slices.Clone(st.Reindexing)
	return st
}

// Run indexes document batches until ctx is done.
//
// Between batches, when no write is in flight, Run also serves reindex
// requests (see reindex.go); a copy running when Run returns is stopped and
// resumes on the next Run.
// UseSource replaces the source Run reads, between two runs: a stage run
// again after a failure reads through a new reader, which gets the failed
// batch first (see bus.Bus.NewReader). Not safe while Run runs.
func (s *Sink) UseSource(src Source) { s.src = src }

func (s *Sink) Run(ctx context.Context) error { return s.RunUntil(ctx, nil) }

// RunUntil is Run that also ends, with nil, once drain is closed: the
// batch being written is written and acknowledged, and nothing more is
// fetched. A nil drain never closes.
func (s *Sink) RunUntil(ctx context.Context, drain <-chan struct{}) error {
	defer s.stopReindex()
	var lastControl time.Time
	for {
		select {
		case <-drain:
			return nil
		default:
		}
		if time.Since(lastControl) >= s.cfg.ControlPoll {
			s.writeMu.Lock()
			s.control(ctx)
			s.writeMu.Unlock()
			lastControl = time.Now()
		}
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

// fetchBatch gathers up to batch size × Concurrency messages (at most
// maxFetch), waiting up to SyncInterval for MinBatchSize of them once the
// first has arrived.
func (s *Sink) fetchBatch(ctx context.Context) ([]jetstream.Msg, error) {
	want := min(maxFetch, max(s.cfg.MinBatchSize, s.batchSize()*s.cfg.Concurrency))
	msgs, err := s.src.Fetch(ctx, want, DefaultFetchWait)
	if err != nil || len(msgs) == 0 {
		return msgs, err
	}
	// One fetch returns what the bus had ready, often a fraction of a
	// backlog (a few hundred to a few thousand messages): top the batch up
	// with what is there already, so that a backlog drains in full-size
	// bulk requests instead of many small ones.
	for len(msgs) < want {
		more, err := s.src.Fetch(ctx, want-len(msgs), topUpWait)
		if err != nil || len(more) == 0 {
			break
		}
		msgs = append(msgs, more...)
	}
	if len(msgs) >= s.cfg.MinBatchSize {
		return msgs, nil
	}
	deadline := time.Now().Add(s.cfg.SyncInterval)
	for len(msgs) < s.cfg.MinBatchSize {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		more, err := s.src.Fetch(ctx, want-len(msgs), wait)
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
