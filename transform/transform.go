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
	"hash/fnv"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
)

// Defaults for Config.
const (
	DefaultBatchSize = 4000
	DefaultFetchWait = time.Second
)

// Config configures the transform stage.
type Config struct {
	// BatchSize is about how many changes are processed per round (a round
	// takes whole messages, which may hold a transaction's changes
	// together). A round's documents are written together, so a round
	// makes a few full bulk requests rather than many small ones; a fetch
	// returns what is there at once, so a larger round adds no latency.
	// Default: 4000.
	BatchSize int
	// FetchWait is how long to wait for changes when idle. Default: 1s.
	FetchWait time.Duration
	// AckWait must be the bus's ack wait: while a round waits for its
	// documents to be stored (an Elasticsearch outage, when the sink runs
	// in the same process), the stage tells the bus at a third of this
	// interval that it is still working on the round's changes.
	// Default: bus.DefaultAckWait.
	AckWait time.Duration
	// Workers is how many changes of a batch are mapped at once. Changes of
	// one document always go to the same worker, in order, and the outputs
	// are published in batch order. Default: 0, meaning GOMAXPROCS.
	Workers int
	Logger  *slog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{BatchSize: DefaultBatchSize, FetchWait: DefaultFetchWait, AckWait: bus.DefaultAckWait}
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
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("transform.ack_wait: want at least 1s, got %s", c.AckWait))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("transform.workers: want 0 (GOMAXPROCS) or more, got %d", c.Workers))
	}
	return errors.Join(errs...)
}

// Source delivers change messages in stream order.
type Source interface {
	Fetch(ctx context.Context, max int, wait time.Duration) ([]jetstream.Msg, error)
}

// Publisher publishes document events; Flush returns once all are durable:
// stored on the bus (bus.DocPublisher), or written to the search engine
// when the sink runs in the same process (sink.Handoff). Both are called
// from one goroutine.
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
//
// Map is called concurrently for changes of different documents; the changes
// of one document (same table and primary key) are mapped one at a time, in
// stream order.
type Mapper interface {
	Map(c *bus.Change) ([]*bus.Doc, error)
}

// RoundMapper is a Mapper that also maps some changes a round at a time:
// documents built from several rows (see the documents package), where
// changes of one round are coalesced and read back together.
//
// MapRound is called once per round, when the round is written (rounds
// are written one at a time, in order), with the round's changes for which
// Affects is true, in stream order, after the round's other documents
// were written. It hands its documents to emit in batches, in order; emit
// returns once a batch is stored, so a round that rebuilds many documents
// holds one batch at a time. The round is acknowledged after MapRound
// returned. A change in failed is dead-lettered (alone, as its own event);
// an error leaves the whole round unacknowledged, to be delivered again.
type RoundMapper interface {
	Mapper
	Affects(c *bus.Change) bool
	MapRound(ctx context.Context, changes []*bus.Change, emit func([]*bus.Doc) error) (failed []Failure, err error)
}

// Failure is a change a RoundMapper could not map, and why.
type Failure struct {
	Change *bus.Change
	Err    error
}

// Stage runs the transform loop.
//
// Lifecycle: Run processes batches until ctx is done and then returns nil;
// a batch in progress when ctx ends is left unacknowledged and is delivered
// again. Run returns an error when the bus or the Publisher fails; the
// caller may call Run again. Every goroutine Run starts (the committer,
// the mapping workers, a keep-alive per round) has ended when it returns.
type Stage struct {
	cfg    Config
	src    Source
	out    Publisher
	dlq    DeadLetters
	mapper Mapper
	log    *slog.Logger
	perMsg int // changes per message in the last round; owned by Run
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
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	return &Stage{cfg: cfg, src: src, out: out, dlq: dlq, mapper: mapper, log: log.With("component", "transform")}, nil
}

// quietAck is how long the newest change whose documents are stored waits
// for the next round before it is acknowledged alone (see trailingAck). It
// is well under a third of the least ack wait Validate allows, so the bus
// never delivers it again meanwhile.
const quietAck = 200 * time.Millisecond

// Run processes change batches until ctx is done.
//
// Rounds overlap: while one round's documents are being published (or
// written, when the Publisher is the sink itself), the next round is
// fetched and mapped. Rounds are published and acknowledged one at a time,
// in order, so every document's writes stay in stream order.
func (s *Stage) Run(parent context.Context) error { return s.RunUntil(parent, nil) }

