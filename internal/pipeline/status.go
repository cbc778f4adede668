package pipeline

import (
	"context"
	"log/slog"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/sink"
)

// statusAssembler builds /status from what each stage reports of itself:
// capture's positions, slot lag and snapshot progress (with what earlier
// runs recorded), the sink's counters, the dead letters by table and the
// bus's backlog. It opens no connection to PostgreSQL.
type statusAssembler struct {
	bus         *bus.Bus
	applied     func() bus.LSN // the sink's, here or through the state bucket
	deadLetters *bus.DeadLetters
	slot        string
	alias       func(docIndex string) string
	stages      func() (*capture.Capture, *sink.Sink) // the running ones, or nil
	sink        func() (sink.Status, bool)            // the sink's here, if it runs here
	searchable  *searchable                           // turns "done" into "indexing" until searchable
	// docOnly are the tables captured only for document definitions,
	// by "schema.table": they have no index of their own.
	docOnly map[string]bool
	log     *slog.Logger
}

// Status implements api.Pipeline's status.
func (a *statusAssembler) Status(ctx context.Context) (api.PipelineStatus, error) {
	st := api.PipelineStatus{SlotLagBytes: -1, Backlog: map[string]uint64{}}
	c, _ := a.stages()
	var live []capture.TableStatus
	if c != nil {
		cs := c.Status()
		st.Capture = api.CaptureStatus{Phase: string(cs.Phase), Slot: cs.Slot, ReceivedLSN: cs.ReceivedLSN, ConfirmedLSN: cs.ConfirmedLSN}
		st.SlotLagBytes, st.WALLSN = cs.SlotLagBytes, cs.WALLSN
		live = cs.Tables
		for i := range live {
			live[i].SnapshotLSN = cs.SnapshotLSN
		}
	} else {
		st.Capture.Phase = string(capture.PhaseIdle)
	}
	for _, t := range a.withRecorded(ctx, live) {
		tp := api.TableProgress{Schema: t.Schema, Table: t.Table, Snapshot: t.State, SnapshotRows: t.Rows, SnapshotLSN: t.SnapshotLSN}
		if !a.docOnly[t.Schema+"."+t.Table] {
			tp.Index = a.alias(bus.IndexName(t.Schema, t.Table))
		}
		st.Tables = append(st.Tables, tp)
	}
	applied := a.applied()
	if err := a.leader(ctx, &st.Capture); err != nil {
		a.log.Warn("read the capture lease", "error", err)
	}
	if a.searchable != nil {
		a.searchable.apply(ctx, st.Tables, applied)
	}
	if ss, ok := a.sink(); ok {
		st.Sink = api.SinkStatus{Indexed: ss.Indexed, Deleted: ss.Deleted, Stale: ss.Stale, DeadLetters: ss.DeadLetters,
			Retries: ss.Retries, AppliedLSN: ss.AppliedLSN, LastCommit: ss.LastCommit, LastError: ss.LastError,
			BatchSize: ss.BatchSize, InFlight: ss.InFlight, BulkDocs: ss.BulkDocs[:], BulkDocsSum: ss.BulkDocsSum}
		bounds := sink.BulkDocBuckets()
		st.Sink.BulkDocBounds = bounds[:]
	} else {
		st.Sink.AppliedLSN = applied
	}
	n, byTable, err := a.deadLetters.CountByTable(ctx)
	st.DeadLetters, st.DeadLettersByTable = n, byTable
	if err != nil {
		a.log.Warn("count dead letters", "error", err)
	}
	parts := a.bus.Partitions()
	for stream, consumer := range map[string]string{bus.ChangesStream: TransformConsumer, bus.DocsStream: SinkConsumer} {
		for k := range parts {
			name := bus.PartitionName(consumer, "-", k, parts)
			if cons, err := a.bus.JetStream().Consumer(ctx, stream, name); err == nil {
				if info, err := cons.Info(ctx); err == nil {
					st.Backlog[name] = info.NumPending + uint64(info.NumAckPending)
				}
			}
		}
	}
	if parts > 1 {
		st.Partitions = a.partitions(ctx, parts, st.Backlog)
	}
	return st, nil
}

// partitions lists who works on each partition: the holder of its lease
// for each kind of process that takes one (none with the embedded NATS,
// where this process works on every partition), and its backlog.
func (a *statusAssembler) partitions(ctx context.Context, n int, backlog map[string]uint64) []api.PartitionStatus {
	out := make([]api.PartitionStatus, n)
	for k := range n {
		ps := api.PartitionStatus{Partition: k, Holders: map[string]string{}, Backlog: map[string]uint64{}}
		for _, kind := range []string{"transform_sink", "transform", "sink"} {
			if a.bus.Embedded() {
				break
			}
			rec, err := a.bus.ReadLease(ctx, bus.PartitionName(kind, ".", k, n))
			if err != nil {
				a.log.Warn("read a partition lease", "partition", k, "error", err)
				continue
			}
			if rec.Holder != "" {
				ps.Holders[kind] = rec.Holder
			}
		}
		for _, consumer := range []string{TransformConsumer, SinkConsumer} {
			name := bus.PartitionName(consumer, "-", k, n)
			ps.Backlog[consumer] = backlog[name]
		}
		out[k] = ps
	}
	return out
}

// withRecorded adds to the tables the running capture reports those only
// an earlier run's records tell of: after a restart, every table whose
// snapshot is done.
func (a *statusAssembler) withRecorded(ctx context.Context, live []capture.TableStatus) []capture.TableStatus {
	recorded, err := capture.RecordedTables(ctx, a.bus.State(), a.slot)
	if err != nil {
		a.log.Warn("read recorded snapshot progress", "error", err)
		return live
	}
	seen := make(map[string]bool, len(live))
	for _, t := range live {
		seen[t.Schema+"."+t.Table] = true
	}
	for _, t := range recorded {
		if !seen[t.Schema+"."+t.Table] {
			live = append(live, t)
		}
	}
	return live
}

// leader adds the capture lease to cs: which process leads, under which
// fencing token, until when. With one process and no lease it adds nothing.
func (a *statusAssembler) leader(ctx context.Context, cs *api.CaptureStatus) error {
	rec, err := a.bus.ReadLease(ctx, bus.CaptureLease)
	if err != nil || rec.Holder == "" {
		return err
	}
	cs.Leader = &api.LeaderStatus{Holder: rec.Holder, Token: rec.Token, Revision: rec.Revision, Expires: rec.Expires()}
	return nil
}
