package capture

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// Phase is what a Capture is doing.
type Phase string

// The phases of a Capture, in the order a first Run goes through them.
const (
	PhaseIdle      Phase = "idle"
	PhaseStarting  Phase = "starting"
	PhaseSnapshot  Phase = "snapshot"
	PhaseStreaming Phase = "streaming"
	PhaseStopped   Phase = "stopped"
)

// Table snapshot states.
const (
	TablePending = "pending"
	TableRunning = "running"
	TableDone    = "done"
	// TableSkipped: the table has no primary key and is not REPLICA
	// IDENTITY FULL, so its rows cannot be identified.
	TableSkipped = "skipped"
)

// Status is a point-in-time view of a Capture, for /health and /status.
type Status struct {
	Slot        string  `json:"slot"`
	Publication string  `json:"publication"`
	Phase       Phase   `json:"phase"`
	SnapshotLSN bus.LSN `json:"snapshot_lsn,omitzero"`
	// Tables is the progress of the snapshot taken by this process, if any.
	Tables []TableStatus `json:"tables,omitempty"`
	// ReceivedLSN is the end of the last transaction whose changes were all
	// handed to the Publisher.
	ReceivedLSN bus.LSN `json:"received_lsn,omitzero"`
	// ConfirmedLSN is the last position confirmed to PostgreSQL: every change
	// before it is durably stored on the bus.
	ConfirmedLSN bus.LSN `json:"confirmed_lsn,omitzero"`
	// WatermarkLSN is the last bus watermark published (bus.OpWatermark).
	WatermarkLSN bus.LSN `json:"watermark_lsn,omitzero"`
	// SlotLagBytes is the WAL the slot holds back on the server
	// (pg_current_wal_lsn() - confirmed_flush_lsn), as last measured.
	SlotLagBytes int64 `json:"slot_lag_bytes"`
	// WALLSN is the server's WAL position (pg_current_wal_lsn()) when
	// SlotLagBytes was measured; 0 until then.
	WALLSN bus.LSN `json:"current_wal_lsn,omitzero"`
	// Snapshot sums up the progress of the snapshot in Tables.
	Snapshot *SnapshotProgress `json:"snapshot_progress,omitempty"`
	// Backfills lists the tables being backfilled or queued for it.
	Backfills []string `json:"backfills,omitempty"`
	// BackfillRows counts the rows read by backfills in this process.
	BackfillRows uint64 `json:"backfill_rows"`
}

// SnapshotProgress is how far the initial snapshot got.
type SnapshotProgress struct {
	RowsDone uint64 `json:"rows_done"`
	// RowsTotal is estimated from the planner's statistics (pg_class.reltuples).
	RowsTotal     uint64  `json:"rows_total"`
	RowsPerSecond float64 `json:"rows_per_second"`
	// ETASeconds is the estimated time left, 0 when unknown or done.
	ETASeconds float64 `json:"eta_seconds"`
	Done       bool    `json:"done"`
}

// TableStatus is the snapshot progress of one table.
type TableStatus struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	State  string `json:"state"`
	Rows   uint64 `json:"rows"`
	// Total is the planner's estimate of the table's rows.
	Total uint64 `json:"total"`
	// SnapshotLSN is the consistent point of the snapshot that read the
	// table; 0 for a table read by a backfill, or not known.
	SnapshotLSN bus.LSN `json:"snapshot_lsn,omitzero"`
}

// tracker holds the Status of a Capture; the positions are updated on the
// streaming path without a lock.
type tracker struct {
	received     atomic.Uint64
	confirmed    atomic.Uint64
	watermark    atomic.Uint64
	slotLag      atomic.Int64
	wal          atomic.Uint64 // the server's WAL position when slotLag was measured
	backfillRows atomic.Uint64

	mu          sync.Mutex
	phase       Phase
	snapshotLSN bus.LSN
	snapStarted time.Time
	snapEnded   time.Time
	tables      []TableStatus
	backfills   []string
}

func (t *tracker) setPhase(p Phase) {
	t.mu.Lock()
	t.phase = p
	t.mu.Unlock()
}

func (t *tracker) startSnapshot(lsn bus.LSN, tables []TableStatus) {
	t.mu.Lock()
	t.snapshotLSN, t.tables, t.phase = lsn, tables, PhaseSnapshot
	t.snapStarted, t.snapEnded = time.Now(), time.Time{}
	t.mu.Unlock()
}

func (t *tracker) endSnapshot() {
	t.mu.Lock()
	t.snapEnded = time.Now()
	t.mu.Unlock()
}

func (t *tracker) setTable(i int, state string, rows uint64) {
	t.mu.Lock()
	t.tables[i].State, t.tables[i].Rows = state, rows
	t.mu.Unlock()
}

func (t *tracker) setState(i int, state string) {
	t.mu.Lock()
	t.tables[i].State = state
	t.mu.Unlock()
}

func (t *tracker) addRows(i int, n uint64) {
	t.mu.Lock()
	t.tables[i].Rows += n
	t.mu.Unlock()
}

func (t *tracker) setBackfills(tables []string) {
	t.mu.Lock()
	t.backfills = tables
	t.mu.Unlock()
}

// snapshotProgress sums the tables up; t.mu is held.
func (t *tracker) snapshotProgress() *SnapshotProgress {
	if t.snapStarted.IsZero() {
		return nil
	}
	p := &SnapshotProgress{Done: !t.snapEnded.IsZero()}
	for _, ts := range t.tables {
		p.RowsDone += ts.Rows
		p.RowsTotal += max(ts.Total, ts.Rows)
	}
	end := t.snapEnded
	if end.IsZero() {
		end = time.Now()
	}
	if secs := end.Sub(t.snapStarted).Seconds(); secs > 0 {
		p.RowsPerSecond = float64(p.RowsDone) / secs
	}
	if !p.Done && p.RowsPerSecond > 0 && p.RowsTotal > p.RowsDone {
		p.ETASeconds = float64(p.RowsTotal-p.RowsDone) / p.RowsPerSecond
	}
	return p
}

func (t *tracker) status(slot, publication string) Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	phase := t.phase
	if phase == "" {
		phase = PhaseIdle
	}
	return Status{
		Slot: slot, Publication: publication, Phase: phase, SnapshotLSN: t.snapshotLSN,
		Tables:       slices.Clone(t.tables),
		ReceivedLSN:  bus.LSN(t.received.Load()),
		ConfirmedLSN: bus.LSN(t.confirmed.Load()),
		WatermarkLSN: bus.LSN(t.watermark.Load()),
		SlotLagBytes: t.slotLag.Load(),
		WALLSN:       bus.LSN(t.wal.Load()),
		Snapshot:     t.snapshotProgress(),
		Backfills:    slices.Clone(t.backfills),
		BackfillRows: t.backfillRows.Load(),
	}
}
