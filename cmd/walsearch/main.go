// Command walsearch keeps an Elasticsearch index in step with PostgreSQL and
// serves search over HTTP. See `walsearch --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Env: os.Environ()}
	err := m.Run(ctx, os.Args[1:])
	stop()
	if err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.Code
		}
		if ee == nil || ee.Err != nil {
			fmt.Fprintln(os.Stderr, "walsearch:", err)
		}
		os.Exit(code)
	}
}

// Main holds the process's environment; Run does all the work so that tests
// can run the command in-process.
type Main struct {
	Stdout, Stderr io.Writer
	Env            []string
}

// Run executes the command line args.
func (m *Main) Run(ctx context.Context, args []string) error {
	root := &cobra.Command{
		Use:   "walsearch",
		Short: "Keep Elasticsearch in step with PostgreSQL, and search it over HTTP",
		Long: `walsearch streams every change of your PostgreSQL tables (logical replication)
through an embedded NATS JetStream bus and optional per-table transform.js
scripts into Elasticsearch (or the embedded engine), and serves a search API.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	root.SetVersionTemplate("walsearch {{.Version}}\n")
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	root.SetArgs(args)
	root.AddCommand(m.runCommand(), m.esliteCommand(), m.versionCommand(),
		m.dlqCommand(),
		m.transformCommand(),
		m.backfillCommand(),
		m.reindexCommand(),
		m.teardownCommand(),
		m.configCommand(),
		m.verifyCommand(),
		m.resyncCommand(),
	)
	return root.ExecuteContext(ctx)
}
