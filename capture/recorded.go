package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/walsearch/walsearch/bus"
)

// StateLister is a StateStore that also lists its keys (bus.KV).
type StateLister interface {
	StateStore
	Keys(ctx context.Context, filter string) ([]string, error)
}

// state is the snapshot state the record stands for, and its rows.
func (p *tableProgress) state() (string, uint64) {
	switch {
	case p.Skipped:
		return TableSkipped, 0
	case p.done():
		return TableDone, p.rows()
	case p.rows() > 0:
		return TableRunning, p.rows()
	}
	return TablePending, 0
}

// RecordedTables returns the progress capture recorded in state for each
// table of slot: what an earlier run did, which a running capture does not
// report. A table no snapshot read has its backfill's progress instead.
func RecordedTables(ctx context.Context, state StateLister, slot string) ([]TableStatus, error) {
	byTable := map[string]TableStatus{}
	for _, kind := range []string{"backfill", "snapshot"} { // a snapshot record wins
		prefix := "capture." + slot + "." + kind + "."
		keys, err := state.Keys(ctx, prefix+"*.*")
		if err != nil {
			return nil, fmt.Errorf("list %s progress: %w", kind, err)
		}
		for _, k := range keys {
			st, tb, _ := strings.Cut(strings.TrimPrefix(k, prefix), ".")
			schema, ok1 := bus.UnescapeToken(st)
			table, ok2 := bus.UnescapeToken(tb)
			if !ok1 || !ok2 {
				continue
			}
			raw, found, err := state.Get(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", k, err)
			}
			var rec tableProgress
			if !found || json.Unmarshal(raw, &rec) != nil {
				continue
			}
			s, rows := rec.state()
			ts := TableStatus{Schema: schema, Table: table, State: s, Rows: rows}
			if kind == "snapshot" {
				ts.SnapshotLSN = rec.LSN
			}
			byTable[schema+"."+table] = ts
		}
	}
	out := make([]TableStatus, 0, len(byTable))
	for _, ts := range byTable {
		out = append(out, ts)
	}
	return out, nil
}
