package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
)

// recordedProgress is the part of the per-table progress record capture
// keeps in the state bucket, under capture.<slot>.snapshot.<schema>.<table>
// (or .backfill. for a table read by a backfill), that /status reads.
type recordedProgress struct {
	// LSN is the snapshot's consistent point (a backfill's request id).
	LSN    bus.LSN `json:"lsn"`
	Ranges []struct {
		Rows uint64 `json:"rows"`
		Done bool   `json:"done"`
	} `json:"ranges"`
	Skipped bool `json:"skipped"`
}

// state is the snapshot state the record stands for.
func (r recordedProgress) state() (string, uint64) {
	if r.Skipped {
		return capture.TableSkipped, 0
	}
	var rows uint64
	done := true
	for _, rg := range r.Ranges {
		rows += rg.Rows
		done = done && rg.Done
	}
	switch {
	case done:
		return capture.TableDone, rows
	case rows > 0:
		return capture.TableRunning, rows
	}
	return capture.TablePending, rows
}

// recordedSnapshots returns the snapshot progress capture recorded for each
// table of the slot, by "schema.table": what an earlier run did, which the
// running capture does not report. A table no snapshot read has its
// backfill's progress instead.
func (p *Pipeline) recordedSnapshots(ctx context.Context, alias func(string) string) ([]api.TableProgress, error) {
	kv, err := p.Bus.JetStream().KeyValue(ctx, bus.StateBucket)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	byTable := map[string]api.TableProgress{}
	for _, kind := range []string{"backfill", "snapshot"} { // a snapshot record wins
		prefix := "capture." + p.cfg.Postgres.Slot + "." + kind + "."
		lister, err := kv.ListKeysFiltered(ctx, prefix+"*.*")
		if err != nil {
			return nil, fmt.Errorf("list %s progress: %w", kind, err)
		}
		var keys []string
		for k := range lister.Keys() { // closed once every key was listed
			keys = append(keys, k)
		}
		for _, k := range keys {
			st, tb, _ := strings.Cut(strings.TrimPrefix(k, prefix), ".")
			schema, ok1 := unescapeToken(st)
			table, ok2 := unescapeToken(tb)
			if !ok1 || !ok2 {
				continue
			}
			raw, found, err := p.Bus.State().Get(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", k, err)
			}
			var rec recordedProgress
			if !found || json.Unmarshal(raw, &rec) != nil {
				continue
			}
			state, rows := rec.state()
			tp := api.TableProgress{Schema: schema, Table: table,
				Index: alias(bus.IndexName(schema, table)), Snapshot: state, SnapshotRows: rows}
			if kind == "snapshot" {
				tp.SnapshotLSN = rec.LSN
			}
			byTable[schema+"."+table] = tp
		}
	}
	out := make([]api.TableProgress, 0, len(byTable))
	for _, tp := range byTable {
		out = append(out, tp)
	}
	return out, nil
}

// withRecordedSnapshots adds to the tables the running capture reports
// those only an earlier run's records tell of: after a restart, every
// table whose snapshot is done.
func (p *Pipeline) withRecordedSnapshots(ctx context.Context, live []api.TableProgress, alias func(string) string) []api.TableProgress {
	recorded, err := p.recordedSnapshots(ctx, alias)
	if err != nil {
		p.log.Warn("read recorded snapshot progress", "error", err)
		return live
	}
	seen := make(map[string]bool, len(live))
	for _, tp := range live {
		seen[tp.Schema+"."+tp.Table] = true
	}
	for _, tp := range recorded {
		if !seen[tp.Schema+"."+tp.Table] {
			live = append(live, tp)
		}
	}
	return live
}
