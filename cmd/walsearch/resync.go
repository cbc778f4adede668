package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/sink"
)

// resyncPoll is how often resync looks at the progress it waits for.
const resyncPoll = 200 * time.Millisecond

func (m *Main) resyncCommand() *cobra.Command {
	var path string
	var rate float64
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "resync <table>",
		Short: "Rebuild one table's index from PostgreSQL into a new index version, without downtime",
		Long: `resync rebuilds the index of <table> ("users" for public.users, or
"schema.table") from the rows in PostgreSQL, for when the index has drifted
too far to repair document by document:

  1. the running sink creates <index>_v(N+1) and from then on writes every
     document to both indices, with the same versions (as walsearch reindex);
  2. the running capture backfills the table (as walsearch backfill), which
     fills the new index while changes keep streaming;
  3. once the backfill is read and indexed, the alias <index> is moved to
     the new index in one atomic step; documents the old index held without
     a row are left behind with it;
  4. the old index is deleted after sink.reindex_grace (default 1m).

Searches see the old index or the new one, never a half-built one. It needs
a running walsearch and reaches it from the same configuration, like
walsearch reindex: through the bus (a running instance on loopback, with the
access it keeps in data_dir) and the API (api.listen).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(path, m.Env, cmd.Flags())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			return m.resync(ctx, cfg, args[0], rate)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&path, "config", "c", "", "path to walsearch.yaml")
	f.Float64Var(&rate, "rate", 0, "backfill at most this many rows per second; 0 = no limit")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (0 = no limit)")
	config.AddFlags(f, config.FlagDataDir, config.FlagPostgresURL, config.FlagNATSURL, config.FlagAPIListen)
	return cmd
}

func (m *Main) resync(ctx context.Context, cfg config.Config, table string, rate float64) error {
	if cfg.Postgres.URL == "" {
		return errors.New("postgres.url: required (or set PG_HOST, PG_DATABASE, PG_USER, ...)")
	}
	b, err := openCLIBus(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	if b.Embedded() {
		return errors.New("resync needs a running walsearch: start walsearch run with this configuration first")
	}
	schema, name, err := bus.ParseTable(table)
	if err != nil {
		return err
	}
	index := bus.IndexName(schema, name)
	st, err := sink.RequestResync(ctx, b.State(), index)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "resync of %s requested\n", index)
	for st.Phase != sink.ReindexCopying || st.To == "" {
		if st.Phase == sink.ReindexFailed {
			return fmt.Errorf("resync %s failed: %s", index, st.Error)
		}
		if err := sleepCtx(ctx, resyncPoll); err != nil {
			return err
		}
		if st, err = sink.GetReindex(ctx, b.State()); err != nil {
			return err
		}
	}
	fmt.Fprintf(m.Stdout, "%s created; every write now goes to %s and %s\n", st.To, st.From, st.To)
	id, err := capture.RequestBackfill(ctx, cfg.Postgres.URL, cfg.Postgres.Slot, schema+"."+name, rate)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "backfilling %s.%s (request %d)\n", schema, name, id)
	for {
		done, err := capture.BackfillDone(ctx, b.State(), cfg.Postgres.Slot, schema+"."+name, id)
		if err != nil {
			return err
		}
		if done {
			break
		}
		if err := sleepCtx(ctx, resyncPoll); err != nil {
			return err
		}
	}
	pos, err := walInsertPosition(ctx, cfg.Postgres.URL)
	if err != nil {
		return err
	}
	api := newAPIClient(cfg)
	for {
		applied, err := api.applied(ctx)
		if err == nil && applied >= pos {
			break
		}
		if err := sleepCtx(ctx, resyncPoll); err != nil {
			return fmt.Errorf("wait until the backfill is indexed (applied_lsn of GET /status on %s): %w", cfg.API.Listen, err)
		}
	}
	fmt.Fprintf(m.Stdout, "backfill indexed up to %s; moving the alias\n", pos)
	if err := sink.MarkResyncReady(ctx, b.State(), st.To); err != nil {
		return err
	}
	return m.followReindex(ctx, b, 0)
}

func walInsertPosition(ctx context.Context, url string) (bus.LSN, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("connect to postgres %s: %w", bus.RedactURL(url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var s string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s); err != nil {
		return 0, fmt.Errorf("read the WAL position: %w", err)
	}
	return bus.ParseLSN(s)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
