package capture

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/walsearch/walsearch/bus"
)

// Defaults of Config.
const (
	DefaultSlot           = "walsearch"
	DefaultPublication    = "walsearch"
	DefaultStatusInterval = 10 * time.Second
	// DefaultSnapshotWorkers is how many connections read the initial snapshot.
	DefaultSnapshotWorkers = 4
	// DefaultChunkRows is how many rows one snapshot or backfill chunk reads.
	DefaultChunkRows = 10000
	// DefaultWatermarkInterval is how often a bus watermark is published
	// while the position advances.
	DefaultWatermarkInterval = 200 * time.Millisecond
	// DefaultMaxSlotLagBytes is the WAL the slot may hold back before
	// capture warns: 1 GiB.
	DefaultMaxSlotLagBytes = 1 << 30
	// DefaultSlotCheckInterval is how often the slot's lag is measured.
	DefaultSlotCheckInterval = 10 * time.Second
	// DefaultLagWarnInterval is the least time between two slot lag warnings.
	DefaultLagWarnInterval = time.Minute
	// DefaultLeaseTTL is how long the capture leader's lease outlives its
	// last renewal: a standby takes over within about this, plus a poll.
	DefaultLeaseTTL = 5 * time.Second
)

// Config configures a Capture.
type Config struct {
	// URL is the PostgreSQL connection URL (postgres://user:pass@host:port/db).
	// The user needs the REPLICATION attribute, and either superuser (for a
	// publication FOR ALL TABLES) or ownership of the captured tables.
	// Required.
	URL string `koanf:"-"`
	// Tables lists the captured tables as "schema.table", or "table" for the
	// public schema. Empty captures every table (a publication FOR ALL TABLES).
	// Default: empty.
	Tables []string `koanf:"-"`
	// Slot is the logical replication slot's name: lower-case letters,
	// digits and underscores, at most 63 characters. Default: "walsearch".
	Slot string `koanf:"-"`
	// Publication is the publication's name, with the same rules as Slot.
	// Default: "walsearch".
	Publication string `koanf:"-"`
	// Instance describes this instance (for example host and data_dir) in
	// the owners table, so that another instance refused the slot can say
	// whose it is. Default: empty.
	Instance string `koanf:"-"`
	// StatusInterval is how often the slot position is confirmed to
	// PostgreSQL (after the Publisher flushed), and on shutdown. Default: 10s.
	StatusInterval time.Duration `koanf:"-"`
	// SnapshotWorkers is how many connections read the initial snapshot in
	// parallel, each importing the slot's exported snapshot. Default: 4.
	SnapshotWorkers int `koanf:"snapshot_workers" help:"connections reading the initial snapshot in parallel (1 to 64), at most postgres.pool_size"`
	// ChunkRows is how many rows a snapshot or backfill chunk reads, by
	// primary key; progress is recorded after each chunk. Default: 10000.
	ChunkRows int `koanf:"chunk_rows" help:"rows a snapshot or backfill chunk reads, by primary key; progress is recorded after each chunk"`
	// WatermarkInterval is how often a bus watermark (bus.OpWatermark) is
	// published while the received position advances. Default: 200ms.
	WatermarkInterval time.Duration `koanf:"watermark_interval" help:"how often a watermark is published while the position advances; read-your-writes searches wait on it"`
	// MaxSlotLagBytes is how much WAL the slot may hold back
	// (pg_current_wal_lsn() - confirmed_flush_lsn) before capture warns,
	// repeatedly, that the disk of the PostgreSQL server is filling up.
	// Default: 1 GiB.
	MaxSlotLagBytes int64 `koanf:"max_slot_lag_bytes" help:"WAL in bytes the slot may hold back on the PostgreSQL server before capture warns that its disk fills up"`
	// SlotCheckInterval is how often the slot's lag is measured. Default: 10s.
	SlotCheckInterval time.Duration `koanf:"-"`
	// LagWarnInterval is the least time between two slot lag warnings.
	// Default: 1m.
	LagWarnInterval time.Duration `koanf:"-"`
	// LeaseTTL is the TTL of the lease that elects one leader among the
	// capture processes sharing an external NATS. Default: 5s.
	LeaseTTL time.Duration `koanf:"lease_ttl" help:"with an external NATS: how long the capture leader's lease (and the active transform's and sink's) outlives its last renewal (1s to 5m); a standby process takes over within about this once the active one is gone"`
	// TakeOverSlot makes capture end the server session that still streams
	// from the slot, instead of waiting for it: set it only when a lease
	// proves that session belongs to a capture that lost its lease.
	// Default: false.
	TakeOverSlot bool `koanf:"-"`
	// Partitions is the bus's partition count (bus.Config.Partitions):
	// snapshot rows are batched per partition of their key, as the
	// publisher partitions streamed changes. Default: 1.
	Partitions int `koanf:"-"`
	// Progress, when set, receives a progress bar of the initial snapshot
	// (pass os.Stderr when it is a terminal, see IsTerminal). Default: none.
	Progress io.Writer `koanf:"-"`
	// Logger receives the capture's logs. Default: discard.
	Logger *slog.Logger `koanf:"-"`
}

