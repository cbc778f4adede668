package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walsearch/walsearch/bus"
)

// snapshotRecord is what the StateStore keeps once a snapshot is complete.
type snapshotRecord struct {
	LSN      bus.LSN   `json:"lsn"`
	Finished time.Time `json:"finished"`
}

// snapshotKey is the StateStore key of the slot's snapshot record.
func (c *Capture) snapshotKey() string { return "capture." + c.cfg.Slot + ".snapshot" }

// snapshotDone reports whether a snapshot of the slot was recorded as complete.
func (c *Capture) snapshotDone(ctx context.Context) (bool, error) {
	v, found, err := c.state.Get(ctx, c.snapshotKey())
	if err != nil {
		return false, fmt.Errorf("read snapshot state: %w", err)
	}
	if !found {
		return false, nil
	}
	var rec snapshotRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return false, fmt.Errorf("read snapshot state %s: %w", c.snapshotKey(), err)
	}
	return rec.LSN != 0, nil
}

// snapshotTable is one published table as the snapshot reads it.
type snapshotTable struct {
	rel         *relation
	partitioned bool
}

// snapshot reads every published table inside the snapshot exported with the
// slot and publishes each row as OpRead at the slot's consistent point, so
// that streaming from that point continues exactly where the snapshot ends.
// The snapshot is recorded as done only once the Publisher has flushed it; a
// snapshot cut short is taken again with a new slot.
//
// Tables are read one after the other, each whole (readTable): readTable is
// the unit to split into key-range chunks for parallel, resumable snapshots.
func (c *Capture) snapshot(ctx context.Context, conn *pgx.Conn, slot createdSlot) error {
	began := time.Now()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(slot.snapshot)); err != nil {
		return fmt.Errorf("use exported snapshot %s: %w", slot.snapshot, err)
	}
	tables, err := publishedTables(ctx, tx, c.cfg.Publication)
	if err != nil {
		return err
	}
	progress := make([]TableStatus, len(tables))
	for i, t := range tables {
		progress[i] = TableStatus{Schema: t.rel.schema, Table: t.rel.table, State: TablePending}
	}
	c.track.startSnapshot(slot.consistentPoint, progress)
	c.log.Info("snapshot started", "lsn", slot.consistentPoint, "tables", len(tables))

	var total uint64
	for i, t := range tables {
		if t.rel.skipped() {
			c.warnNoKey(t.rel)
			c.track.setTable(i, TableSkipped, 0)
			continue
		}
		c.track.setTable(i, TableRunning, 0)
		rows, err := c.readTable(ctx, tx, t, slot.consistentPoint, func(n uint64) { c.track.setTable(i, TableRunning, n) })
		if err != nil {
			return err
		}
		c.track.setTable(i, TableDone, rows)
		total += rows
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("end snapshot: %w", err)
	}
	if err := c.pub.Flush(ctx); err != nil {
		return &PublishError{Op: "flush", Err: err}
	}
	rec, err := json.Marshal(snapshotRecord{LSN: slot.consistentPoint, Finished: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("record snapshot: %w", err)
	}
	if err := c.state.Put(ctx, c.snapshotKey(), rec); err != nil {
		return fmt.Errorf("record snapshot: %w", err)
	}
	c.log.Info("snapshot finished", "lsn", slot.consistentPoint, "rows", total, "duration", time.Since(began).Round(time.Millisecond))
	return nil
}

// readTable publishes every row of one table, numbered from 0, and returns
// how many there were. progress is called every so many rows.
func (c *Capture) readTable(ctx context.Context, tx pgx.Tx, t snapshotTable, lsn bus.LSN, progress func(uint64)) (uint64, error) {
	r := t.rel
	if len(r.columns) == 0 {
		return 0, nil
	}
	names := make([]string, len(r.columns))
	for i, col := range r.columns {
		names[i] = pgx.Identifier{col.name}.Sanitize()
	}
	only := "ONLY "
	if t.partitioned {
		only = "" // a partitioned table's rows are in its partitions
	}
	sql := fmt.Sprintf("COPY (SELECT %s FROM %s%s) TO STDOUT", strings.Join(names, ", "), only,
		pgx.Identifier{r.schema, r.table}.Sanitize())
	var pos uint64
	w := &copyRows{onRow: func(fields []copyField) error {
		if len(fields) != len(r.columns) {
			return fmt.Errorf("snapshot %s: row has %d fields, want %d", r.qualifiedName(), len(fields), len(r.columns))
		}
		ev := &bus.Change{V: bus.SchemaVersion, Op: bus.OpRead, Schema: r.schema, Table: r.table,
			LSN: lsn, Pos: pos, Row: make(map[string]any, len(fields))}
		for i, f := range fields {
			var v any
			if !f.null {
				v = c.codec.DecodeText(r.columns[i].oid, f.text)
			}
			ev.Row[r.columns[i].name] = v
		}
		ev.Key = make([]bus.Column, len(r.key))
		for i, k := range r.key {
			ev.Key[i] = bus.Column{Name: r.columns[k].name, Value: ev.Row[r.columns[k].name]}
		}
		if err := c.pub.Publish(ctx, ev); err != nil {
			return &PublishError{Op: "publish", Err: err}
		}
		pos++
		if pos%10000 == 0 {
			progress(pos)
		}
		return nil
	}}
	if _, err := tx.Conn().PgConn().CopyTo(ctx, w, sql); err != nil {
		return pos, fmt.Errorf("snapshot %s: %w", r.qualifiedName(), err)
	}
	if err := w.finish(); err != nil {
		return pos, fmt.Errorf("snapshot %s: %w", r.qualifiedName(), err)
	}
	return pos, nil
}

// publishedTables lists the publication's tables (partitioned tables as
// their root) with their columns and keys, as of the snapshot.
func publishedTables(ctx context.Context, tx pgx.Tx, publication string) ([]snapshotTable, error) {
	rows, err := tx.Query(ctx, `SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text
		FROM pg_catalog.pg_publication_tables pt
		JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname
		JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1
		ORDER BY 2, 3`, publication)
	if err != nil {
		return nil, fmt.Errorf("list published tables: %w", err)
	}
	type row struct {
		oid                 uint32
		schema, table, kind string
	}
	var list []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.oid, &r.schema, &r.table, &r.kind); err != nil {
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
		cols, err := tableColumns(ctx, tx, r.oid)
		if err != nil {
			return nil, err
		}
		identity, key, err := identityKey(ctx, tx, r.oid)
		if err != nil {
			return nil, err
		}
		out = append(out, snapshotTable{
			rel:         catalogRelation(r.oid, r.schema, r.table, identity, cols, key),
			partitioned: r.kind == "p",
		})
	}
	return out, nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// warnNoKey tells the operator, once per table and Run, why a table's changes
// are not captured and how to fix it.
func (c *Capture) warnNoKey(r *relation) {
	if c.warned == nil {
		c.warned = make(map[string]bool)
	}
	if c.warned[r.qualifiedName()] {
		return
	}
	c.warned[r.qualifiedName()] = true
	name := pgx.Identifier{r.schema, r.table}.Sanitize()
	c.log.Warn("table has no primary key and is not REPLICA IDENTITY FULL: its rows cannot be identified and are skipped; add a primary key or run ALTER TABLE "+name+" REPLICA IDENTITY FULL",
		"table", r.qualifiedName())
}