// RunUntil is Run that also ends, with nil, once drain is closed and the
// rounds already fetched are published and acknowledged: it fetches
// nothing more after drain is closed. A nil drain never closes.
func (s *Stage) RunUntil(parent context.Context, drain <-chan struct{}) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	rounds := make(chan *round, 1)
	committed := make(chan struct{})
	go func() { // owns the rounds it receives and ack; exits when rounds is closed
		defer close(committed)
		var ack trailingAck
		defer ack.release()
		quiet := time.NewTimer(quietAck)
		defer quiet.Stop()
		for {
			var r *round
			select {
			case r = <-rounds:
			case <-quiet.C:
				if ctx.Err() == nil {
					if err := ack.flush(ctx); err != nil {
						cancel(err)
					}
				}
				continue
			}
			if r == nil {
				return // rounds closed
			}
			if ctx.Err() == nil {
				if err := s.commit(ctx, r, &ack); err != nil {
					cancel(err)
				}
			}
			// A round not acknowledged is delivered again.
			r.stopKeepAlive()
			if ack.held != nil {
				quiet.Reset(quietAck)
			}
		}
	}()
	err := s.fetchLoop(ctx, rounds, drain)
	close(rounds)
	<-committed
	if parent.Err() != nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil {
		return fmt.Errorf("transform: %w", cause)
	}
	return err
}

// fetchLoop fetches and maps rounds and hands them to the committer until
// ctx is done or drain is closed (nil) or the bus fails.
func (s *Stage) fetchLoop(ctx context.Context, rounds chan<- *round, drain <-chan struct{}) error {
	for {
		select {
		case <-drain:
			return nil // what was fetched is committed; nothing more
		default:
		}
		// A message may hold many changes (a transaction's rows): fetch as
		// many messages as make about BatchSize changes at the last round's
		// changes per message.
		msgs, err := s.src.Fetch(ctx, max(1, s.cfg.BatchSize/max(1, s.perMsg)), s.cfg.FetchWait)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("transform: %w", err)
		}
		if len(msgs) == 0 {
			continue
		}
		r, err := s.prepare(ctx, msgs)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("transform: %w", err)
		}
		select {
		case rounds <- r:
		case <-ctx.Done():
			r.stopKeepAlive()
			return nil
		}
	}
}

// round is a fetched batch of change messages and the documents they map
// to, in order.
type round struct {
	msgs []jetstream.Msg
	docs []*bus.Doc
	// together are the changes a RoundMapper maps at commit.
	together      []*bus.Change
	stopKeepAlive func()
}

// prepare maps msgs to their documents. Changes that cannot be mapped are
// dead-lettered here: they produce no documents.
func (s *Stage) prepare(ctx context.Context, msgs []jetstream.Msg) (*round, error) {
	r := &round{msgs: msgs, stopKeepAlive: bus.KeepAlive(msgs, s.cfg.AckWait/3)}
	decoded, results := s.mapBatch(msgs)
	s.perMsg = (len(results) + len(msgs) - 1) / len(msgs)
	ndocs := 0
	for i := range results {
		ndocs += len(results[i].docs)
	}
	r.docs = make([]*bus.Doc, 0, ndocs)
	next := 0 // results are in message order
	for i, m := range msgs {
		if err := decoded[i]; err != nil {
			if err := s.deadLetter(ctx, m, msgID(m), m.Data(), err); err != nil {
				r.stopKeepAlive()
				return nil, err
			}
			continue
		}
		for ; next < len(results) && results[next].msg == i; next++ {
			res := &results[next]
			if res.err == nil {
				r.docs = append(r.docs, res.docs...)
				continue
			}
			event, id := m.Data(), msgID(m)
			if res.batched {
				// The dead letter carries this change alone, so that
				// replaying it does not repeat its neighbours.
				b, _, err := bus.EncodeChanges([]*bus.Change{res.change}, math.MaxInt)
				if err != nil {
					r.stopKeepAlive()
					return nil, fmt.Errorf("encode dead-lettered change: %w", err)
				}
				event, id = b, res.change.MsgID()
			}
			if err := s.deadLetter(ctx, m, id, event, res.err); err != nil {
				r.stopKeepAlive()
				return nil, err
			}
		}
	}
	if rm, ok := s.mapper.(RoundMapper); ok {
		for i := range results {
			if c := results[i].change; c.Op != bus.OpWatermark && rm.Affects(c) {
				r.together = append(r.together, c)
			}
		}
	}
	return r, nil
}

