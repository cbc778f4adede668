package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/config"
)

func (m *Main) backfillCommand() *cobra.Command {
	var path string
	var rate float64
	cmd := &cobra.Command{
		Use:   "backfill <table>",
		Short: "Re-read one table into the index while changes keep streaming",
		Long: `backfill asks the running walsearch to read every row of a table again
("table" for public.table, or "schema.table") while it keeps streaming changes,
for instance after a transform.js script changed or documents were lost.

The request is a row written to the walsearch_watermarks table in PostgreSQL:
the running capture sees it in the replication stream and starts the backfill,
so this command needs only postgres.url, not the bus. Progress is recorded in
the state store after every chunk: a restart resumes the backfill. Rows that
change while a chunk is read are taken from the change stream instead, so the
index never goes back to an older version of a row.

Watch the capture's log or GET /status (capture.backfills) for progress.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(path, m.Env, cmd.Flags())
			if err != nil {
				return err
			}
			if cfg.Postgres.URL == "" {
				return fmt.Errorf("postgres.url: required (or set PG_HOST, PG_DATABASE, PG_USER, ...)")
			}
			id, err := capture.RequestBackfill(cmd.Context(), cfg.Postgres.URL, cfg.Postgres.Slot, args[0], rate)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "backfill of %s requested (request %d on slot %s); the running walsearch starts it when it reads the request from the replication stream\n",
				args[0], id, cfg.Postgres.Slot)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "path to walsearch.yaml")
	cmd.Flags().Float64Var(&rate, "rate", 0, "read at most this many rows per second; 0 = no limit")
	config.AddFlags(cmd.Flags(), config.FlagPostgresURL)
	return cmd
}
