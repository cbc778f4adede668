package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream and bucket names.
const (
	ChangesStream = "WALSEARCH_CHANGES"
	DocsStream    = "WALSEARCH_DOCS"
	DLQStream     = "WALSEARCH_DLQ"
	StateBucket   = "walsearch_state"
)

// ensureStreams creates or updates Walsearch's streams. Changes and documents
// are work queues: a message leaves the disk once its stage acknowledged it,
// so a backlog (an Elasticsearch outage, a huge transaction) waits on disk,
// not in memory. Dead letters stay until purged.
func (b *Bus) ensureStreams(ctx context.Context) error {
	streams := []jetstream.StreamConfig{
		{
			Name:        ChangesStream,
			Description: "row changes captured from PostgreSQL",
			Subjects:    []string{ChangePrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
		},
		{
			Name:        DocsStream,
			Description: "documents to write to the search index",
			Subjects:    []string{DocPrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
		},
		{
			Name:        DLQStream,
			Description: "events a stage could not process, with the reason",
			Subjects:    []string{DLQPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
		},
	}
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		sc.Replicas = b.cfg.Replicas
		sc.Duplicates = b.cfg.DuplicateWindow
		sc.Discard = jetstream.DiscardOld
		if err := b.ensureStream(ctx, sc); err != nil {
			return err
		}
	}
	return nil
}

// ensureStream creates sc, or updates it when its settings differ. Streams
// that are already right are left alone, so that several processes starting
// against one NATS do not issue concurrent no-op updates.
func (b *Bus) ensureStream(ctx context.Context, sc jetstream.StreamConfig) error {
	st, err := b.js.Stream(ctx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = b.js.CreateStream(ctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another process created it first
		}
		if err != nil {
			return fmt.Errorf("create stream %s: %w", sc.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", sc.Name, err)
	}
	cur := st.CachedInfo().Config
	if slices.Equal(cur.Subjects, sc.Subjects) && cur.Retention == sc.Retention && cur.Storage == sc.Storage &&
		cur.Replicas == sc.Replicas && cur.Duplicates == sc.Duplicates && cur.Discard == sc.Discard {
		return nil
	}
	if _, err := b.js.UpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("update stream %s: %w", sc.Name, err)
	}
	return nil
}
