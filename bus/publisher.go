package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultMaxInFlight bounds the publishes awaiting a JetStream ack per
// publisher: Publish blocks beyond it, which is how backpressure reaches
// the producer (and, for capture, PostgreSQL).
const DefaultMaxInFlight = 2048

// Publisher publishes events asynchronously and tells, through Flush, when
// everything published so far is durably stored.
//
// A Publisher is safe for concurrent use: messages from one goroutine are
// stored in the order it published them, and Flush waits for everything
// published before it was called, by any goroutine. After a publish failed,
// every later Publish and Flush return that failure: the owner stops, and
// the stream is replayed from its last durable position (message ids make
// the replay harmless).
type Publisher struct {
	nc      *nats.Conn // its own
	js      jetstream.JetStream
	futures chan pending
	done    chan struct{}

	// sendMu makes handing a message to the connection, queueing its ack
	// future and counting it one step, so that the first `published`
	// futures in the queue are exactly the counted messages.
	sendMu sync.Mutex

	mu        sync.Mutex
	published uint64
	acked     uint64
	err       error
	changed   chan struct{} // closed and replaced whenever acked or err changes
	closeOnce sync.Once

	fence Fence // nil: no fence
}

// Fence tells whether a publisher may still publish: Check returns the
// fencing token to send with each message, or an error (ErrLeaseLost)
// once it may not. *Lease is a Fence.
type Fence interface {
	Check() (uint64, error)
}

// SetFence makes every later publish check f first and carry its token in
// LeaseHeader; a failed check fails the publisher. Call it before the first
// publish.
func (p *Publisher) SetFence(f Fence) { p.fence = f }

// PublishAckTimeout is how long a publish waits for JetStream's ack before
// it fails the publisher. An ack can be lost for good: when the server
// leading the stream dies after it received a message, the client, still
// connected to another server, is never told; without a bound the
// publisher's Flush would wait forever and capture would stall. A failed
// publisher makes its stage restart and publish again, which message ids
// make harmless.
const PublishAckTimeout = 15 * time.Second

type pending struct {
	f       jetstream.PubAckFuture
	subject string
	id      string
}

