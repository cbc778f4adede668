package capture

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
)

// publishedTables lists the publication's tables (partitioned tables as
// their root) with their columns, keys and row estimates. The watermark
// table is not one of them (its rows are signals, not data), nor the owners
// table (a publication FOR ALL TABLES holds it).
func publishedTables(ctx context.Context, q queryer, publication string) ([]snapshotTable, error) {
	rows, err := q.Query(ctx, `SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
			(SELECT coalesce(sum(greatest(l.reltuples, 0)), 0)::int8 FROM pg_catalog.pg_partition_tree(c.oid) pt
			 JOIN pg_catalog.pg_class l ON l.oid = pt.relid WHERE pt.isleaf)
		FROM pg_catalog.pg_publication_tables pt
		JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname
		JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1 AND NOT (n.nspname = $2 AND c.relname IN ($3, $4))
		ORDER BY 2, 3`, publication, watermarkSchema, WatermarkTable, OwnersTable)
	if err != nil {
		return nil, fmt.Errorf("list published tables: %w", err)
	}
	type row struct {
		oid                 uint32
		schema, table, kind string
		estimate            int64
	}
	var list []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.oid, &r.schema, &r.table, &r.kind, &r.estimate); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list published tables: %w", err)
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list published tables: %w", err)
	}
	out := make([]snapshotTable, 0, len(list))
	for _, r := range list {
		t, err := loadTable(ctx, q, r.oid, r.schema, r.table, r.kind == "p")
		if err != nil {
			return nil, err
		}
		t.estimate = r.estimate
		out = append(out, t)
	}
	return out, nil
}

// loadTable reads one table's columns and key from the catalogue.
func loadTable(ctx context.Context, q queryer, oid uint32, schema, table string, partitioned bool) (snapshotTable, error) {
	cols, err := tableColumns(ctx, q, oid)
	if err != nil {
		return snapshotTable{}, err
	}
	identity, key, err := identityKey(ctx, q, oid)
	if err != nil {
		return snapshotTable{}, err
	}
	return snapshotTable{
		rel:         catalogRelation(oid, schema, table, identity, cols, key),
		partitioned: partitioned,
		unique:      len(key) > 0,
	}, nil
}

// findTable looks a published table up by name, as of now.
func findTable(ctx context.Context, q queryer, publication string, name tableName) (snapshotTable, bool, error) {
	tables, err := publishedTables(ctx, q, publication)
	if err != nil {
		return snapshotTable{}, false, err
	}
	for _, t := range tables {
		if t.rel.schema == name.schema && t.rel.table == name.table {
			return t, true, nil
		}
	}
	return snapshotTable{}, false, nil
}

// columnTypes describes column types for the sink: the type name as
// format_type prints it without modifiers, a domain as its base type, an
// enum as "enum", and whether it is an array.
func columnTypes(ctx context.Context, q queryer, oids []uint32) (map[uint32]bus.ColumnSchema, error) {
	rows, err := q.Query(ctx, `WITH RECURSIVE base(oid, cur, depth) AS (
			SELECT t, t, 0 FROM unnest($1::oid[]) t
			UNION ALL
			SELECT b.oid, ty.typbasetype, b.depth + 1 FROM base b
			JOIN pg_catalog.pg_type ty ON ty.oid = b.cur WHERE ty.typtype = 'd' AND b.depth < 16)
		SELECT b.oid, ty.oid,
			CASE WHEN ty.typtype = 'e' THEN 'enum' ELSE format_type(ty.oid, NULL) END,
			ty.typcategory = 'A'
		FROM base b JOIN pg_catalog.pg_type ty ON ty.oid = b.cur WHERE ty.typtype <> 'd'`, oids)
	if err != nil {
		return nil, fmt.Errorf("read column types: %w", err)
	}
	out := make(map[uint32]bus.ColumnSchema, len(oids))
	for rows.Next() {
		var oid uint32
		var cs bus.ColumnSchema
		if err := rows.Scan(&oid, &cs.OID, &cs.Type, &cs.Array); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read column types: %w", err)
		}
		out[oid] = cs
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read column types: %w", err)
	}
	return out, nil
}

// warnUnstreamedDefaults warns about columns of r that are new since its
// stored schema and have a default. ALTER TABLE ... ADD COLUMN ... DEFAULT
// gives the rows already there the default without writing them to the WAL
// (PostgreSQL 11+ keeps it in pg_attribute.attmissingval; a volatile default
// rewrites the table, which is not decoded either), so their documents lack
// the column until each row changes. A backfill re-reads them. Failures only
// cost the warning and are logged at debug level.
func (c *Capture) warnUnstreamedDefaults(ctx context.Context, q queryer, r *relation) {
	if r.skipped() || isWatermarkTable(r.schema, r.table) || isOwnersTable(r.schema, r.table) {
		return
	}
	prev, err := bus.GetTableSchema(ctx, c.state, r.schema, r.table)
	if err != nil || prev == nil {
		return // a table seen for the first time is read by a snapshot or backfill
	}
	known := make(map[string]bool, len(prev.Columns))
	for _, col := range prev.Columns {
		known[col.Name] = true
	}
	var added []string
	for _, col := range r.columns {
		if !known[col.name] {
			added = append(added, col.name)
		}
	}
	if len(added) == 0 {
		return
	}
	rows, err := q.Query(ctx, `SELECT attname FROM pg_catalog.pg_attribute
		WHERE attrelid = $1 AND attname = ANY($2) AND NOT attisdropped AND (atthasmissing OR atthasdef)
		ORDER BY attnum`, r.id, added)
	if err != nil {
		c.log.Debug("cannot check new columns for defaults", "table", r.qualifiedName(), "error", err)
		return
	}
	defaults, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		c.log.Debug("cannot check new columns for defaults", "table", r.qualifiedName(), "error", err)
		return
	}
	if len(defaults) == 0 {
		return
	}
	name := bus.IndexName(r.schema, r.table)
	c.log.Warn("columns were added with a DEFAULT: rows that existed before hold it without a change in the WAL, "+
		"so their documents lack these columns until each row is written again; run `walsearch backfill "+name+"` to re-read the table",
		"table", r.qualifiedName(), "columns", defaults)
}

// storeSchema writes r's description to the state store for the sink, from
// lsn on.
func (c *Capture) storeSchema(ctx context.Context, q queryer, r *relation, lsn bus.LSN) error {
	if r.skipped() || isWatermarkTable(r.schema, r.table) || isOwnersTable(r.schema, r.table) {
		return nil
	}
	oids := make([]uint32, len(r.columns))
	for i, col := range r.columns {
		oids[i] = col.oid
	}
	types, err := columnTypes(ctx, q, oids)
	if err != nil {
		return err
	}
	ts := &bus.TableSchema{Schema: r.schema, Table: r.table, LSN: lsn}
	for _, col := range r.columns {
		cs, ok := types[col.oid]
		if !ok {
			cs = bus.ColumnSchema{Type: "text", OID: col.oid}
		}
		cs.Name = col.name
		ts.Columns = append(ts.Columns, cs)
	}
	for _, k := range r.key {
		ts.Key = append(ts.Key, r.columns[k].name)
	}
	if err := bus.PutTableSchema(ctx, c.state, ts); err != nil {
		return fmt.Errorf("store schema of %s: %w", r.qualifiedName(), err)
	}
	return nil
}
