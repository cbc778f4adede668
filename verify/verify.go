// Package verify proves that a search index holds what its PostgreSQL table
// says it should: it reads each table in primary-key chunks the way capture
// reads them, runs every row through the table's transform script, and
// compares each expected document with the indexed one (byte for byte, else
// as canonical JSON), reporting missing, extra and stale documents by id. It
// can repair what it found through capture's backfill path.
//
// It never locks a table (plain reads) and tolerates concurrent writes: a
// document that differs is read again on both sides until the difference
// has stayed the same for Config.Settle and the pipeline has indexed every
// change committed before the row was last read; only then is it reported.
// It writes nothing to the search engine itself.
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/documents"
	"github.com/walsearch/walsearch/sink"
	"github.com/walsearch/walsearch/transform"
)

// Defaults for Config.
const (
	DefaultChunkRows    = 1000
	DefaultMaxKeys      = 100
	DefaultSettle       = 10 * time.Second
	DefaultRepairWait   = 2 * time.Minute
	scrollKeepAlive     = 2 * time.Minute
	maxRecheckBackoff   = 2 * time.Second
	firstRecheckBackoff = 50 * time.Millisecond
	// recheckLimit × Settle is how long documents that keep changing are
	// checked again before they are left out of the report.
	recheckLimit = 6
)

// Mapper turns a change into documents: the pipeline's transform scripts.
type Mapper interface {
	Map(c *bus.Change) ([]*bus.Doc, error)
}

var _ Mapper = (*transform.Scripts)(nil)

// Rebuilder reads the documents of definitions' roots as the pipeline
// builds them (documents.Rebuilder).
type Rebuilder interface {
	// IsRoot reports whether table ("schema.table") is a definition's root.
	IsRoot(table string) bool
	// Read returns, by root document id, the documents the root rows with
	// keys keys (texts: as PostgreSQL prints them) give; failed holds the
	// roots whose transform failed.
	Read(ctx context.Context, q documents.Querier, table string, keys [][]bus.Column, texts [][]string) (docs map[string][]*bus.Doc, failed map[string]error, err error)
}

var _ Rebuilder = (*documents.Rebuilder)(nil)

// Config configures a verification.
type Config struct {
	// URL is the PostgreSQL connection URL (postgres.url). Required.
	URL string
	// Publication lists the tables checked when Tables is empty. Default:
	// "walsearch".
	Publication string
	// Slot is the replication slot of the walsearch to ask for repairs.
	// Default: "walsearch".
	Slot string
	// Tables to check ("table" for public.table, or "schema.table"); empty
	// means every published table.
	Tables []string
	// Skip lists tables ("schema.table") not verified: those captured only
	// for document definitions (they have no index of their own).
	// Default: none.
	Skip []string
	// Documents rebuilds the documents of definitions' roots: a root
	// table's index is compared with its definition's documents instead of
	// one document per row. Nil: no table is a root.
	Documents Rebuilder
	// Scripts maps rows to documents as the transform stage does. Required.
	Scripts Mapper
	// ES reaches the search engine (an *esclient.Client). Required.
	ES esapi.Transport
	// Alias maps a document's index name to the alias the sink writes it
	// to. Default: sink.AliasName.
	Alias func(docIndex string) string
	// Applied returns the pipeline's applied watermark: every transaction
	// committed before it is indexed. A document that differs is reported
	// only once the watermark passed the position its row was last read at
	// (and it stayed the same for Settle). Nil: Settle alone decides.
	Applied func(ctx context.Context) (bus.LSN, error)
	// ChunkRows is how many rows are read and compared at a time.
	// Default: 1000.
	ChunkRows int
	// Rate caps the rows read per second; 0 means no limit. Default: 0.
	Rate float64
	// MaxKeys is how many ids of each kind of drift a table report lists;
	// all are counted. Default: 100.
	MaxKeys int
	// Settle is how long a document must differ, unchanged on both sides,
	// before it is reported: the time a change may take to be indexed.
	// Default: 10s.
	Settle time.Duration
	// Repair asks the running walsearch to re-read the drifted rows
	// (capture's backfill path) and checks them again, up to RepairWait.
	Repair     bool
	RepairWait time.Duration
	// Progress, if set, is called after every chunk.
	Progress func(Progress)
	// Logger receives warnings. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{Publication: "walsearch", Slot: "walsearch", ChunkRows: DefaultChunkRows, MaxKeys: DefaultMaxKeys,
		Settle: DefaultSettle, RepairWait: DefaultRepairWait, Alias: sink.AliasName}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("postgres.url: required"))
	}
	if c.Scripts == nil {
		errs = append(errs, errors.New("verify: the transform scripts are required"))
	}
	if c.ES == nil {
		errs = append(errs, errors.New("verify: a search engine client is required"))
	}
	if c.ChunkRows < 1 {
		errs = append(errs, fmt.Errorf("verify chunk rows: want at least 1, got %d", c.ChunkRows))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("verify.rate: want 0 (no limit) or more rows per second, got %g", c.Rate))
	}
	if c.MaxKeys < 0 || c.Settle <= 0 || c.RepairWait <= 0 {
		errs = append(errs, errors.New("verify: max keys must be 0 or more, settle and repair wait positive"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Publication == "" {
		c.Publication = d.Publication
	}
	if c.Slot == "" {
		c.Slot = d.Slot
	}
	if c.Alias == nil {
		c.Alias = d.Alias
	}
	if c.ChunkRows == 0 {
		c.ChunkRows = d.ChunkRows
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = d.MaxKeys
	}
	if c.Settle == 0 {
		c.Settle = d.Settle
	}
	if c.RepairWait == 0 {
		c.RepairWait = d.RepairWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Run checks every table of cfg and returns the report. The error is set
// when nothing could be checked (PostgreSQL unreachable, bad config); a
// table that could not be checked has its Error set in the report instead.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v, err := newVerifier(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer v.close()
	tables, err := v.tables(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now()}
	for _, name := range tables {
		if slices.Contains(cfg.Skip, name) {
			continue
		}
		tr := v.checkTable(ctx, name)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rep.Tables = append(rep.Tables, tr)
	}
	rep.Finished = time.Now()
	return rep, nil
}
