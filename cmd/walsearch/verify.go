package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/documents"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/verify"
)

// Exit statuses of walsearch verify.
const (
	exitDrift     = 1
	exitUnchecked = 2
)

// exitError ends the process with Code; main prints Err unless it is nil.
type exitError struct {
	Code int
	Err  error
}

func (e *exitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *exitError) Unwrap() error { return e.Err }

func (m *Main) verifyCommand() *cobra.Command {
	var (
		path     string
		asJSON   bool
		repair   bool
		vc       = verify.DefaultConfig()
		maxKeys  int
		progress bool
	)
	cmd := &cobra.Command{
		Use:   "verify [<table>...]",
		Short: "Check that the index holds exactly what the tables say, and repair drift",
		Long: `verify compares each table ("users" for public.users, or "schema.table"; all
published tables when none is given) with its index, in primary-key chunks:
every row is read the way capture reads it and run through the table's
transform.js, and a hash of the document it gives is compared with a hash of
the indexed document. The index of a document definition's root table is
compared with the documents the definition's query builds (then the root's
transform.js); tables captured only for definitions have no index and are
left out. It reports, by document id:

  missing  documents a row should have and the index lacks
  extra    documents in the table's index without a row
  stale    documents that differ from what their row gives

It takes no lock (plain reads) and may run while walsearch run is running,
with the same configuration. A document that differs because a change was
still on its way is checked again once the pipeline indexed everything
committed before its row was read (the applied watermark of GET /status),
and is not reported if it then matches. With the embedded engine it is
reached through the running walsearch's API (api.listen, with the first of
api.keys); when walsearch is not running, its files are opened directly.

--repair asks the running walsearch to re-read exactly the drifted rows
(for a defined index, the roots, whose documents are rebuilt) through its
backfill path (a key without a row becomes a delete, applied with
version semantics), waits for them, and checks them again.

Exit status: 0 no drift, 1 drift found (after --repair: drift that remained),
2 could not check.`,
		Example: `  walsearch verify
  walsearch verify users shop.orders --json
  walsearch verify users --repair`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(path, m.Env, cmd.Flags())
			if err != nil {
				return &exitError{Code: exitUnchecked, Err: err}
			}
			vc.Tables, vc.Repair, vc.MaxKeys = args, repair, maxKeys
			rep, err := m.runVerify(cmd.Context(), cfg, vc, progress)
			if err != nil {
				return &exitError{Code: exitUnchecked, Err: err}
			}
			if asJSON {
				enc := json.NewEncoder(m.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return &exitError{Code: exitUnchecked, Err: err}
				}
			} else {
				printReport(m.Stdout, rep)
			}
			switch {
			case rep.Failed():
				return &exitError{Code: exitUnchecked}
			case rep.Drift() > 0:
				return &exitError{Code: exitDrift}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&path, "config", "c", "", "path to walsearch.yaml")
	config.AddFlags(f, config.FlagDataDir, config.FlagPostgresURL, config.FlagElasticsearchURL, config.FlagNATSURL, config.FlagScriptsDir, config.FlagAPIListen, config.FlagLogLevel)
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&repair, "repair", false, "re-sync the drifted documents through the running walsearch")
	f.Float64Var(&vc.Rate, "rate", 0, "read at most this many rows per second; 0 = no limit")
	f.IntVar(&vc.ChunkRows, "chunk-rows", verify.DefaultChunkRows, "rows read and compared at a time")
	f.IntVar(&maxKeys, "max-keys", verify.DefaultMaxKeys, "ids listed per table and kind of drift (all are counted)")
	f.DurationVar(&vc.Settle, "settle", verify.DefaultSettle, "how long a document must differ, unchanged, before it is reported (the time a change may take to be indexed)")
	f.DurationVar(&vc.RepairWait, "repair-wait", verify.DefaultRepairWait, "with --repair: how long to wait for the repaired documents")
	f.BoolVar(&progress, "progress", true, "show a progress bar on a terminal, or progress lines on stderr otherwise")
	return cmd
}

