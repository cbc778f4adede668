package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walsearch/walsearch/bus"
)

// Publisher takes change events in log order.
//
// Publish takes events in order; capture passes consecutive changes of one
// table and one transaction (or snapshot chunk) together so that they can
// travel as one message (bus.ChangePublisher does). It may return before the
// events are durable, but must apply backpressure (block) when too many are
// in flight. Flush returns once every event passed to Publish before it was
// called is durably stored, or with the first publish error. Capture
// confirms a slot position only after Flush succeeded. Both are called from
// several goroutines during a snapshot: each goroutine's events must keep
// their order.
type Publisher interface {
	Publish(ctx context.Context, evs ...*bus.Change) error
	// PublishMessage publishes a message of changes built with a
	// bus.ReadBatch, as Publish would have sent them.
	PublishMessage(ctx context.Context, m bus.Message) error
	Flush(ctx context.Context) error
}

// StateStore keeps small durable values (JetStream KV).
type StateStore interface {
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	Put(ctx context.Context, key string, value []byte) error
}

// Capture streams the changes of the published tables to a Publisher: an
// initial snapshot the first time, then the replication stream.
//
// Lifecycle: Run does the work until its context is cancelled, Close is
// called, or a fatal error happens; it may be called again after it returned
// (the next Run resumes from the slot's confirmed position). Close stops a
// running Run, waits for it and is idempotent. Status may be called at any time.
type Capture struct {
	cfg   Config
	pub   Publisher
	state StateStore
	log   *slog.Logger
	codec *Codec
	track tracker
	// warned holds the tables warned about in this Run.
	warnMu sync.Mutex
	warned map[string]bool
	// faultAfterChunkRead, set by tests before Run, runs after a backfill
	// chunk was read and before its high watermark is written.
	faultAfterChunkRead func()

	mu      sync.Mutex
	closed  bool
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a Capture for cfg, which must be valid (see Config.Validate);
// zero fields take their defaults.
func New(cfg Config, pub Publisher, state StateStore) (*Capture, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid capture config: %w", err)
	}
	if pub == nil || state == nil {
		return nil, errors.New("new capture: a Publisher and a StateStore are required")
	}
	return &Capture{
		cfg: cfg, pub: pub, state: state, codec: NewCodec(),
		log: cfg.Logger.With("component", "capture", "slot", cfg.Slot),
	}, nil
}

// Status returns what the capture is doing and how far it got.
func (c *Capture) Status() Status { return c.track.status(c.cfg.Slot, c.cfg.Publication) }

// Close stops Run, if running, and waits for it to return. Later Runs fail
// with ErrClosed.
func (c *Capture) Close() error {
	c.mu.Lock()
	c.closed = true
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// Run captures changes until ctx is done (it then confirms what the bus has
// stored and returns nil), Close is called (nil), or a fatal error happens.
// A *PublishError means the Publisher failed; other errors come from
// PostgreSQL. Either way the next Run replays from the confirmed position.
func (c *Capture) Run(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.running:
		c.mu.Unlock()
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.running, c.cancel, c.done = true, cancel, done
	c.mu.Unlock()
	defer func() {
		cancel()
		c.mu.Lock()
		c.running, c.cancel, c.done = false, nil, nil
		c.mu.Unlock()
		close(done)
	}()

	c.warnMu.Lock()
	c.warned = nil
	c.warnMu.Unlock()
	err := c.run(ctx)
	c.track.setPhase(PhaseStopped)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || pgconn.Timeout(err)) {
		return nil
	}
	return err
}

func (c *Capture) run(ctx context.Context) error {
	c.track.setPhase(PhaseStarting)
	connCfg, err := queryConfig(c.cfg.URL)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", bus.RedactURL(c.cfg.URL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if err := checkWALLevel(ctx, conn); err != nil {
		return err
	}
	// Nothing is created or altered before the slot and publication are
	// known to be this instance's.
	slot, _, own, err := c.readOwnership(ctx, conn)
	if err != nil {
		return err
	}
	if err := c.claim(ctx, conn, own); err != nil {
		return err
	}
	if err := ensureWatermarkTable(ctx, conn); err != nil {
		return err
	}
	if err := ensureKeysColumn(ctx, conn); err != nil {
		// Only repairs need the column: capture runs without it.
		c.log.Warn("walsearch verify --repair will not work until the column is added", "error", err)
	}
	tables := c.cfg.tableNames()
	if len(tables) > 0 {
		tables = append(tables, watermarkName())
	}
	changed, err := ensurePublication(ctx, conn, c.cfg.Publication, tables)
	if err != nil {
		return err
	}
	if changed {
		c.log.Info("publication set up", "publication", c.cfg.Publication, "tables", publicationScope(c.cfg.Tables))
	}
	if err := loadTypes(ctx, conn, c.codec); err != nil {
		return err
	}
	done, err := c.snapshotDone(ctx)
	if err != nil {
		return err
	}

	rcfg, err := replicationConfig(c.cfg.URL)
	if err != nil {
		return err
	}
	rconn, err := pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return explain(fmt.Errorf("open replication connection to %s: %w", bus.RedactURL(c.cfg.URL), err))
	}
	defer rconn.Close(context.WithoutCancel(ctx))

	start := slot.confirmed
	var resume bus.LSN // consistent point of a snapshot to resume
	if !slot.exists || !done {
		var begun snapshotStart
		if _, err := c.getJSON(ctx, c.snapshotStartKey(), &begun); err != nil {
			return err
		}
		if slot.exists && begun.LSN != 0 {
			// The slot still holds every change since its consistent point:
			// the snapshot goes on from its last recorded chunks.
			resume = begun.LSN
		} else {
			if slot.exists {
				// The slot is this instance's (checkOwnership) and nothing
				// was read from it.
				c.log.Warn("this instance's replication slot exists but its snapshot never started: dropping it to take a fresh snapshot")
				if err := dropSlot(ctx, rconn, c.cfg.Slot); err != nil {
					return err
				}
			}
			// Progress recorded for an older slot must not be taken for
			// this one's.
			if err := c.putJSON(ctx, c.snapshotStartKey(), snapshotStart{}); err != nil {
				return err
			}
			created, err := createSlot(ctx, rconn, c.cfg.Slot)
			if err != nil {
				return err
			}
			c.log.Info("replication slot created", "consistent_point", created.consistentPoint)
			if err := c.snapshot(ctx, conn, created); err != nil {
				return err
			}
			start = created.consistentPoint
		}
	}
	return c.stream(ctx, rconn, conn, start, resume)
}

func publicationScope(tables []string) any {
	if len(tables) == 0 {
		return "all"
	}
	return tables
}