// NewPublisher returns a publisher with its own connection and JetStream
// context. Close it when done.
//
// The connection is its own because a connection writes one thing at a
// time, holding its lock: a batch of changes (up to MaxBatchBytes) is
// written while the connection is locked. On the bus's shared connection,
// capture's publishes and transform's fetches and acknowledgements waited
// for each other.
func (b *Bus) NewPublisher() (*Publisher, error) {
	nc, err := b.dial()
	if err != nil {
		return nil, fmt.Errorf("new publisher: connect to nats: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*DefaultMaxInFlight),
		jetstream.WithPublishAsyncTimeout(PublishAckTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("new publisher: %w", err)
	}
	p := &Publisher{
		nc:      nc,
		js:      js,
		futures: make(chan pending, DefaultMaxInFlight),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	go p.reap()
	return p, nil
}

// reap waits for acks in publish order. It owns nothing but the counters and
// exits when futures is closed.
func (p *Publisher) reap() {
	defer close(p.done)
	for pd := range p.futures {
		var err error
		select {
		case <-pd.f.Ok():
		case e := <-pd.f.Err():
			err = &PublishError{Subject: pd.subject, MsgID: pd.id, Err: e}
		}
		p.mu.Lock()
		p.acked++
		if err != nil && p.err == nil {
			p.err = err
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// PublishRaw publishes data on subject with message id id.
func (p *Publisher) PublishRaw(ctx context.Context, subject, id string, data []byte) error {
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if p.fence != nil {
		// Checked as late as can be, right before the message leaves.
		token, err := p.fence.Check()
		if err != nil {
			err = &PublishError{Subject: subject, MsgID: id, Err: err}
			p.fail(err)
			return err
		}
		msg.Header.Set(LeaseHeader, strconv.FormatUint(token, 10))
	}
	f, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(id))
	if err != nil {
		return &PublishError{Subject: subject, MsgID: id, Err: err}
	}
	select {
	case p.futures <- pending{f: f, subject: subject, id: id}:
	case <-ctx.Done():
		// The message is on its way; its outcome is unknown, so the
		// publisher is unusable from here on.
		p.fail(ctx.Err())
		return ctx.Err()
	}
	p.mu.Lock()
	p.published++
	p.mu.Unlock()
	return nil
}

func (p *Publisher) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// Flush waits until every event published so far is acknowledged by
// JetStream, and returns the first publish error if any.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	target := p.published
	p.mu.Unlock()
	for {
		p.mu.Lock()
		acked, err, changed := p.acked, p.err, p.changed
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if acked >= target {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops the publisher. Publishes not yet flushed may or may not be
// stored. It is idempotent.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		close(p.futures)
		<-p.done
		p.js.CleanupPublisher()
		p.nc.Close()
	})
	return nil
}

// ChangePublisher publishes change events.
type ChangePublisher struct {
	*Publisher
	partitions int // the bus's (Bus.Partitions)
}

// NewChangePublisher returns a publisher of change events, on the bus's
// partitions.
func (b *Bus) NewChangePublisher() (*ChangePublisher, error) {
	p, err := b.NewPublisher()
	if err != nil {
		return nil, err
	}
	return &ChangePublisher{Publisher: p, partitions: b.Partitions()}, nil
}

// Partitions is the partition count the publisher publishes on.
func (p *ChangePublisher) Partitions() int { return max(1, p.partitions) }

// Publish publishes evs, in order, on their table's subject. Consecutive
// changes of one table and one transaction (or snapshot chunk) travel
// together in one message of up to MaxBatchBytes, which costs the bus far
// less than a message per row; see EncodeChanges. Encoding happens before
// any lock is taken, so goroutines publishing concurrently encode in
// parallel.
//
// With several partitions, each message goes to the partition of its
// changes' keys (see PartitionedMessages), and watermarks and truncates go
// to every partition.
func (p *ChangePublisher) Publish(ctx context.Context, evs ...*Change) error {
	if p.Partitions() > 1 {
		return p.publishPartitioned(ctx, evs)
	}
	for len(evs) > 0 {
		m, err := nextMessage(evs)
		if err != nil {
			return err
		}
		if err := p.PublishMessage(ctx, m); err != nil {
			return err
		}
		evs = evs[m.Count:]
	}
	return nil
}

func (p *ChangePublisher) publishPartitioned(ctx context.Context, evs []*Change) error {
	for len(evs) > 0 {
		n := sameBatch(evs)
		msgs, err := PartitionedMessages(evs[:n], p.Partitions())
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := p.PublishMessage(ctx, m); err != nil {
				return err
			}
		}
		evs = evs[n:]
	}
	return nil
}

// PublishMessage publishes a message built elsewhere (see ReadBatch).
func (p *ChangePublisher) PublishMessage(ctx context.Context, m Message) error {
	return p.PublishRaw(ctx, m.Subject, m.ID, m.Data)
}

// DocPublisher publishes document events.
type DocPublisher struct {
	*Publisher
	partition, partitions int
}

// NewDocPublisher returns a publisher of document events.
func (b *Bus) NewDocPublisher() (*DocPublisher, error) {
	p, err := b.NewPublisher()
	if err != nil {
		return nil, err
	}
	return &DocPublisher{Publisher: p, partitions: 1}, nil
}

// NewPartitionDocPublisher returns a publisher of the document events of
// partition k of the bus's partitions: the transform of partition k
// publishes them where the sink of partition k reads.
func (b *Bus) NewPartitionDocPublisher(k int) (*DocPublisher, error) {
	p, err := b.NewDocPublisher()
	if err != nil {
		return nil, err
	}
	p.partition, p.partitions = k, b.Partitions()
	return p, nil
}

// Publish publishes d on its index's subject (in the publisher's
// partition).
func (p *DocPublisher) Publish(ctx context.Context, d *Doc) error {
	d.V = SchemaVersion
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode document %s/%s: %w", d.Index, d.ID, err)
	}
	id := d.MsgID()
	if p.partitions > 1 && (d.Op == DocWatermark || d.Op == DocTruncate) {
		id += "@" + strconv.Itoa(p.partition) // every partition carries its own
	}
	return p.PublishRaw(ctx, PartitionDocSubject(d.Index, p.partition, p.partitions), id, data)
}
