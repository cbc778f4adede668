package verify

import (
	"time"
)

// Report is what one verification found.
type Report struct {
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Tables   []TableReport `json:"tables"`
}

// Drift is the number of drifted documents over every table, after repair
// when a repair ran.
func (r *Report) Drift() int {
	n := 0
	for _, t := range r.Tables {
		n += t.Drift()
	}
	return n
}

// Failed reports whether some table could not be checked.
func (r *Report) Failed() bool {
	for _, t := range r.Tables {
		if t.Error != "" {
			return true
		}
	}
	return false
}

// TableReport is one table's result.
type TableReport struct {
	Table string `json:"table"`
	Index string `json:"index"`
	// Rows is the number of rows read from PostgreSQL, Documents the number
	// of documents they should have in the index.
	Rows      uint64 `json:"rows"`
	Documents uint64 `json:"documents"`
	// Missing documents should be in the index and are not; Extra are in
	// the table's index without a row; Stale differ from what the row
	// gives through the transform script. Rechecked counts documents that
	// differed at first sight and matched once the changes in flight were
	// indexed.
	Missing   Keys   `json:"missing"`
	Extra     Keys   `json:"extra"`
	Stale     Keys   `json:"stale"`
	Rechecked uint64 `json:"rechecked"`
	// Repaired counts the drifted documents a repair fixed; the drift
	// fields then hold what remained.
	Repaired uint64        `json:"repaired,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// Error says why the table could not be checked (fully).
	Error string `json:"error,omitempty"`
}

// Drift is the number of missing, extra and stale documents.
func (t TableReport) Drift() int { return t.Missing.Count + t.Extra.Count + t.Stale.Count }

// Keys counts documents and lists the ids of the first of them (up to
// Config.MaxKeys).
type Keys struct {
	Count int      `json:"count"`
	IDs   []string `json:"ids"`
}

func (k *Keys) add(id string, limit int) {
	k.Count++
	if len(k.IDs) < limit {
		k.IDs = append(k.IDs, id)
	}
}

// Progress is reported while a verification runs.
type Progress struct {
	Table string
	// Rows is the number of rows read from the table so far, Total the
	// planner's estimate of its rows (0 if unknown).
	Rows, Total uint64
	// RowsPerSecond is the rate over the table so far.
	RowsPerSecond float64
}

// ETA is the estimated time left for the table, 0 if unknown.
func (p Progress) ETA() time.Duration {
	if p.RowsPerSecond <= 0 || p.Total <= p.Rows {
		return 0
	}
	return time.Duration(float64(p.Total-p.Rows) / p.RowsPerSecond * float64(time.Second))
}
