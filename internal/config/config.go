// Package config loads Walsearch's configuration: defaults, then a YAML file,
// then environment variables, then command-line flags, each layer overriding
// the one before. It validates the result and lists every problem at once.
//
// The defaults live in Default() only; docs and --help are generated from it.
package config

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/sink"
	"github.com/walsearch/walsearch/transform"
	"github.com/walsearch/walsearch/verify"
)

// Config is the whole configuration of a walsearch process.
//
// Each stage's section is that stage's own Config: its DefaultConfig sets
// the defaults, its Validate the bounds, and the koanf and help tags on its
// fields name the key and say what it means. Fields without a key (koanf:"-")
// are the stage's collaborators or tunings no user needs; the methods in
// stages.go fill the rest in from the sections the stage shares.
type Config struct {
	Role          string                 `koanf:"role" help:"what this process runs: all, or a comma-separated list of capture, transform, sink and api (all but all need nats.url; see docs/scale-out.md)"`
	DataDir       string                 `koanf:"data_dir" help:"directory of the embedded NATS store and the embedded search engine"`
	Postgres      Postgres               `koanf:"postgres"`
	Capture       capture.Config         `koanf:"capture"`
	Elasticsearch esclient.Config        `koanf:"elasticsearch"`
	NATS          bus.Config             `koanf:"nats"`
	ScriptsDir    string                 `koanf:"scripts_dir" help:"folder of the per-table scripts and document definitions: <index name>/transform.js, e.g. users/transform.js for public.users and shop.orders/transform.js, and <index name>/document.yaml (docs/documents.md)"`
	Transform     transform.ScriptConfig `koanf:"transform"`
	API           api.Config             `koanf:"api"`
	Sink          sink.Config            `koanf:"sink"`
	Indices       map[string]IndexCfg    `koanf:"indices" help:"per-table index settings, keyed like the index name (users for public.users, shop.orders)"`
	Log           Log                    `koanf:"log"`
	Verify        Verify                 `koanf:"verify"`
}

// Postgres says where the source database is and what to capture; the
// capture stage's defaults and checks apply (see CaptureConfig).
type Postgres struct {
	URL         string   `koanf:"url" help:"PostgreSQL connection URL, postgres://user:pass@host:5432/db; the user needs REPLICATION, and ownership of the captured tables (or superuser to capture every table)"`
	Tables      []string `koanf:"tables" help:"tables to capture, each table (in public) or schema.table; empty captures every table"`
	Slot        string   `koanf:"slot" help:"name of the logical replication slot: 1 to 63 lower-case letters, digits or underscores"`
	Publication string   `koanf:"publication" help:"name of the publication, with the same rules as postgres.slot"`
	// PoolSize caps the initial snapshot's parallel workers, each of which
	// holds one connection besides the replication connection.
	PoolSize int `koanf:"pool_size" help:"most connections the snapshot workers hold besides the replication connection (1 to 100); caps capture.snapshot_workers"`
}

// DefaultPoolSize is postgres.pool_size's default.
const DefaultPoolSize = 4

// IndexCfg holds per-table index settings, keyed like the index name: the
// sink's (name, settings, mappings) and the API's (hidden and searched
// fields).
type IndexCfg struct {
	Sink sink.IndexConfig `koanf:",squash"`
	API  api.IndexConfig  `koanf:",squash"`
}

// APIKey is one API key and the indices it may query (all when empty).
type APIKey = api.Key

// Verify configures the background checks of walsearch run (and the
// defaults of walsearch verify's throttle).
type Verify struct {
	// Interval between verifications of every table against its index; 0
	// turns continuous verification off.
	Interval time.Duration `koanf:"interval" help:"how often every table is verified against its index in the background (walsearch verify); 0 turns it off"`
	// Rate caps the rows a continuous verification reads per second; 0 =
	// no limit.
	Rate float64 `koanf:"rate" help:"most rows per second a background verification reads; 0 means no limit"`
	// Repair re-syncs the drifted documents a continuous verification
	// finds, through the backfill path.
	Repair bool `koanf:"repair" help:"re-sync the drifted documents a background verification finds, through the backfill path"`
	// Settle is how long a document must differ, unchanged on both sides,
	// before it counts as drift.
	Settle time.Duration `koanf:"settle" help:"how long a document must differ, unchanged on both sides, before it counts as drift"`
	// NoProgressAfter is how long the applied watermark may stand still
	// while the slot has lag, or a stage acknowledge nothing while messages
	// wait, before it is reported; 0 turns the watch off.
	NoProgressAfter time.Duration `koanf:"no_progress_after" help:"how long the applied position may stand still while the slot has lag, or a stage acknowledge nothing while messages wait, before it is reported as no progress; 0 turns the watch off"`
}

