package config

import (
	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/sink"
	"github.com/walsearch/walsearch/transform"
)

// The stages' configurations, filled in from the sections they share.
// Collaborators (loggers, stores, transports) are the caller's to set.

// CaptureConfig is the capture stage's configuration: the capture section
// with the source from postgres; postgres.pool_size caps the snapshot
// workers, each of which holds one connection.
func (c Config) CaptureConfig() capture.Config {
	cc := c.Capture
	cc.URL, cc.Tables, cc.Slot, cc.Publication = c.Postgres.URL, c.Postgres.Tables, c.Postgres.Slot, c.Postgres.Publication
	cc.SnapshotWorkers = min(cc.SnapshotWorkers, c.Postgres.PoolSize)
	return cc
}

// ScriptConfig is the configuration of the per-table scripts.
func (c Config) ScriptConfig() transform.ScriptConfig {
	sc := c.Transform
	sc.Dir = c.ScriptsDir
	return sc
}

// TransformConfig is the transform stage's configuration.
func (c Config) TransformConfig() transform.Config {
	tc := transform.DefaultConfig()
	tc.Workers = c.Transform.Workers
	if c.NATS.AckWait > 0 {
		tc.AckWait = c.NATS.AckWait
	}
	return tc
}

// BusConfig is the bus's configuration, its store under data_dir.
func (c Config) BusConfig() bus.Config {
	bc := c.NATS
	bc.DataDir = c.DataDir
	return bc
}

// ESConfig is the search engine client's configuration; with an empty URL
// the caller sets the embedded engine's transport.
func (c Config) ESConfig() esclient.Config { return c.Elasticsearch }

// SinkConfig is the sink stage's configuration, with the indices' names,
// settings and mappings.
func (c Config) SinkConfig() sink.Config {
	sc := c.Sink
	if c.NATS.AckWait > 0 {
		sc.AckWait = c.NATS.AckWait
	}
	if len(c.Indices) > 0 {
		sc.Indices = make(map[string]sink.IndexConfig, len(c.Indices))
		for name, ic := range c.Indices {
			sc.Indices[name] = ic.Sink
		}
	}
	return sc
}

// APIConfig is the API's configuration, with each index's settings under
// the name clients use: its alias.
func (c Config) APIConfig() api.Config {
	ac := c.API
	if len(c.Indices) > 0 {
		ac.Indices = make(map[string]api.IndexConfig, len(c.Indices))
		for name, ic := range c.Indices {
			ac.Indices[c.IndexAlias(name)] = ic.API
		}
	}
	return ac
}

// IndexAlias is the name clients search documents of docIndex (the index a
// document event names) by: the configured indices.<name>.index, else the
// sink's default alias.
func (c Config) IndexAlias(docIndex string) string {
	if ic, ok := c.Indices[docIndex]; ok && ic.Sink.Index != "" {
		return ic.Sink.Index
	}
	return sink.AliasName(docIndex)
}
