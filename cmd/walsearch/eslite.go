package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/internal/eslite"
)

func (m *Main) esliteCommand() *cobra.Command {
	var listen, dir string
	cmd := &cobra.Command{
		Use:   "eslite",
		Short: "Serve the embedded Elasticsearch-compatible engine on a port",
		Long: `eslite serves the embedded search engine over HTTP so that any Elasticsearch
client can use it. It is meant for development, tests and small single-node
deployments; it is not a cluster. See docs/eslite.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(m.Stderr, config.Log{Level: "info", Format: "text"})
			eng, err := eslite.Open(eslite.Config{Dir: dir, Logger: log.With("component", "eslite")})
			if err != nil {
				return err
			}
			defer eng.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			where := dir
			if where == "" {
				where = "memory only"
			}
			log.Info("eslite listening", "addr", ln.Addr().String(), "data", where)
			return eslite.Serve(cmd.Context(), ln, eng)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9200", "address to serve on")
	cmd.Flags().StringVar(&dir, "data", "", "directory to persist indices in (empty = memory only)")
	return cmd
}
