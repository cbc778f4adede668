package api

import (
	"context"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// Pipeline is what the API needs from the rest of Walsearch. The pipeline
// implements it; tests use PipelineFuncs.
type Pipeline interface {
	// Indices lists the indices Walsearch manages, by the name clients use
	// (an alias when the sink writes through one). Only these can be queried.
	Indices(ctx context.Context) ([]ManagedIndex, error)
	// AppliedLSN is the latest watermark the sink reached: every transaction
	// that committed before it is written to the search engine.
	AppliedLSN() bus.LSN
	// Status is the progress of every stage, for /status and /metrics.
	Status(ctx context.Context) (PipelineStatus, error)
}

// ManagedIndex is one index Walsearch writes.
type ManagedIndex struct {
	Name   string `json:"name"`
	Schema string `json:"schema,omitempty"`
	Table  string `json:"table,omitempty"`
	// Key names the columns that identify a row (the primary key). They are
	// the tie-breaker that makes cursor paging stable.
	Key []string `json:"key,omitempty"`
	// Columns are the table's columns, when known; the PostgreSQL fallback
	// queries only these.
	Columns []string `json:"-"`
}

// PipelineStatus is a point-in-time view of the pipeline.
type PipelineStatus struct {
	Capture CaptureStatus   `json:"capture"`
	Sink    SinkStatus      `json:"sink"`
	Tables  []TableProgress `json:"tables"`
	// DeadLetters is the number of events in the dead-letter queue.
	DeadLetters uint64 `json:"dlq_count"`
	// DeadLettersByTable counts the dead letters by the table their event
	// came from ("schema.table"); entries whose table cannot be told are
	// only in DeadLetters.
	DeadLettersByTable map[string]uint64 `json:"dlq_by_table,omitempty"`
	// Backlog is the number of messages waiting per bus consumer.
	Backlog map[string]uint64 `json:"bus_backlog"`
	// WALLSN is PostgreSQL's current WAL position (0 when unknown).
	WALLSN bus.LSN `json:"current_wal_lsn,omitzero"`
	// SlotLagBytes is how much WAL the replication slot retains (-1 when unknown).
	SlotLagBytes int64 `json:"slot_lag_bytes"`
	// Partitions lists, with nats.partitions above 1, who works on each
	// partition and its backlog.
	Partitions []PartitionStatus `json:"partitions,omitempty"`
}

// PartitionStatus is one partition of the change and document streams.
type PartitionStatus struct {
	Partition int `json:"partition"`
	// Holders names the process holding the partition's lease, by kind of
	// process ("transform_sink", "transform", "sink"); empty with the
	// embedded NATS, whose one process works on every partition.
	Holders map[string]string `json:"holders"`
	// Backlog is the messages waiting for the partition's consumers, by
	// stage ("transform", "sink").
	Backlog map[string]uint64 `json:"backlog"`
}

// CaptureStatus is the capture stage's progress.
type CaptureStatus struct {
	Phase        string  `json:"phase"`
	Slot         string  `json:"slot,omitempty"`
	ReceivedLSN  bus.LSN `json:"received_lsn,omitzero"`
	ConfirmedLSN bus.LSN `json:"confirmed_lsn,omitzero"`
	// Leader is the capture lease, when capture processes share an
	// external NATS.
	Leader *LeaderStatus `json:"leader,omitempty"`
}

// LeaderStatus is the lease of the capture process that holds the slot.
type LeaderStatus struct {
	// Holder names the process: host/pid/random.
	Holder string `json:"holder"`
	// Token is the fencing token: the lease's revision when Holder acquired
	// it. Every change published carries it; it grows with each new leader.
	Token uint64 `json:"token"`
	// Revision is the lease's revision at its last renewal.
	Revision uint64 `json:"revision"`
	// Expires is when the lease ends unless renewed.
	Expires time.Time `json:"expires"`
}

// SinkStatus is the sink's progress.
type SinkStatus struct {
	Indexed     uint64    `json:"documents_indexed"`
	Deleted     uint64    `json:"documents_deleted"`
	Stale       uint64    `json:"stale_writes_skipped"`
	DeadLetters uint64    `json:"dead_lettered"`
	Retries     uint64    `json:"retries"`
	AppliedLSN  bus.LSN   `json:"applied_lsn"`
	LastCommit  time.Time `json:"last_commit_time,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// BatchSize is the most documents the sink now puts in one bulk
	// request: it adapts to the engine's response times and rejections.
	BatchSize int `json:"batch_size"`
	// InFlight is the number of bulk requests being sent now.
	InFlight int `json:"bulk_requests_in_flight"`
	// BulkDocs is a histogram of documents per bulk request sent:
	// BulkDocs[i] counts requests of at most BulkDocBounds[i] documents
	// (and more than the bound before); the extra last count is the rest.
	// BulkDocsSum is their documents in all. Exported in /metrics.
	BulkDocBounds []float64 `json:"-"`
	BulkDocs      []uint64  `json:"-"`
	BulkDocsSum   uint64    `json:"-"`
}

// TableProgress is one captured table's snapshot state.
type TableProgress struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// Index is the index the table's rows go to; empty for a table read
	// only by document definitions, whose rows go into their roots'
	// documents.
	Index string `json:"index"`
	// Snapshot is pending, running, indexing (every row read, not all
	// searchable yet), done (every row searchable; also when the table was
	// snapshotted by an earlier run) or skipped.
	Snapshot     string `json:"snapshot"`
	SnapshotRows uint64 `json:"snapshot_rows"`
	// SnapshotLSN is the snapshot's consistent point: the table's snapshot
	// is written once the sink applied a watermark there. 0 when unknown.
	SnapshotLSN bus.LSN `json:"-"`
}

// PipelineFuncs implements Pipeline with functions; nil functions report
// nothing.
type PipelineFuncs struct {
	IndicesFunc    func(ctx context.Context) ([]ManagedIndex, error)
	AppliedLSNFunc func() bus.LSN
	StatusFunc     func(ctx context.Context) (PipelineStatus, error)
}

// Indices implements Pipeline.
func (f PipelineFuncs) Indices(ctx context.Context) ([]ManagedIndex, error) {
	if f.IndicesFunc == nil {
		return nil, nil
	}
	return f.IndicesFunc(ctx)
}

// AppliedLSN implements Pipeline.
func (f PipelineFuncs) AppliedLSN() bus.LSN {
	if f.AppliedLSNFunc == nil {
		return 0
	}
	return f.AppliedLSNFunc()
}

// Status implements Pipeline.
func (f PipelineFuncs) Status(ctx context.Context) (PipelineStatus, error) {
	if f.StatusFunc == nil {
		return PipelineStatus{SlotLagBytes: -1}, nil
	}
	return f.StatusFunc(ctx)
}