// mapRound hands the round's changes that rm maps together to it, and
// writes their documents batch by batch.
func (s *Stage) mapRound(ctx context.Context, rm RoundMapper, r *round) error {
	emit := func(docs []*bus.Doc) error {
		for _, d := range docs {
			if err := s.out.Publish(ctx, d); err != nil {
				return fmt.Errorf("publish document: %w", err)
			}
		}
		if err := s.out.Flush(ctx); err != nil {
			return fmt.Errorf("flush documents: %w", err)
		}
		return nil
	}
	failed, err := rm.MapRound(ctx, r.together, emit)
	if err != nil {
		return err
	}
	for _, f := range failed {
		event, _, err := bus.EncodeChanges([]*bus.Change{f.Change}, math.MaxInt)
		if err != nil {
			return fmt.Errorf("encode dead-lettered change: %w", err)
		}
		dl := &bus.DeadLetter{Stage: "transform", Error: f.Err.Error(), Subject: bus.ChangeSubject(f.Change.Schema, f.Change.Table),
			MsgID: f.Change.MsgID(), Event: event}
		var se *ScriptError
		if errors.As(f.Err, &se) {
			dl.Stack = se.Stack
		}
		if err := s.dlq.DeadLetter(ctx, dl); err != nil {
			return fmt.Errorf("dead-letter change: %w", err)
		}
		s.log.Warn("change dead-lettered", "subject", dl.Subject, "error", f.Err)
	}
	return nil
}

// commit publishes a round's documents, waits until they are stored, and
// then acknowledges its changes, all but the newest (see trailingAck).
func (s *Stage) commit(ctx context.Context, r *round, ack *trailingAck) error {
	stop := ack.keepAlive(s.cfg.AckWait / 3)
	defer stop()
	for _, d := range r.docs {
		if err := s.out.Publish(ctx, d); err != nil {
			return fmt.Errorf("publish document: %w", err)
		}
	}
	if err := s.out.Flush(ctx); err != nil {
		return fmt.Errorf("flush documents: %w", err)
	}
	if rm, ok := s.mapper.(RoundMapper); ok && len(r.together) > 0 {
		if err := s.mapRound(ctx, rm, r); err != nil {
			return err
		}
	}
	return ack.round(ctx, r.msgs)
}

// trailingAck acknowledges committed changes one message behind: the
// newest message whose documents are stored (held) is acknowledged with
// the next round, or alone after quietAck without one.
//
// Why: the changes stream is a work queue, and when an acknowledgement
// removes its last message the server deletes the stream's block file and
// creates a new one. At a steady low rate every round emptied the stream:
// that churn was about a tenth of walsearch's CPU at 500 single-row
// transactions a second. Holding one message back keeps the stream from
// emptying while changes keep coming.
//
// What is acknowledged is still always a prefix of what was delivered, in
// order, and only once its documents are stored: a restart delivers again
// the held message and what follows it, which rewrites documents with the
// versions they already have.
type trailingAck struct {
	held jetstream.Msg
}

// round acknowledges held and msgs but the last, which it holds; it waits
// until the bus confirmed them.
func (a *trailingAck) round(ctx context.Context, msgs []jetstream.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	if a.held != nil {
		msgs = append([]jetstream.Msg{a.held}, msgs...)
	}
	if err := bus.AckBatch(ctx, msgs[:len(msgs)-1]); err != nil {
		return err
	}
	a.held = msgs[len(msgs)-1]
	return nil
}

// flush acknowledges the held message, if any, and waits for the bus.
func (a *trailingAck) flush(ctx context.Context) error {
	if a.held == nil {
		return nil
	}
	if err := a.held.DoubleAck(ctx); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	a.held = nil
	return nil
}

