package api

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walsearch/walsearch/bus"
)

// TableStatus is one table's line in GET /status.
type TableStatus struct {
	Schema       string `json:"schema,omitempty"`
	Table        string `json:"table,omitempty"`
	Index        string `json:"index"`
	Snapshot     string `json:"snapshot"`
	SnapshotRows uint64 `json:"snapshot_rows"`
	// Documents is the number of documents in the index (-1 when the
	// search engine cannot tell).
	Documents int64 `json:"documents"`
	// LastAppliedLSN: every transaction committed before it is indexed.
	LastAppliedLSN bus.LSN `json:"last_applied_lsn"`
	LagBytes       uint64  `json:"lag_bytes"`
	LagSeconds     float64 `json:"lag_seconds"`
	// DLQCount is the number of dead letters of the index's table.
	DLQCount uint64 `json:"dlq_count"`
}

// statusResponse is GET /status. BusBacklog and Sink add up every table,
// so a key limited to some indices gets neither.
type statusResponse struct {
	Tables       []TableStatus     `json:"tables"`
	AppliedLSN   bus.LSN           `json:"applied_lsn"`
	LagBytes     uint64            `json:"lag_bytes"`
	LagSeconds   float64           `json:"lag_seconds"`
	SlotLagBytes int64             `json:"slot_lag_bytes"`
	BusBacklog   map[string]uint64 `json:"bus_backlog,omitzero"`
	DLQCount     uint64            `json:"dlq_count"`
	DLQByTable   map[string]uint64 `json:"dlq_by_table"`
	Capture      CaptureStatus     `json:"capture"`
	Sink         *SinkStatus       `json:"sink,omitzero"`
	// Partitions: who works on each partition, and its backlog (with
	// nats.partitions above 1).
	Partitions []PartitionStatus `json:"partitions,omitempty"`
	// Checks is what the background checks found (see WithChecks).
	Checks any `json:"checks,omitempty"`
}

// lag is how far the index is behind the source: bytes of WAL between the
// newest known position and the applied watermark, and the age of the
// newest change written when there is such a gap.
func lag(st PipelineStatus, now time.Time) (uint64, float64) {
	head := st.WALLSN
	if head == 0 {
		head = st.Capture.ReceivedLSN
	}
	applied := st.Sink.AppliedLSN
	if head <= applied {
		return 0, 0
	}
	secs := 0.0
	if !st.Sink.LastCommit.IsZero() {
		secs = max(0, now.Sub(st.Sink.LastCommit).Seconds())
	}
	return uint64(head - applied), secs
}

// statusHandler answers GET /status.
func (s *Server) statusHandler(c *fiber.Ctx) error {
	ctx, cancel := s.requestContext(c)
	defer cancel()
	st, err := s.pipe.Status(ctx)
	if err != nil {
		return err
	}
	list, _, err := s.indices.all(ctx)
	if err != nil {
		return err
	}
	lagBytes, lagSecs := lag(st, time.Now())
	progress := map[string]TableProgress{} // by index
	noIndex := map[string]TableProgress{}  // by table, for tables without an index
	for _, tp := range st.Tables {
		if tp.Index == "" {
			noIndex[tp.Schema+"."+tp.Table] = tp
		} else {
			progress[tp.Index] = tp
		}
	}
	resp := statusResponse{
		Tables: []TableStatus{}, AppliedLSN: st.Sink.AppliedLSN, LagBytes: lagBytes, LagSeconds: lagSecs,
		SlotLagBytes: st.SlotLagBytes, BusBacklog: st.Backlog, DLQCount: st.DeadLetters, Capture: st.Capture, Sink: &st.Sink,
		Partitions: st.Partitions,
	}
	if resp.BusBacklog == nil {
		resp.BusBacklog = map[string]uint64{}
	}
	visible := map[string]bool{} // the tables of the indices the caller may see
	line := func(mi ManagedIndex) {
		ts := TableStatus{Schema: mi.Schema, Table: mi.Table, Index: mi.Name, Snapshot: "unknown",
			LastAppliedLSN: st.Sink.AppliedLSN, LagBytes: lagBytes, LagSeconds: lagSecs, Documents: -1}
		tp, known := progress[mi.Name]
		if mi.Name == "" {
			tp, known = noIndex[mi.Schema+"."+mi.Table]
		}
		if known {
			ts.Snapshot, ts.SnapshotRows = tp.Snapshot, tp.SnapshotRows
			delete(progress, mi.Name)
		}
		if mi.Table != "" {
			ts.DLQCount = st.DeadLettersByTable[mi.Schema+"."+mi.Table]
			visible[mi.Schema+"."+mi.Table] = true
		}
		if mi.Name == "" {
			resp.Tables = append(resp.Tables, ts) // no index to count
			return
		}
		n, err := s.eng.count(ctx, mi.Name)
		if isNotFound(err) && !known && ts.DLQCount == 0 {
			// Nothing to tell: no snapshot of its own, no index, no dead
			// letters — a partition, whose rows go to its root's index.
			return
		}
		if err == nil {
			ts.Documents = n
		}
		resp.Tables = append(resp.Tables, ts)
	}
	for _, mi := range list {
		if allowedIndex(c, mi.Name) {
			line(mi)
		}
	}
	// Tables with a snapshot state but no index to list, such as a table
	// skipped for want of a key, still say how their snapshot went; so do
	// the tables read only by document definitions, which have no index
	// of their own, to keys that may see every index.
	for _, tp := range st.Tables {
		if tp.Index == "" {
			if allIndices(c) {
				line(ManagedIndex{Schema: tp.Schema, Table: tp.Table})
			}
			continue
		}
		if _, left := progress[tp.Index]; left && allowedIndex(c, tp.Index) {
			line(ManagedIndex{Name: tp.Index, Schema: tp.Schema, Table: tp.Table})
		}
	}
	sort.Slice(resp.Tables, func(i, j int) bool {
		a, b := resp.Tables[i], resp.Tables[j]
		return a.Index < b.Index || a.Index == b.Index && a.Schema+"."+a.Table < b.Schema+"."+b.Table
	})
	resp.DLQByTable = make(map[string]uint64, len(st.DeadLettersByTable))
	for table, n := range st.DeadLettersByTable {
		if allIndices(c) || visible[table] {
			resp.DLQByTable[table] = n
		}
	}
	if !allIndices(c) {
		// Figures that add up every table would tell a limited key about
		// the others: it gets its own tables' dead letters only.
		resp.DLQCount = 0
		for _, n := range resp.DLQByTable {
			resp.DLQCount += n
		}
		resp.BusBacklog, resp.Sink, resp.Partitions = nil, nil, nil
	}
	if s.checks != nil && allIndices(c) {
		resp.Checks = s.checks.Status()
	}
	return c.JSON(resp)
}

// isNotFound reports whether err says that an index does not exist.
func isNotFound(err error) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}
