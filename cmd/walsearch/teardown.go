package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/config"
)

// errUnconfirmed is returned when teardown ran without --yes.
var errUnconfirmed = errors.New("nothing removed: run teardown again with --yes to remove what is listed")

func (m *Main) teardownCommand() *cobra.Command {
	var path, owner string
	var yes bool
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Remove what this instance created in PostgreSQL: replication slot, publication, helper tables",
		Long: `teardown removes what the walsearch instance of this configuration created in
PostgreSQL: its replication slot (which otherwise keeps WAL on the server's
disk for ever), its publication, its ownership records and watermark rows,
and the helper tables walsearch_watermarks and walsearch_owners once no other
instance uses them.

It removes only what is this instance's: what PostgreSQL's walsearch_owners
table records under the owner id kept in data_dir (or on the external bus),
or, for an instance started before owners were recorded, a slot that
data_dir's snapshot was taken from. --owner <id> removes what an instance
that is gone for good owned (the id is in the error that refused the slot).
It refuses while the slot is in use: stop walsearch first.

Without --yes it lists what it would remove and exits non-zero. It leaves
data_dir (bus and embedded index) and the Elasticsearch indices alone: remove
data_dir before starting this instance again, so that it takes a fresh
snapshot.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, m.Env, cmd.Flags())
			if err != nil {
				return err
			}
			if cfg.Postgres.URL == "" {
				return fmt.Errorf("postgres.url: required (or set PG_HOST, PG_DATABASE, PG_USER, ...)")
			}
			ctx := cmd.Context()
			opts := capture.TeardownOptions{URL: cfg.Postgres.URL, Slot: cfg.Postgres.Slot, Publication: cfg.Postgres.Publication,
				Owner: owner, Apply: yes}
			if _, err := os.Stat(filepath.Join(cfg.DataDir, "nats")); cfg.NATS.URL != "" || err == nil {
				b, err := openCLIBus(ctx, cfg)
				if err != nil {
					return err
				}
				defer b.Close()
				opts.State = b.State()
			} else {
				fmt.Fprintf(m.Stderr, "no walsearch bus under %s (data_dir): only what --owner names can be removed\n", cfg.DataDir)
			}
			rep, err := capture.Teardown(ctx, opts)
			if err != nil {
				return err
			}
			verb := "removed"
			if !yes {
				verb = "would remove"
			}
			if len(rep.Removed) == 0 {
				fmt.Fprintf(m.Stdout, "nothing to remove for slot %s and publication %s\n", opts.Slot, opts.Publication)
			}
			for _, r := range rep.Removed {
				fmt.Fprintf(m.Stdout, "%s %s\n", verb, r)
			}
			for _, k := range rep.Kept {
				fmt.Fprintf(m.Stdout, "kept %s\n", k)
			}
			if !yes && len(rep.Removed) > 0 {
				return errUnconfirmed
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "path to walsearch.yaml")
	cmd.Flags().BoolVar(&yes, "yes", false, "remove what is listed (without it, only list it)")
	cmd.Flags().StringVar(&owner, "owner", "", "also remove what this owner id recorded (an instance gone for good)")
	config.AddFlags(cmd.Flags(), config.FlagPostgresURL, config.FlagDataDir, config.FlagNATSURL)
	return cmd
}
