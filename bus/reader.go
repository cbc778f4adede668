package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reader fetches messages of one stream through a durable consumer, in stream
// order. Stages process a fetched batch in order and acknowledge it with
// AckBatch once its effects are durable; unacknowledged messages are delivered
// again, in order, after AckWait.
type Reader struct {
	cons     jetstream.Consumer
	maxBytes int
}

// DefaultMaxFetchBytes bounds the bytes one Fetch takes. The server pushes
// a fetch's messages at once, and closes a connection whose unread data
// passes its max_pending (64 MiB by default) as a slow consumer: a fetch of
// 4096 batched change messages (64 KiB each) did exactly that.
const DefaultMaxFetchBytes = 8 << 20

// drainWait is how long a Fetch waits for more messages once it has some or
// found some waiting: long enough for the server to answer, short enough to
// add no noticeable latency.
const drainWait = 5 * time.Millisecond

// ReaderConfig names a durable consumer.
type ReaderConfig struct {
	Stream  string
	Durable string
	// Filter limits the consumer to these subjects. Default: the whole stream.
	Filter []string
	// MaxAckPending bounds delivered-but-unacked messages. Default: 20000.
	MaxAckPending int
	// MaxFetchBytes bounds the bytes one Fetch returns (a single larger
	// message is still returned). Default: DefaultMaxFetchBytes.
	MaxFetchBytes int
}

// NewReader creates (or resumes) a durable consumer.
func (b *Bus) NewReader(ctx context.Context, rc ReaderConfig) (*Reader, error) {
	if rc.MaxAckPending == 0 {
		rc.MaxAckPending = 20000
	}
	if rc.MaxFetchBytes == 0 {
		rc.MaxFetchBytes = DefaultMaxFetchBytes
	}
	cc := jetstream.ConsumerConfig{
		Durable:       rc.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxAckPending: rc.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      b.replicas,
		MaxDeliver:    -1,
	}
	if len(rc.Filter) == 1 {
		cc.FilterSubject = rc.Filter[0]
	} else if len(rc.Filter) > 1 {
		cc.FilterSubjects = rc.Filter
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, rc.Stream, cc)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", rc.Durable, rc.Stream, err)
	}
	if cons, err = b.restartInOrder(ctx, rc, cc, cons); err != nil {
		return nil, err
	}
	return &Reader{cons: cons, maxBytes: rc.MaxFetchBytes}, nil
}

// restartInOrder makes sure a new reader gets first what an earlier one
// fetched and left unacknowledged (it died, or its stage restarted). A
// consumer delivers such messages again only after the ack wait, and goes
// on with newer messages meanwhile: an old change (a TRUNCATE, an update)
// would then be applied over newer ones that were already acknowledged.
// So when messages are pending, the consumer is created anew: on a work
// queue, which keeps only unacknowledged messages, it delivers all of them
// again, from the oldest, in stream order.
//
// The reader of a durable consumer is its only one (the stage's lease
// makes sure of that across processes), so nothing else is reading
// through the consumer that is replaced.
func (b *Bus) restartInOrder(ctx context.Context, rc ReaderConfig, cc jetstream.ConsumerConfig, cons jetstream.Consumer) (jetstream.Consumer, error) {
	info := cons.CachedInfo()
	if info == nil || (info.NumAckPending == 0 && info.NumRedelivered == 0) {
		return cons, nil
	}
	st, err := b.js.Stream(ctx, rc.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", rc.Stream, err)
	}
	if st.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		return cons, nil // acknowledged messages are still there: a new consumer would deliver them again
	}
	b.log.Info("restarting the consumer so that unacknowledged messages come first, in order",
		"stream", rc.Stream, "consumer", rc.Durable, "unacknowledged", info.NumAckPending, "redelivered", info.NumRedelivered)
	if err := b.js.DeleteConsumer(ctx, rc.Stream, rc.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("restart consumer %s on %s: %w", rc.Durable, rc.Stream, err)
	}
	cons, err = b.js.CreateOrUpdateConsumer(ctx, rc.Stream, cc)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", rc.Durable, rc.Stream, err)
	}
	return cons, nil
}

// Fetch returns up to max messages and about MaxFetchBytes, waiting at most
// wait for the first one. It returns an empty slice (and no error) when
// nothing arrived in time. Under load it returns full batches at once; when
// idle it returns as soon as one message arrives, so batching adds at most
// a few milliseconds of latency.
func (r *Reader) Fetch(ctx context.Context, max int, wait time.Duration) ([]jetstream.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	msgs, err := r.collect(r.cons.Fetch(max, jetstream.FetchMaxBytes(r.maxBytes), jetstream.FetchMaxWait(drainWait)))
	if err != nil || len(msgs) > 0 {
		return msgs, err
	}
	first, err := r.collect(r.cons.Fetch(1, jetstream.FetchMaxWait(wait)))
	if err != nil || len(first) == 0 || max == 1 {
		return first, err
	}
	budget := r.maxBytes - msgSize(first[0])
	if budget <= 0 {
		return first, nil
	}
	rest, err := r.collect(r.cons.Fetch(max-1, jetstream.FetchMaxBytes(budget), jetstream.FetchMaxWait(drainWait)))
	if err != nil {
		// The first message is delivered; hand it over rather than lose the
		// chance to process it before its ack deadline.
		return first, nil
	}
	return append(first, rest...), nil
}

// msgSize approximates what a message counts against a fetch's byte limit.
func msgSize(m jetstream.Msg) int {
	n := len(m.Subject()) + len(m.Data())
	for k, vs := range m.Headers() {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func (r *Reader) collect(batch jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && len(msgs) == 0 &&
		!errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoHeartbeat) {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return msgs, nil
}

// Pending reports messages not yet delivered plus delivered but unacked.
func (r *Reader) Pending(ctx context.Context) (uint64, error) {
	info, err := r.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer info: %w", err)
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// AckBatch acknowledges msgs in order and waits for JetStream to confirm the
// last one. Acks travel on one connection and are applied in order, so the
// confirmation of the last covers the earlier ones.
func AckBatch(ctx context.Context, msgs []jetstream.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	for _, m := range msgs[:len(msgs)-1] {
		if err := m.Ack(); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	if err := msgs[len(msgs)-1].DoubleAck(ctx); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// KeepAlive tells the bus, every interval until stop is called, that msgs
// are still being worked on, so that a batch held up by a slow or absent
// downstream (an Elasticsearch outage while the sink retries) is not
// delivered again after AckWait. Use a third of the consumer's AckWait.
func KeepAlive(msgs []jetstream.Msg, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
