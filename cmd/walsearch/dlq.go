package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
)

func (m *Main) dlqCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, replay and purge dead-lettered events",
		Long: `The dead-letter stream (WALSEARCH_DLQ) keeps every event a stage could not
process — a script that threw or ran out of time, a document Elasticsearch
rejected — with the original event, the stage, the error, the script's stack
trace and the time. Entries stay until replayed or purged.

dlq reaches the bus from the same configuration as walsearch run, whether it
runs or not: while walsearch run holds the embedded NATS store under
data_dir, dlq connects to it on loopback with the access it keeps in
data_dir/nats-access.json (readable by its user only). With nats.url set it
uses that cluster.`,
	}
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "", "path to walsearch.yaml")
	config.AddFlags(cmd.PersistentFlags(), config.FlagDataDir, config.FlagNATSURL)

	var stage string
	var limit int
	// A --stage that names no stage is refused before the bus is opened.
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error { return checkStage(stage) }
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters: sequence, time, stage, subject and error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return m.withDLQ(cmd, path, func(ctx context.Context, d *bus.DeadLetters) error {
				w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SEQ\tTIME\tSTAGE\tSUBJECT\tERROR")
				n := 0
				err := d.Each(ctx, stage, func(seq uint64, dl *bus.DeadLetter) bool {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", seq, dl.Time.UTC().Format(time.RFC3339), dl.Stage, dl.Subject, oneLine(dl.Error, 120))
					n++
					return limit == 0 || n < limit
				})
				if err != nil {
					return err
				}
				return w.Flush()
			})
		},
	}
	list.Flags().StringVar(&stage, "stage", "", "only this stage (transform, sink)")
	list.Flags().IntVar(&limit, "limit", 0, "list at most this many (0 = all)")

	show := &cobra.Command{
		Use:   "show <seq>",
		Short: "Show one dead letter in full, with the stack trace and the original event",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseSeq(args[0])
			if err != nil {
				return err
			}
			return m.withDLQ(cmd, path, func(ctx context.Context, d *bus.DeadLetters) error {
				dl, err := d.Get(ctx, seq)
				if err != nil {
					return err
				}
				return writeDeadLetter(m.Stdout, seq, dl)
			})
		},
	}

	var all bool
	replay := &cobra.Command{
		Use:   "replay [seq...]",
		Short: "Publish dead letters again to their original subject, then remove them",
		Long: `replay publishes each entry's original event to the subject it was first
published on, with a fresh message id (so JetStream's duplicate window does
not drop it), waits for JetStream to store it, and only then removes the entry.
Replay after fixing the cause, e.g. after editing the table's transform.js:
an event that fails again is dead-lettered again.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return errors.New("dlq replay: give sequence numbers or --all")
			}
			var seqs []uint64
			for _, a := range args {
				seq, err := parseSeq(a)
				if err != nil {
					return err
				}
				seqs = append(seqs, seq)
			}
			return m.withDLQ(cmd, path, func(ctx context.Context, d *bus.DeadLetters) error {
				if all {
					if err := d.Each(ctx, stage, func(seq uint64, _ *bus.DeadLetter) bool {
						seqs = append(seqs, seq)
						return true
					}); err != nil {
						return err
					}
				}
				for _, seq := range seqs {
					dl, err := d.Replay(ctx, seq)
					if err != nil {
						return err
					}
					fmt.Fprintf(m.Stdout, "replayed %d to %s\n", seq, dl.Subject)
				}
				fmt.Fprintf(m.Stdout, "%d replayed\n", len(seqs))
				return nil
			})
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every entry (of --stage, if given)")
	replay.Flags().StringVar(&stage, "stage", "", "with --all: only this stage")

	var purgeAll bool
	purge := &cobra.Command{
		Use:   "purge",
		Short: "Delete dead letters: all of them, or one stage's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if purgeAll == (stage != "") {
				return errors.New("dlq purge: give --all or --stage")
			}
			return m.withDLQ(cmd, path, func(ctx context.Context, d *bus.DeadLetters) error {
				n, err := d.Purge(ctx, stage)
				if err != nil {
					return err
				}
				fmt.Fprintf(m.Stdout, "%d purged\n", n)
				return nil
			})
		},
	}
	purge.Flags().BoolVar(&purgeAll, "all", false, "purge every entry")
	purge.Flags().StringVar(&stage, "stage", "", "purge only this stage's entries")

	cmd.AddCommand(list, show, replay, purge)
	return cmd
}

// withDLQ runs fn on the dead-letter stream of the configuration's bus.
func (m *Main) withDLQ(cmd *cobra.Command, path string, fn func(context.Context, *bus.DeadLetters) error) error {
	return m.withBus(cmd, path, func(ctx context.Context, b *bus.Bus) error { return fn(ctx, b.DeadLetters()) })
}

// withBus loads the configuration from path, the environment and cmd's
// flags, opens its bus (reaching a running instance, see openCLIBus) and
// runs fn.
func (m *Main) withBus(cmd *cobra.Command, path string, fn func(context.Context, *bus.Bus) error) error {
	cfg, err := config.Load(path, m.Env, cmd.Flags())
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	b, err := openCLIBus(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(ctx, b)
}

// openCLIBus opens the bus the way walsearch run does, for a short-lived
// command. With the embedded server it refuses a store another process has
// open: two servers on one store would corrupt it.
func openCLIBus(ctx context.Context, cfg config.Config) (*bus.Bus, error) {
	bc := cfg.BusConfig()
	bc.Listen = "" // a short-lived command serves no clients
	if bc.URL == "" {
		store := filepath.Join(cfg.DataDir, "nats")
		if _, err := os.Stat(store); err != nil {
			return nil, fmt.Errorf("no walsearch bus under %s (data_dir): %w; set --data-dir, or --nats-url for an external bus", cfg.DataDir, err)
		}
		if pid, ok := storeHolder(store); ok {
			// The running instance serves its bus on loopback and says
			// where in data_dir (or on the configured nats.listen).
			switch a, err := bus.ReadLocalAccess(cfg.DataDir); {
			case err == nil:
				bc.URL, bc.Token = a.URL, a.Token
			case cfg.NATS.Listen != "":
				bc.URL = "nats://" + bus.DialAddr(cfg.NATS.Listen)
			default:
				return nil, &storeInUseError{store: store, pid: pid, cause: err}
			}
		}
	}
	b, err := bus.Open(ctx, bc)
	if err != nil {
		return nil, fmt.Errorf("open bus: %w", err)
	}
	return b, nil
}

// storeInUseError says that another process has the embedded store open.
type storeInUseError struct {
	store string
	pid   int
	cause error // why the running instance's local access could not be read
}

func (e *storeInUseError) Error() string {
	return fmt.Sprintf("the embedded NATS store %s is in use by process %d, and its local access cannot be read (%v); "+
		"only one process may open the store. Is the running walsearch an older version, or this command run by another user? "+
		"Set nats.listen in the configuration both use (e.g. WALSEARCH_NATS_LISTEN=127.0.0.1:4222) "+
		"and restart walsearch run, or give this command --nats-url nats://<its nats.listen address>", e.store, e.pid, e.cause)
}

// storeHolder finds another process with a file under store open. nats-server
// keeps every stream's current block file open while it runs, so a running
// walsearch always shows up. It looks through /proc and so only works on
// Linux; elsewhere it finds nothing.
func storeHolder(store string) (int, bool) {
	if runtime.GOOS != "linux" {
		return 0, false
	}
	abs, err := filepath.Abs(store)
	if err != nil {
		return 0, false
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	prefix := abs + string(filepath.Separator)
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or not ours to look at
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err == nil && strings.HasPrefix(target, prefix) {
				return pid, true
			}
		}
	}
	return 0, false
}

// checkStage refuses a --stage that names no stage that dead-letters: it
// would match nothing and look like an empty dead-letter stream.
func checkStage(stage string) error {
	switch stage {
	case "", "transform", "sink":
		return nil
	}
	return fmt.Errorf("--stage %q: no such stage; the stages that dead-letter are transform and sink", stage)
}

func writeDeadLetter(w io.Writer, seq uint64, dl *bus.DeadLetter) error {
	fmt.Fprintf(w, "seq:      %d\ntime:     %s\nstage:    %s\nsubject:  %s\n", seq, dl.Time.UTC().Format(time.RFC3339Nano), dl.Stage, dl.Subject)
	if dl.MsgID != "" {
		fmt.Fprintf(w, "msg id:   %s\n", dl.MsgID)
	}
	fmt.Fprintf(w, "error:    %s\n", dl.Error)
	if dl.Stack != "" {
		fmt.Fprintf(w, "stack:\n%s\n", indent(strings.TrimRight(dl.Stack, "\n")))
	}
	event, err := json.MarshalIndent(dl.Event, "  ", "  ")
	if err != nil {
		event = dl.Event
	}
	_, err = fmt.Fprintf(w, "event:\n  %s\n", event)
	return err
}

func parseSeq(s string) (uint64, error) {
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("want a dead-letter sequence number (see dlq list), got %q", s)
	}
	return seq, nil
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max-1] + "…"
	}
	return s
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
