package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/sink"
)

func (m *Main) reindexCommand() *cobra.Command {
	var path string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reindex <table>",
		Short: "Rebuild a table's index with the current settings and mapping, without downtime",
		Long: `reindex asks the running sink to rebuild the index of <table> ("users" for
public.users, "schema.table" otherwise, or the name a script routes to):

  1. it creates <index>_v(N+1) with the current settings and mapping
     (indices.<table> in the configuration, and the column types);
  2. every write from then on goes to both indices, with the same versions;
  3. the documents already indexed are copied over, keeping their versions
     (Elasticsearch's _reindex, or a scan with the embedded engine);
  4. when both indices hold the same number of documents the alias <index>
     is moved to the new index in one atomic step;
  5. the old index is deleted after sink.reindex_grace (default 1m).

Searches go through the alias and see the old index or the new one, never a
half-built one. One reindex runs at a time.

The request travels through the bus, reached from the same configuration as
walsearch run whether it runs or not (a running instance on loopback, with
the access it keeps in data_dir). Requested while walsearch is stopped, the
reindex starts with the next walsearch run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.withBus(cmd, path, func(ctx context.Context, b *bus.Bus) error {
				st, err := sink.RequestReindex(ctx, b.State(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(m.Stdout, "reindex of %s requested at %s\n", st.Index, st.RequestedAt.Format(time.RFC3339))
				if !wait {
					return nil
				}
				if b.Embedded() {
					fmt.Fprintln(m.Stdout, "walsearch is not running: the reindex starts with the next walsearch run")
					return nil
				}
				return m.followReindex(ctx, b, timeout)
			})
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "path to walsearch.yaml")
	cmd.Flags().BoolVar(&wait, "wait", true, "follow the reindex until the alias is swapped")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up following after this long (0 = no limit); the reindex goes on")
	config.AddFlags(cmd.Flags(), config.FlagDataDir, config.FlagNATSURL)
	return cmd
}

// followReindex prints the reindex's progress until the alias is swapped
// (or the reindex failed).
func (m *Main) followReindex(ctx context.Context, b *bus.Bus, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var last string
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		st, err := sink.GetReindex(ctx, b.State())
		if err != nil {
			return err
		}
		if st != nil {
			line := fmt.Sprintf("%s: %s", st.Index, st.Phase)
			if st.To != "" {
				line += fmt.Sprintf(" %s → %s, %d copied", st.From, st.To, st.Copied)
			}
			if st.Phase == sink.ReindexSwapped || st.Phase == sink.ReindexDone {
				line += fmt.Sprintf(", %d documents in both; alias %s now points to %s", st.ToCount, st.Alias, st.To)
			}
			if line != last {
				fmt.Fprintln(m.Stdout, line)
				last = line
			}
			switch st.Phase {
			case sink.ReindexFailed:
				return fmt.Errorf("reindex %s failed: %s", st.Index, st.Error)
			case sink.ReindexSwapped:
				fmt.Fprintf(m.Stdout, "%s is deleted after %s\n", st.From, st.DeleteAfter.Format(time.RFC3339))
				return nil
			case sink.ReindexDone:
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				fmt.Fprintln(m.Stdout, "stopped following; the reindex goes on")
				return nil
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}