// DefaultConfig returns a Config with every default set; URL must still be set.
func DefaultConfig() Config {
	return Config{
		Slot:              DefaultSlot,
		Publication:       DefaultPublication,
		StatusInterval:    DefaultStatusInterval,
		SnapshotWorkers:   DefaultSnapshotWorkers,
		ChunkRows:         DefaultChunkRows,
		WatermarkInterval: DefaultWatermarkInterval,
		MaxSlotLagBytes:   DefaultMaxSlotLagBytes,
		SlotCheckInterval: DefaultSlotCheckInterval,
		LagWarnInterval:   DefaultLagWarnInterval,
		LeaseTTL:          DefaultLeaseTTL,
	}
}

// withDefaults fills the zero fields of c with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Slot == "" {
		c.Slot = d.Slot
	}
	if c.Publication == "" {
		c.Publication = d.Publication
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = d.StatusInterval
	}
	if c.SnapshotWorkers == 0 {
		c.SnapshotWorkers = d.SnapshotWorkers
	}
	if c.ChunkRows == 0 {
		c.ChunkRows = d.ChunkRows
	}
	if c.WatermarkInterval == 0 {
		c.WatermarkInterval = d.WatermarkInterval
	}
	if c.MaxSlotLagBytes == 0 {
		c.MaxSlotLagBytes = d.MaxSlotLagBytes
	}
	if c.SlotCheckInterval == 0 {
		c.SlotCheckInterval = d.SlotCheckInterval
	}
	if c.LagWarnInterval == 0 {
		c.LagWarnInterval = d.LagWarnInterval
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = d.LeaseTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

var nameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Validate reports every invalid field of c.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("postgres.url: required, a PostgreSQL URL such as postgres://user@host:5432/db (or set PG_HOST, PG_DATABASE, PG_USER, ...)"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		errs = append(errs, fmt.Errorf("postgres.url: want postgres://user:pass@host:5432/db, got %q", bus.RedactURL(c.URL)))
	} else if _, err := pgconn.ParseConfig(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("postgres.url: want a PostgreSQL connection URL: %w", err))
	}
	if !nameRE.MatchString(c.Slot) {
		errs = append(errs, fmt.Errorf("postgres.slot: %q: want 1 to 63 lower-case letters, digits or underscores", c.Slot))
	}
	if !nameRE.MatchString(c.Publication) {
		errs = append(errs, fmt.Errorf("postgres.publication: %q: want 1 to 63 lower-case letters, digits or underscores", c.Publication))
	}
	seen := make(map[tableName]bool)
	for _, t := range c.Tables {
		n, err := parseTableName(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("postgres.tables: %w", err))
			continue
		}
		if seen[n] {
			errs = append(errs, fmt.Errorf("postgres.tables: %q is listed twice", t))
		}
		seen[n] = true
	}
	if c.LeaseTTL != 0 && (c.LeaseTTL < time.Second || c.LeaseTTL > 5*time.Minute) {
		errs = append(errs, fmt.Errorf("capture.lease_ttl: %s: want 1s to 5m", c.LeaseTTL))
	}
	if c.StatusInterval <= 0 {
		errs = append(errs, fmt.Errorf("capture.status_interval: %s: want a positive duration such as 10s", c.StatusInterval))
	}
	if c.SnapshotWorkers < 1 || c.SnapshotWorkers > 64 {
		errs = append(errs, fmt.Errorf("capture.snapshot_workers: %d: want 1 to 64", c.SnapshotWorkers))
	}
	if c.ChunkRows < 1 {
		errs = append(errs, fmt.Errorf("capture.chunk_rows: %d: want at least 1", c.ChunkRows))
	}
	if c.WatermarkInterval <= 0 {
		errs = append(errs, fmt.Errorf("capture.watermark_interval: %s: want a positive duration such as 200ms", c.WatermarkInterval))
	}
	if c.MaxSlotLagBytes < 1 {
		errs = append(errs, fmt.Errorf("capture.max_slot_lag_bytes: %d: want a positive number of bytes", c.MaxSlotLagBytes))
	}
	if c.SlotCheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("capture.slot_check_interval: %s: want a positive duration such as 10s", c.SlotCheckInterval))
	}
	if c.LagWarnInterval <= 0 {
		errs = append(errs, fmt.Errorf("capture.lag_warn_interval: %s: want a positive duration such as 1m", c.LagWarnInterval))
	}
	return errors.Join(errs...)
}

// tableName is a schema-qualified table name.
type tableName struct{ schema, table string }

func (t tableName) String() string { return t.schema + "." + t.table }

// parseTableName parses "schema.table" or "table" (in public).
func parseTableName(s string) (tableName, error) {
	schema, table, err := bus.ParseTable(s)
	return tableName{schema, table}, err
}

// tableNames parses c.Tables, which Validate has checked.
func (c Config) tableNames() []tableName {
	out := make([]tableName, 0, len(c.Tables))
	for _, t := range c.Tables {
		if n, err := parseTableName(t); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// sessionParams are set on every connection so that values are printed in
// the forms the codec parses, the same way for COPY and pgoutput.
var sessionParams = map[string]string{
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "1",
	"bytea_output":       "hex",
	"application_name":   "walsearch",
}

// queryConfig parses url for a regular connection.
func queryConfig(url string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse capture url: %w", err)
	}
	maps.Copy(cfg.RuntimeParams, sessionParams)
	return cfg, nil
}

// replicationConfig parses url for a logical replication connection.
func replicationConfig(url string) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse capture url: %w", err)
	}
	maps.Copy(cfg.RuntimeParams, sessionParams)
	cfg.RuntimeParams["replication"] = "database"
	// A cancelled receive must not send a cancel request to the walsender;
	// an expired deadline is enough to stop waiting.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	return cfg, nil
}
