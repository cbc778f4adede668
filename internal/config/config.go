// Package config loads Walsearch's configuration: defaults, then a YAML file,
// then environment variables, then command-line flags, each layer overriding
// the one before. It validates the result and lists every problem at once.
//
// The defaults live in Default() only; docs and --help are generated from it.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/walsearch/walsearch/sink"
	"github.com/walsearch/walsearch/transform"
)

// Config is the whole configuration of a walsearch process.
type Config struct {
	// DataDir holds the embedded NATS store and the embedded search engine.
	DataDir       string              `koanf:"data_dir"`
	Postgres      Postgres            `koanf:"postgres"`
	Capture       Capture             `koanf:"capture"`
	Elasticsearch Elasticsearch       `koanf:"elasticsearch"`
	NATS          NATS                `koanf:"nats"`
	ScriptsDir    string              `koanf:"scripts_dir"`
	Transform     Transform           `koanf:"transform"`
	API           API                 `koanf:"api"`
	Sink          Sink                `koanf:"sink"`
	Indices       map[string]IndexCfg `koanf:"indices"`
	Log           Log                 `koanf:"log"`
	Verify        Verify              `koanf:"verify"`
}

// Postgres says where the source database is and what to capture.
type Postgres struct {
	URL string `koanf:"url"`
	// Tables to capture ("table" for public.table, or "schema.table"); empty = all.
	Tables      []string `koanf:"tables"`
	Slot        string   `koanf:"slot"`
	Publication string   `koanf:"publication"`
	// PoolSize caps the initial snapshot's parallel workers, each of which
	// holds one connection besides the replication connection.
	PoolSize int `koanf:"pool_size"`
}

// Capture tunes the capture stage (snapshot, backfills, slot health).
type Capture struct {
	// SnapshotWorkers is how many connections read the initial snapshot.
	SnapshotWorkers int `koanf:"snapshot_workers"`
	// ChunkRows is how many rows a snapshot or backfill chunk reads.
	ChunkRows int `koanf:"chunk_rows"`
	// MaxSlotLagBytes is the WAL the slot may hold back before capture warns.
	MaxSlotLagBytes int64 `koanf:"max_slot_lag_bytes"`
	// WatermarkInterval is how often a bus watermark is published.
	WatermarkInterval time.Duration `koanf:"watermark_interval"`
}

// Elasticsearch says where the search cluster is; an empty URL runs the
// embedded engine under DataDir.
type Elasticsearch struct {
	URL      string `koanf:"url"`
	Username string `koanf:"username"`
	Password string `koanf:"password"`
	APIKey   string `koanf:"api_key"`
	// CACert is a PEM file of the CAs to trust for an https URL.
	CACert string `koanf:"ca_cert"`
	// InsecureSkipVerify accepts any server certificate: test clusters only.
	InsecureSkipVerify bool `koanf:"insecure_skip_verify"`
}

// NATS says where the bus is; an empty URL runs an embedded server.
type NATS struct {
	URL      string `koanf:"url"`
	Listen   string `koanf:"listen"`
	Replicas int    `koanf:"replicas"`
}

// API configures the HTTP search API.
type API struct {
	Listen string `koanf:"listen"`
	// Keys are the accepted API keys, each optionally limited to indices.
	// Env WALSEARCH_API_KEYS: comma-separated keys, each allowed every index.
	// Without keys the API listens on loopback only.
	Keys []APIKey `koanf:"keys"`
	// RateLimit is requests per second per key (or client address); 0 = none.
	RateLimit float64 `koanf:"rate_limit"`
	// RateBurst is the burst above rate_limit; 0 = twice rate_limit.
	RateBurst      int           `koanf:"rate_burst"`
	RequestTimeout time.Duration `koanf:"request_timeout"`
	// BodyLimit caps request bodies in bytes.
	BodyLimit int `koanf:"body_limit"`
	// CursorSecret signs scroll cursors; empty = a random key per process.
	CursorSecret string `koanf:"cursor_secret"`
	// MinLSNTimeout bounds a read-your-writes (min_lsn) wait.
	MinLSNTimeout time.Duration `koanf:"min_lsn_timeout"`
	// Fallback is "postgres" to answer simple searches from PostgreSQL while
	// Elasticsearch is unreachable; empty = answer 503.
	Fallback string `koanf:"fallback"`
	// BreakerCooldown is how long searches fail fast (503, or the fallback)
	// after the search engine failed, before it is tried again.
	BreakerCooldown time.Duration `koanf:"breaker_cooldown"`
}