// keepAlive tells the bus the held message is still being worked on every
// interval until stop is called: a round held up downstream (an
// Elasticsearch outage) must not get it delivered again meanwhile.
func (a *trailingAck) keepAlive(interval time.Duration) (stop func()) {
	m := a.held
	if m == nil {
		return func() {}
	}
	var (
		mu      sync.Mutex
		t       *time.Timer
		stopped bool
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(interval, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			_ = m.InProgress()
			t.Reset(interval)
		}
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// release acknowledges the held message without waiting: the stage is
// ending, its documents are stored, and should the acknowledgement be
// lost the message is delivered again, first.
func (a *trailingAck) release() {
	if a.held != nil {
		_ = a.held.Ack()
		a.held = nil
	}
}

// mapped is the outcome of one change.
type mapped struct {
	msg     int         // index of its message in the fetched batch
	batched bool        // its message holds other changes too
	change  *bus.Change // in the decoded message's changes
	docs    []*bus.Doc
	err     error
}

// mapBatch decodes and maps msgs on up to Workers goroutines. It returns each
// message's decoding error and the mapped changes of the messages that
// decoded, in order. Decoding is spread freely; mapping is partitioned by
// document, so the changes of one document are mapped in order by one
// goroutine.
func (s *Stage) mapBatch(msgs []jetstream.Msg) ([]error, []mapped) {
	errs := make([]error, len(msgs))
	changes := make([][]bus.Change, len(msgs))
	// Rows stay encoded: a table without a script passes them on as they
	// are, and a script's mapper decodes the rows it needs.
	decode := func(i int) { changes[i], errs[i] = bus.DecodeChangesRaw(msgs[i].Data()) }
	n := min(s.cfg.Workers, len(msgs))
	if n <= 1 {
		for i := range msgs {
			decode(i)
		}
	} else {
		s.parallel(n, func(w int) {
			for i := w; i < len(msgs); i += n {
				decode(i)
			}
		})
	}
	total := 0
	for _, cs := range changes {
		total += len(cs)
	}
	results := make([]mapped, 0, total)
	for i, cs := range changes {
		for j := range cs {
			results = append(results, mapped{msg: i, batched: len(cs) > 1, change: &cs[j]})
		}
	}
	n = min(s.cfg.Workers, len(results))
	if n <= 1 {
		for i := range results {
			r := &results[i]
			r.docs, r.err = s.mapChange(r.change)
		}
		return errs, results
	}
	part := make([]int, len(results))
	for i := range results {
		part[i] = partition(results[i].change, n)
	}
	s.parallel(n, func(w int) {
		for i := range results {
			if r := &results[i]; part[i] == w {
				r.docs, r.err = s.mapChange(r.change)
			}
		}
	})
	return errs, results
}

// mapChange maps one change. Watermarks bypass the mapper: they are not
// rows, and must reach the sink in order whatever the scripts do.
func (s *Stage) mapChange(c *bus.Change) ([]*bus.Doc, error) {
	if c.Op == bus.OpWatermark {
		return []*bus.Doc{{Op: bus.DocWatermark, Index: bus.WatermarkIndex, Version: uint64(c.LSN),
			Schema: c.Schema, Table: c.Table, Pos: c.Pos}}, nil
	}
	return s.mapper.Map(c)
}

// parallel runs fn(0..n-1) on n goroutines and waits for them.
func (s *Stage) parallel(n int, fn func(w int)) {
	var wg sync.WaitGroup
	wg.Add(n)
	for w := range n {
		go func() {
			defer wg.Done()
			fn(w)
		}()
	}
	wg.Wait()
}

// partition picks the worker of a change's document.
func partition(c *bus.Change, n int) int {
	h := fnv.New64a()
	h.Write([]byte(c.Schema))
	h.Write([]byte{0})
	h.Write([]byte(c.Table))
	h.Write([]byte{0})
	h.Write([]byte(bus.DocumentID(c.Key)))
	return int(h.Sum64() % uint64(n))
}

func (s *Stage) deadLetter(ctx context.Context, m jetstream.Msg, id string, event []byte, cause error) error {
	dl := &bus.DeadLetter{Stage: "transform", Error: cause.Error(), Subject: m.Subject(), MsgID: id, Event: event}
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

// msgID is the message id m was published with, if any.
func msgID(m jetstream.Msg) string {
	if h := m.Headers(); h != nil {
		return h.Get(jetstream.MsgIDHeader)
	}
	return ""
}
