package pipeline

import (
	"context"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/transform"
)

// catalog knows which indices the pipeline manages and which table feeds
// each: every table whose schema capture stored, every configured table and
// index, every table capture is snapshotting, and every index a table's
// script may route documents to.
type catalog struct {
	cfg     config.Config
	state   *bus.KV
	scripts *transform.Scripts
	capture func() *capture.Capture // the running capture, or nil
	// built are the roots of document definitions, whose indices hold
	// assembled documents; docOnly the tables captured only for them,
	// which have no index. Both by "schema.table".
	built, docOnly map[string]bool
}

// Indices lists the managed indices by the names clients use (aliases).
func (c *catalog) Indices(ctx context.Context) ([]api.ManagedIndex, error) {
	alias := c.cfg.IndexAlias
	byName := map[string]api.ManagedIndex{}
	// A table with a script may reshape, filter or route its rows, so its
	// indices do not hold the rows as they are: the PostgreSQL fallback
	// must not answer for them (no Columns).
	scripted := map[string]bool{}
	for _, t := range c.scripts.Tables() {
		scripted[t] = true
	}
	for t := range c.built {
		scripted[t] = true // documents assembled from several tables
	}
	rowKeys := map[string][]string{} // row keys by "schema.table"
	add := func(schema, table string, ts *bus.TableSchema) {
		if c.docOnly[schema+"."+table] {
			return
		}
		mi := api.ManagedIndex{Name: alias(bus.IndexName(schema, table)), Schema: schema, Table: table}
		if ts != nil {
			mi.Key = ts.Key
			rowKeys[schema+"."+table] = ts.Key
			if !scripted[schema+"."+table] {
				for _, col := range ts.Columns {
					mi.Columns = append(mi.Columns, col.Name)
				}
			}
		}
		if old, ok := byName[mi.Name]; !ok || len(old.Key) == 0 {
			byName[mi.Name] = mi
		}
	}
	schemas, err := bus.ListTableSchemas(ctx, c.state)
	if err != nil {
		return nil, err
	}
	for _, ts := range schemas {
		add(ts.Schema, ts.Table, ts)
	}
	for _, t := range c.cfg.Postgres.Tables {
		if schema, table, err := bus.ParseTable(t); err == nil {
			add(schema, table, nil)
		}
	}
	if cp := c.capture(); cp != nil {
		for _, t := range cp.Status().Tables {
			add(t.Schema, t.Table, nil)
		}
	}
	routedFrom := map[string][]string{} // tables by routed index
	for t := range scripted {
		schema, table, err := bus.ParseTable(t)
		if err != nil {
			continue
		}
		own := alias(bus.IndexName(schema, table))
		for _, idx := range c.scripts.Indices(schema, table) {
			if name := alias(idx); name != own {
				routedFrom[name] = append(routedFrom[name], t)
			}
		}
	}
	for name, tables := range routedFrom {
		if _, ok := byName[name]; ok {
			continue
		}
		mi := api.ManagedIndex{Name: name}
		if len(tables) == 1 { // an index fed by several tables has no one table or key
			mi.Schema, mi.Table, _ = bus.ParseTable(tables[0])
			mi.Key = rowKeys[tables[0]]
		}
		byName[name] = mi
	}
	for name := range c.cfg.Indices {
		if _, ok := byName[alias(name)]; !ok {
			byName[alias(name)] = api.ManagedIndex{Name: alias(name)}
		}
	}
	out := make([]api.ManagedIndex, 0, len(byName))
	for _, mi := range byName {
		out = append(out, mi)
	}
	return out, nil
}