// APIKey is one API key and the indices it may query (all when empty).
type APIKey struct {
	Key     string   `koanf:"key"`
	Indices []string `koanf:"indices"`
}

// Sink configures bulk indexing.
type Sink struct {
	MinBatchSize int           `koanf:"min_batch_size"`
	MaxBatchSize int           `koanf:"max_batch_size"`
	SyncInterval time.Duration `koanf:"sync_interval"`
	RateLimit    float64       `koanf:"rate_limit"`
	// Concurrency is the number of ordered lanes, each with one bulk request
	// in flight (WALSEARCH_SINK_CONCURRENCY).
	Concurrency int `koanf:"concurrency"`
	// ReindexGrace is how long walsearch reindex keeps the replaced index.
	ReindexGrace time.Duration `koanf:"reindex_grace"`
	// MaxContentLength is the search engine's request size limit in bytes
	// (Elasticsearch's http.max_content_length, 100mb by default): a
	// document too large to fit a request on its own is dead-lettered
	// instead of being sent.
	MaxContentLength int `koanf:"max_content_length"`
}

// IndexCfg holds per-table index settings, keyed like the index name.
type IndexCfg struct {
	Index        string         `koanf:"index"`
	Settings     map[string]any `koanf:"settings"`
	Mappings     map[string]any `koanf:"mappings"`
	HiddenFields []string       `koanf:"hidden_fields"`
	// SearchFields are the fields the API's full-text "q" searches, each
	// optionally boosted ("title^3"); empty = every text and keyword field.
	SearchFields []string `koanf:"search_fields"`
}

// Transform configures the per-table scripts.
type Transform struct {
	// Timeout bounds every call into a script; a call that runs longer is
	// interrupted, tried again with more time (TimeoutRetries), and then
	// its change dead-lettered.
	Timeout time.Duration `koanf:"timeout"`
	// TimeoutRetries is how many times a call that ran out of time is tried
	// again, each time with twice the limit, up to MaxTimeout; 0 turns
	// retries off.
	TimeoutRetries int `koanf:"timeout_retries"`
	// MaxTimeout is the largest limit a retry gets; 0 means 10 × Timeout.
	MaxTimeout time.Duration `koanf:"max_timeout"`
	// MaxDocBytes is the largest document a script may return.
	MaxDocBytes int `koanf:"max_doc_bytes"`
	// ReloadInterval is how often scripts_dir is checked for edits; 0 turns
	// hot reload off.
	ReloadInterval time.Duration `koanf:"reload_interval"`
	// Workers is how many changes are mapped at once; 0 means one per CPU.
	Workers int `koanf:"workers"`
}

// Verify configures the background checks of walsearch run (and the
// defaults of walsearch verify's throttle).
type Verify struct {
	// Interval between verifications of every table against its index; 0
	// turns continuous verification off.
	Interval time.Duration `koanf:"interval"`
	// Rate caps the rows a continuous verification reads per second; 0 =
	// no limit.
	Rate float64 `koanf:"rate"`
	// Repair re-syncs the drifted documents a continuous verification
	// finds, through the backfill path.
	Repair bool `koanf:"repair"`
	// Settle is how long a document must differ, unchanged on both sides,
	// before it counts as drift.
	Settle time.Duration `koanf:"settle"`
	// NoProgressAfter is how long the applied watermark may stand still
	// while the slot has lag, or a stage acknowledge nothing while messages
	// wait, before it is reported; 0 turns the watch off.
	NoProgressAfter time.Duration `koanf:"no_progress_after"`
}