// Log configures logging.
type Log struct {
	Level  string `koanf:"level" help:"debug, info, warn or error"`
	Format string `koanf:"format" help:"text or json"`
}

// Default returns the configuration used when nothing is set: the stages'
// own defaults, and this package's for what no stage owns.
func Default() Config {
	cc := capture.DefaultConfig()
	return Config{
		Role:          string(RoleAll),
		DataDir:       "./walsearch-data",
		Postgres:      Postgres{Slot: cc.Slot, Publication: cc.Publication, PoolSize: DefaultPoolSize},
		Capture:       cc,
		Elasticsearch: esclient.Config{},
		NATS:          bus.DefaultConfig(),
		ScriptsDir:    transform.DefaultScriptConfig().Dir,
		Transform:     transform.DefaultScriptConfig(),
		API:           api.DefaultConfig(),
		Sink:          sink.DefaultConfig(),
		Log:           Log{Level: "info", Format: "text"},
		Verify:        Verify{Rate: verify.DefaultRate, Settle: verify.DefaultSettle, NoProgressAfter: verify.DefaultNoProgressAfter},
	}
}

// Validate reports every problem with c, each naming its key: the stages'
// own checks of their sections, and this package's of the rest.
func (c Config) Validate() error {
	var errs []error
	if c.Postgres.PoolSize < 1 || c.Postgres.PoolSize > 100 {
		errs = append(errs, fmt.Errorf("postgres.pool_size (POOL_SIZE): want 1 to 100, got %d", c.Postgres.PoolSize))
	}
	cc := c.CaptureConfig()
	cc.SnapshotWorkers = c.Capture.SnapshotWorkers // its bound, before pool_size caps it
	errs = append(errs, cc.Validate())
	if c.DataDir == "" && c.Elasticsearch.URL == "" {
		errs = append(errs, errors.New("data_dir: required for the embedded search engine (or set elasticsearch.url)"))
	}
	errs = append(errs, c.validateRoles())
	errs = append(errs, c.BusConfig().Validate(), c.ScriptConfig().Validate(), c.APIConfig().Validate(), c.SinkConfig().Validate())
	if c.Verify.Interval < 0 || c.Verify.NoProgressAfter < 0 {
		errs = append(errs, fmt.Errorf("verify.interval, verify.no_progress_after: want 0 (off) or a positive duration, got %s and %s",
			c.Verify.Interval, c.Verify.NoProgressAfter))
	}
	if c.Verify.Rate < 0 {
		errs = append(errs, fmt.Errorf("verify.rate: want 0 (no limit) or more rows per second, got %g", c.Verify.Rate))
	}
	if c.Verify.Settle <= 0 {
		errs = append(errs, fmt.Errorf("verify.settle: want a positive duration such as 10s, got %s", c.Verify.Settle))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: want debug, info, warn or error, got %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: want text or json, got %q", c.Log.Format))
	}
	return errors.Join(errs...)
}

// Load builds the configuration from defaults, the YAML file at path (if not
// empty), the environment env (os.Environ() form) and the flags that were set.
func Load(path string, env []string, flags *pflag.FlagSet) (Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(toMap(Default()), "."), nil); err != nil {
		return Config{}, fmt.Errorf("load defaults: %w", err)
	}
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	envMap, err := fromEnv(env, k)
	if err != nil {
		return Config{}, err
	}
	if err := k.Load(confmap.Provider(envMap, "."), nil); err != nil {
		return Config{}, fmt.Errorf("load environment: %w", err)
	}
	if flags != nil {
		if err := k.Load(posflag.ProviderWithFlag(flags, ".", k, flagKey(flags)), nil); err != nil {
			return Config{}, fmt.Errorf("load flags: %w", err)
		}
	}
	// Into the defaults, so that the stages' fields without a key keep theirs.
	c := Default()
	err = k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf", DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(",")),
		ErrorUnused: true, WeaklyTypedInput: true, Result: &c, TagName: "koanf",
	}})
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}
