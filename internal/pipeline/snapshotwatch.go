package pipeline

import (
	"context"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
)

// snapshotLogInterval is how often the indexing of a read snapshot is
// logged.
const snapshotLogInterval = 10 * time.Second

// watchSnapshot follows the snapshot this process reads once its rows are
// all read: capture's log lines and progress bar end there, while the
// documents are still on their way. It logs the documents indexed against
// the rows read every snapshotLogInterval, draws them on term (a terminal,
// or nil), and logs "snapshot searchable" when every row can be found — as
// /status then says "done". It returns then, or when ctx ends.
func (p *Pipeline) watchSnapshot(ctx context.Context, term io.Writer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var (
		read    time.Time // when every row was read
		nextLog time.Time
		bar     *progressbar.ProgressBar
	)
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-tick.C:
		}
		c, _ := p.running()
		ss, ok := p.sinkStatus()
		if c == nil || !ok {
			continue
		}
		cs := c.Status()
		if cs.SnapshotLSN == 0 || len(cs.Tables) == 0 {
			continue // no snapshot in this process (yet)
		}
		var rows uint64
		allRead := true
		tables := make([]api.TableProgress, 0, len(cs.Tables))
		for _, t := range cs.Tables {
			rows += t.Rows
			allRead = allRead && t.State != capture.TablePending && t.State != capture.TableRunning
			tables = append(tables, api.TableProgress{Schema: t.Schema, Table: t.Table,
				Index: p.cfg.IndexAlias(bus.IndexName(t.Schema, t.Table)), Snapshot: t.State,
				SnapshotRows: t.Rows, SnapshotLSN: cs.SnapshotLSN})
		}
		if !allRead {
			continue
		}
		if read.IsZero() {
			read, nextLog = now, now
			if term != nil {
				bar = progressbar.NewOptions64(int64(max(rows, 1)), progressbar.OptionSetWriter(term),
					progressbar.OptionSetDescription("indexing"), progressbar.OptionShowCount(),
					progressbar.OptionThrottle(250*time.Millisecond), progressbar.OptionFullWidth())
			}
		}
		p.searchable.apply(ctx, tables, ss.AppliedLSN)
		done := true
		for _, t := range tables {
			done = done && (t.Snapshot == capture.TableDone || t.Snapshot == capture.TableSkipped)
		}
		if bar != nil {
			_ = bar.Set64(int64(min(ss.Indexed, rows)))
		}
		if done {
			if bar != nil {
				_ = bar.Set64(int64(rows))
				_ = bar.Finish()
			}
			p.log.Info("snapshot searchable", "rows", rows, "tables", len(tables),
				"after_read", now.Sub(read).Round(time.Millisecond).String())
			return
		}
		if !now.Before(nextLog) {
			nextLog = now.Add(snapshotLogInterval)
			p.log.Info("snapshot indexing", "rows_read", rows, "documents_indexed", ss.Indexed)
		}
	}
}
