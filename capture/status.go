package capture

import (
	"slices"
	"sync"
	"sync/atomic"

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
}

// TableStatus is the snapshot progress of one table.
type TableStatus struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	State  string `json:"state"`
	Rows   uint64 `json:"rows"`
}

// tracker holds the Status of a Capture; the positions are updated on the
// streaming path without a lock.
type tracker struct {
	received  atomic.Uint64
	confirmed atomic.Uint64

	mu          sync.Mutex
	phase       Phase
	snapshotLSN bus.LSN
	tables      []TableStatus
}

func (t *tracker) setPhase(p Phase) {
	t.mu.Lock()
	t.phase = p
	t.mu.Unlock()
}

func (t *tracker) startSnapshot(lsn bus.LSN, tables []TableStatus) {
	t.mu.Lock()
	t.snapshotLSN, t.tables, t.phase = lsn, tables, PhaseSnapshot
	t.mu.Unlock()
}

func (t *tracker) setTable(i int, state string, rows uint64) {
	t.mu.Lock()
	t.tables[i].State, t.tables[i].Rows = state, rows
	t.mu.Unlock()
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
	}
}
