package bus

import (
	"context"
	"fmt"

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
		if _, err := b.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("create stream %s: %w", sc.Name, err)
		}
	}
	return nil
}