// runVerify fills vc from cfg and runs it.
func (m *Main) runVerify(ctx context.Context, cfg config.Config, vc verify.Config, progress bool) (*verify.Report, error) {
	env, err := openVerifyEnv(ctx, cfg, newLogger(m.Stderr, cfg.Log))
	if err != nil {
		return nil, err
	}
	defer env.Close()
	env.fill(&vc)
	// An index built by a document definition is compared with the
	// definition's documents; the tables captured only for definitions
	// have no index.
	plans, err := documents.Load(ctx, cfg.ScriptsDir, func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, cfg.Postgres.URL) })
	if err != nil {
		return nil, err
	}
	vc.Skip = documents.CapturedOnly(plans, documents.OwnTables(cfg.Postgres.Tables))
	if len(plans) > 0 {
		vc.Documents = documents.NewRebuilder(plans, env.scripts)
	}
	if progress {
		p := newProgressPrinter(m.Stderr)
		defer p.finish()
		vc.Progress = p.update
	}
	return verify.Run(ctx, vc)
}

// progressPrinter draws a bar per table on a terminal, or prints a line
// every few seconds elsewhere.
type progressPrinter struct {
	w        io.Writer
	terminal bool
	table    string
	bar      *progressbar.ProgressBar
	last     time.Time
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	f, ok := w.(*os.File)
	return &progressPrinter{w: w, terminal: ok && capture.IsTerminal(f)}
}

func (p *progressPrinter) update(pr verify.Progress) {
	if !p.terminal {
		if time.Since(p.last) >= 5*time.Second {
			p.last = time.Now()
			fmt.Fprintf(p.w, "verify %s: %d of ~%d rows, %.0f rows/s, %s left\n", pr.Table, pr.Rows, pr.Total, pr.RowsPerSecond,
				pr.ETA().Round(time.Second))
		}
		return
	}
	if pr.Table != p.table {
		p.finish()
		p.table = pr.Table
		p.bar = progressbar.NewOptions64(int64(max(pr.Total, 1)),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("verify "+pr.Table),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionThrottle(250*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
		)
	}
	p.bar.ChangeMax64(int64(max(pr.Total, pr.Rows, 1)))
	_ = p.bar.Set64(int64(pr.Rows))
}

func (p *progressPrinter) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
		p.bar = nil
	}
}

// printReport prints the report for people.
func printReport(w io.Writer, rep *verify.Report) {
	for _, t := range rep.Tables {
		if t.Error != "" {
			fmt.Fprintf(w, "%s: could not check: %s\n", t.Table, t.Error)
			continue
		}
		state := "in sync"
		if t.Drift() > 0 {
			state = fmt.Sprintf("%d drifted", t.Drift())
		}
		fmt.Fprintf(w, "%s → %s: %s (%d rows, %d documents, %s", t.Table, t.Index, state, t.Rows, t.Documents,
			t.Duration.Round(time.Millisecond))
		if t.Rechecked > 0 {
			fmt.Fprintf(w, ", %d rechecked after changes in flight", t.Rechecked)
		}
		if t.Repaired > 0 {
			fmt.Fprintf(w, ", %d repaired", t.Repaired)
		}
		fmt.Fprintln(w, ")")
		for _, k := range []struct {
			name string
			keys verify.Keys
		}{{"missing", t.Missing}, {"extra", t.Extra}, {"stale", t.Stale}} {
			if k.keys.Count == 0 {
				continue
			}
			more := ""
			if n := k.keys.Count - len(k.keys.IDs); n > 0 {
				more = fmt.Sprintf(" and %d more", n)
			}
			fmt.Fprintf(w, "  %s %d: %s%s\n", k.name, k.keys.Count, strings.Join(k.keys.IDs, ", "), more)
		}
	}
	if d := rep.Drift(); d > 0 {
		fmt.Fprintf(w, "%d documents drifted; walsearch verify --repair re-syncs them\n", d)
	}
}
