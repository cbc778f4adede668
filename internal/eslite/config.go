package eslite

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// Index defaults, as Elasticsearch 8 documents them.
const (
	// DefaultNumberOfShards is index.number_of_shards when not given.
	DefaultNumberOfShards = 1
	// DefaultNumberOfReplicas is index.number_of_replicas when not given.
	DefaultNumberOfReplicas = 1
	// DefaultRefreshInterval is index.refresh_interval when not given.
	DefaultRefreshInterval = "1s"
	// DefaultGCDeletes is index.gc_deletes when not given: how long a delete
	// tombstone keeps rejecting older external versions.
	DefaultGCDeletes = "60s"
	// DefaultMaxResultWindow is index.max_result_window when not given.
	DefaultMaxResultWindow = 10000
)

// Config configures an Engine.
type Config struct {
	// Dir holds indices, mappings, settings, aliases, documents, versions and
	// delete tombstones so that they survive Close and Open.
	// Default: "" (in memory only; everything is lost on Close).
	Dir string
	// Logger receives operational messages.
	// Default: nil (discard).
	Logger *slog.Logger
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Dir != "" {
		if st, err := os.Stat(c.Dir); err == nil && !st.IsDir() {
			errs = append(errs, fmt.Errorf("dir %q: %w", c.Dir, ErrNotDirectory))
		}
		if !filepath.IsAbs(c.Dir) {
			if _, err := filepath.Abs(c.Dir); err != nil {
				errs = append(errs, fmt.Errorf("resolve dir %q: %w", c.Dir, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c.Logger.With("component", "eslite")
}
