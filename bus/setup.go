package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// setupPatience bounds how long the creation or lookup of a stream or
// bucket is retried while the cluster cannot answer yet: a cluster that has
// just formed, is electing a leader, or is applying another process's
// creation of the same bucket answers late or not at all for a while.
const setupPatience = 60 * time.Second

// setupTry bounds one try of retrySetup (JetStream's own default is 5 s;
// a loaded cluster creating a replicated stream may need longer).
const setupTry = 10 * time.Second

// errNotYet marks an answer that will change once the cluster has applied
// what another process did a moment ago.
var errNotYet = errors.New("not applied by the cluster yet")

// retrySetup runs op until it succeeds, fails for a reason other than a
// cluster that cannot answer yet, ctx ends, or setupPatience has passed.
// Each try has setupTry to get its answers.
func (b *Bus) retrySetup(ctx context.Context, what string, op func(context.Context) error) error {
	deadline := time.Now().Add(setupPatience)
	wait := 100 * time.Millisecond
	for {
		tryCtx, cancel := context.WithTimeout(ctx, setupTry)
		err := op(tryCtx)
		cancel()
		if err == nil || !transientSetupError(ctx, err) || time.Now().After(deadline) {
			return err
		}
		b.log.Warn("the NATS cluster did not answer yet; trying again", "what", what, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// transientSetupError reports whether err is one a cluster gives while it
// cannot answer yet, rather than an answer.
func transientSetupError(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, errNotYet), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return true
	case errors.As(err, &apiErr):
		// 503: JetStream is not available yet (no meta leader, or the
		// stream's group has no leader).
		return apiErr.Code == 503 || apiErr.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabled
	}
	return false
}

// openBucket opens the key-value bucket want names, creating it when it
// does not exist, and checks its settings against want (see checkBucket).
func (b *Bus) openBucket(ctx context.Context, want jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := b.retrySetup(ctx, "open bucket "+want.Bucket, func(ctx context.Context) error {
		var err error
		kv, err = b.js.KeyValue(ctx, want.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = b.js.CreateKeyValue(ctx, want)
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = b.js.KeyValue(ctx, want.Bucket)
			}
		}
		if err != nil {
			return err
		}
		// A bucket a cluster just created may have no stream leader yet:
		// its first read would find no responders. Open returns once the
		// bucket answers one.
		if _, err = kv.Get(ctx, "walsearch-probe"); errors.Is(err, jetstream.ErrKeyNotFound) {
			err = nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", want.Bucket, err)
	}
	if err := b.checkBucket(ctx, kv, want); err != nil {
		return nil, err
	}
	return kv, nil
}
