package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/internal/pipeline"
)

func (m *Main) runCommand() *cobra.Command {
	var path, cpuProfile, memProfile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipeline: capture, bus, transform, sink and search API",
		Long: `Run starts every stage in one process. With no elasticsearch.url it indexes into
the embedded engine under data_dir; with no nats.url it runs an embedded NATS
JetStream server under data_dir.

--role runs only some stages, so that they can run as separate processes
sharing one NATS cluster (nats.url): capture, transform, sink, api, or a
comma-separated list of them (SERVICE_TYPE=sync is capture,transform,sink;
SERVICE_TYPE=api is api). Several capture processes elect one leader through
a lease; the others stand by. A process without the api role serves only
GET /health, /health/live and /metrics, on api.listen (--api-listen). See
docs/scale-out.md.

Configuration comes from defaults, then the YAML file given with --config, then
environment variables (WALSEARCH_<SECTION>_<KEY>, and PG_*, ES_*, SYNC_INTERVAL,
MIN_BATCH_SIZE, MAX_BATCH_SIZE, RATE_LIMIT, POOL_SIZE), then flags.

SIGINT or SIGTERM stops it cleanly: work in flight is left unacknowledged and
is picked up again on the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, m.Env, cmd.Flags())
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			log := newLogger(m.Stderr, cfg.Log)
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			if memProfile != "" {
				defer writeAllocProfile(memProfile, log)
			}
			log.Info("starting walsearch", "role", cfg.Roles().String(), "postgres", bus.RedactURL(cfg.Postgres.URL),
				"elasticsearch", orDefault(bus.RedactURL(cfg.Elasticsearch.URL), "embedded"),
				"nats", orDefault(bus.RedactURL(cfg.NATS.URL), "embedded"), "data_dir", cfg.DataDir)
			p, err := pipeline.Start(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer p.Close()
			p.FaultIgnoreLeaseLoss = hasEnv(m.Env, faultIgnoreLeaseLoss)
			err = p.Run(cmd.Context())
			log.Info("walsearch stopped")
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "path to walsearch.yaml")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (read it with go tool pprof)")
	cmd.Flags().StringVar(&memProfile, "memprofile", "", "write a profile of the whole run's allocations to this file when walsearch stops (read it with go tool pprof -sample_index=alloc_space)")
	config.AddFlags(cmd.Flags(), config.AllFlags...)
	return cmd
}

// faultIgnoreLeaseLoss set to 1 turns on pipeline.FaultIgnoreLeaseLoss:
// fault injection for the tests of the capture lease's fence.
const faultIgnoreLeaseLoss = "WALSEARCH_FAULT_IGNORE_LEASE_LOSS"

func hasEnv(env []string, name string) bool {
	for _, kv := range env {
		if kv == name+"=1" {
			return true
		}
	}
	return false
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeAllocProfile writes the allocations made since the process started.
// A failure is logged: it must not change how the run ended.
func writeAllocProfile(path string, log *slog.Logger) {
	f, err := os.Create(path)
	if err != nil {
		log.Error("create memory profile", "err", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		log.Error("write memory profile", "err", err)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
