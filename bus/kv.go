package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// KV is a small durable key-value store on JetStream, for stage state such as
// snapshot progress. Keys use the characters [-/_=.a-zA-Z0-9].
type KV struct{ kv jetstream.KeyValue }

// Get returns the value of key and whether it exists.
func (s *KV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get state %s: %w", key, err)
	}
	return e.Value(), true, nil
}

// Put stores value under key.
func (s *KV) Put(ctx context.Context, key string, value []byte) error {
	if _, err := s.kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("put state %s: %w", key, err)
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (s *KV) Delete(ctx context.Context, key string) error {
	if err := s.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete state %s: %w", key, err)
	}
	return nil
}

// Keys lists the keys matching filter, a subject pattern such as
// "schema.>".
func (s *KV) Keys(ctx context.Context, filter string) ([]string, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list state %s: %w", filter, err)
	}
	var keys []string
	for k := range lister.Keys() { // closed once every key was listed
		keys = append(keys, k)
	}
	return keys, nil
}

// Watch calls fn with key's value now and on every change (nil once it is
// deleted), until ctx ends; it then returns nil.
func (s *KV) Watch(ctx context.Context, key string, fn func(value []byte)) error {
	return s.WatchKeys(ctx, key, func(_ string, value []byte) { fn(value) })
}

// WatchKeys calls fn with the key and value of every key matching filter
// (a subject pattern such as "sink.applied.*") now and on every change
// (value nil once deleted), until ctx ends; it then returns nil.
func (s *KV) WatchKeys(ctx context.Context, filter string, fn func(key string, value []byte)) error {
	w, err := s.kv.Watch(ctx, filter)
	if err != nil {
		return fmt.Errorf("watch state %s: %w", filter, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch state %s: the watch ended", filter)
			}
			if e == nil {
				continue // the initial values were delivered
			}
			if e.Operation() != jetstream.KeyValuePut {
				fn(e.Key(), nil)
				continue
			}
			fn(e.Key(), e.Value())
		}
	}
}