// Log configures logging.
type Log struct {
	Level  string `koanf:"level"`
	Format string `koanf:"format"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		DataDir:    "./walsearch-data",
		Postgres:   Postgres{Slot: "walsearch", Publication: "walsearch", PoolSize: 4},
		NATS:       NATS{Replicas: 1},
		Capture:    Capture{SnapshotWorkers: 4, ChunkRows: 10000, MaxSlotLagBytes: 1 << 30, WatermarkInterval: 200 * time.Millisecond},
		ScriptsDir: "./scripts",
		Transform: Transform{Timeout: transform.DefaultScriptTimeout, TimeoutRetries: transform.DefaultTimeoutRetries, MaxDocBytes: transform.DefaultMaxDocBytes,
			ReloadInterval: transform.DefaultReloadInterval},
		API: API{Listen: "127.0.0.1:8080", RateLimit: 100, RequestTimeout: 10 * time.Second, BodyLimit: 1 << 20, MinLSNTimeout: 5 * time.Second,
			BreakerCooldown: 2 * time.Second},
		Sink:   Sink{MinBatchSize: 1, MaxBatchSize: 1000, SyncInterval: time.Second, Concurrency: 4, ReindexGrace: time.Minute, MaxContentLength: sink.DefaultMaxContentLength},
		Log:    Log{Level: "info", Format: "text"},
		Verify: Verify{Rate: 1000, Settle: 10 * time.Second, NoProgressAfter: 5 * time.Minute},
	}
}

// Validate reports every problem with c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Postgres.URL == "" {
		errs = append(errs, errors.New("postgres.url: required (or set PG_HOST, PG_DATABASE, PG_USER, ...)"))
	} else if u, err := url.Parse(c.Postgres.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		errs = append(errs, fmt.Errorf("postgres.url: want postgres://user:pass@host:5432/db, got %q", Redact(c.Postgres.URL)))
	}
	if !validIdent(c.Postgres.Slot) {
		errs = append(errs, fmt.Errorf("postgres.slot: want lower-case letters, digits and underscores, got %q", c.Postgres.Slot))
	}
	if c.Postgres.Publication == "" {
		errs = append(errs, errors.New("postgres.publication: required"))
	}
	if c.Postgres.PoolSize < 1 || c.Postgres.PoolSize > 100 {
		errs = append(errs, fmt.Errorf("postgres.pool_size (POOL_SIZE): want 1 to 100, got %d", c.Postgres.PoolSize))
	}
	for _, t := range c.Postgres.Tables {
		if t == "" || strings.Count(t, ".") > 1 {
			errs = append(errs, fmt.Errorf("postgres.tables: want \"table\" or \"schema.table\", got %q", t))
		}
	}
	if c.Capture.SnapshotWorkers < 1 || c.Capture.SnapshotWorkers > 64 {
		errs = append(errs, fmt.Errorf("capture.snapshot_workers: want 1 to 64, got %d", c.Capture.SnapshotWorkers))
	}
	if c.Capture.ChunkRows < 1 {
		errs = append(errs, fmt.Errorf("capture.chunk_rows: want at least 1, got %d", c.Capture.ChunkRows))
	}
	if c.Capture.MaxSlotLagBytes < 1 {
		errs = append(errs, fmt.Errorf("capture.max_slot_lag_bytes: want a positive number of bytes, got %d", c.Capture.MaxSlotLagBytes))
	}
	if c.Capture.WatermarkInterval <= 0 {
		errs = append(errs, fmt.Errorf("capture.watermark_interval: want a positive duration such as 200ms, got %s", c.Capture.WatermarkInterval))
	}
	if c.DataDir == "" && (c.NATS.URL == "" || c.Elasticsearch.URL == "") {
		errs = append(errs, errors.New("data_dir: required for the embedded NATS server and search engine"))
	}
	if c.Transform.Timeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("transform.timeout: want at least 1ms, got %s", c.Transform.Timeout))
	}
	if c.Transform.TimeoutRetries < 0 || c.Transform.TimeoutRetries > 10 {
		errs = append(errs, fmt.Errorf("transform.timeout_retries: want 0 (no retries) to 10, got %d", c.Transform.TimeoutRetries))
	}
	if c.Transform.MaxTimeout != 0 && c.Transform.MaxTimeout < c.Transform.Timeout {
		errs = append(errs, fmt.Errorf("transform.max_timeout: want 0 (10 × transform.timeout) or at least transform.timeout (%s), got %s",
			c.Transform.Timeout, c.Transform.MaxTimeout))
	}
	if c.Transform.MaxDocBytes < 1024 {
		errs = append(errs, fmt.Errorf("transform.max_doc_bytes: want at least 1024, got %d", c.Transform.MaxDocBytes))
	}
	if c.Transform.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("transform.reload_interval: want 0 (off) or a positive duration, got %s", c.Transform.ReloadInterval))
	}
	if c.Transform.Workers < 0 {
		errs = append(errs, fmt.Errorf("transform.workers: want 0 (one per CPU) or more, got %d", c.Transform.Workers))
	}
	if c.API.Listen == "" {
		errs = append(errs, errors.New("api.listen: required, e.g. 127.0.0.1:8080"))
	} else if host, _, err := net.SplitHostPort(c.API.Listen); err != nil {
		errs = append(errs, fmt.Errorf("api.listen: want host:port, got %q", c.API.Listen))
	} else if ip := net.ParseIP(host); len(c.API.Keys) == 0 && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		errs = append(errs, fmt.Errorf("api.listen: %q accepts remote connections but no API key is configured; set api.keys (or WALSEARCH_API_KEYS) or listen on 127.0.0.1", c.API.Listen))
	}
	for i, k := range c.API.Keys {
		if len(k.Key) < 16 {
			errs = append(errs, fmt.Errorf("api.keys[%d]: want a key of at least 16 characters", i))
		}
	}
	if c.API.RateLimit < 0 || c.API.RateBurst < 0 {
		errs = append(errs, fmt.Errorf("api.rate_limit: want 0 (no limit) or more requests per second, got %g", c.API.RateLimit))
	}
	if c.API.RequestTimeout <= 0 || c.API.MinLSNTimeout <= 0 || c.API.BreakerCooldown <= 0 {
		errs = append(errs, errors.New("api.request_timeout, api.min_lsn_timeout, api.breaker_cooldown: want positive durations"))
	}
	if c.API.BodyLimit < 1024 {
		errs = append(errs, fmt.Errorf("api.body_limit: want at least 1024 bytes, got %d", c.API.BodyLimit))
	}
	if c.API.Fallback != "" && c.API.Fallback != "postgres" {
		errs = append(errs, fmt.Errorf("api.fallback: want \"\" or \"postgres\", got %q", c.API.Fallback))
	}
	if c.Sink.Concurrency < 1 || c.Sink.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("sink.concurrency: want 1 to 64, got %d", c.Sink.Concurrency))
	}
	if c.Sink.MaxContentLength < 1024 {
		errs = append(errs, fmt.Errorf("sink.max_content_length: want the search engine's http.max_content_length in bytes (at least 1024), got %d", c.Sink.MaxContentLength))
	}
	if c.Sink.ReindexGrace < 0 {
		errs = append(errs, fmt.Errorf("sink.reindex_grace: want 0 or more, got %s", c.Sink.ReindexGrace))
	}
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

func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
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
	var c Config
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

// flagKey maps a flag like --postgres-url to the key postgres.url. Only flags
// the user set are taken, so a flag's default never hides the file or env.
func flagKey(fs *pflag.FlagSet) func(f *pflag.Flag) (string, any) {
	return func(f *pflag.Flag) (string, any) {
		if !f.Changed {
			return "", nil
		}
		key, ok := flagKeys[f.Name]
		if !ok {
			return "", nil
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			return key, sv.GetSlice()
		}
		return key, posflag.FlagVal(fs, f)
	}
}

// flagKeys lists the flags that set configuration keys.
var flagKeys = map[string]string{
	"data-dir":          "data_dir",
	"postgres-url":      "postgres.url",
	"tables":            "postgres.tables",
	"elasticsearch-url": "elasticsearch.url",
	"nats-url":          "nats.url",
	"scripts-dir":       "scripts_dir",
	"api-listen":        "api.listen",
	"log-level":         "log.level",
}

// AddFlags registers the configuration flags on fs.
func AddFlags(fs *pflag.FlagSet) {
	d := Default()
	fs.String("data-dir", d.DataDir, "directory for the embedded NATS store and search engine (data_dir)")
	fs.String("postgres-url", "", "PostgreSQL connection URL (postgres.url)")
	fs.StringSlice("tables", nil, "tables to capture, comma-separated; empty = all (postgres.tables)")
	fs.String("elasticsearch-url", "", "Elasticsearch URL; empty = embedded engine (elasticsearch.url)")
	fs.String("nats-url", "", "external NATS URL; empty = embedded server (nats.url)")
	fs.String("scripts-dir", d.ScriptsDir, "folder of per-table transform.js scripts (scripts_dir)")
	fs.String("api-listen", d.API.Listen, "address of the search API (api.listen)")
	fs.String("log-level", d.Log.Level, "debug, info, warn or error (log.level)")
}

// Redact hides the password in a URL.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	return u.String()
}
