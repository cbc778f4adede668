package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
)

// RowReader reads table rows the way a snapshot or backfill reads them:
// COPY in text form, converted by capture's type codec with the database's
// enums, domains and arrays loaded, so that other tools (walsearch verify,
// walsearch transform test --from-db) see exactly what the pipeline sees.
// It only reads: no lock beyond the ACCESS SHARE of a plain SELECT.
type RowReader struct {
	conn  *pgx.Conn
	codec *Codec
}

// NewRowReader reads the database's user-defined types over conn, which the
// reader then uses for every read; the caller keeps owning conn.
func NewRowReader(ctx context.Context, conn *pgx.Conn) (*RowReader, error) {
	codec := NewCodec()
	if err := loadTypes(ctx, conn, codec); err != nil {
		return nil, err
	}
	return &RowReader{conn: conn, codec: codec}, nil
}

// Table is a table's columns and key as the catalogue describes them now.
type Table struct {
	t   snapshotTable
	enc *rowEncoder
}

// Schema and Name name the table.
func (t *Table) Schema() string { return t.t.rel.schema }

// Name is the table's name without its schema.
func (t *Table) Name() string { return t.t.rel.table }

// KeyColumns are the primary-key (or replica identity) columns, in key order.
func (t *Table) KeyColumns() []string {
	out := make([]string, len(t.t.rel.key))
	for i, k := range t.t.rel.key {
		out[i] = t.t.rel.columns[k].name
	}
	return out
}

// Chunkable reports whether the table can be read in key order chunks: it
// has a unique key.
func (t *Table) Chunkable() bool { return t.t.chunkable() }

// Table looks schema.table up in the catalogue.
func (r *RowReader) Table(ctx context.Context, schema, table string) (*Table, error) {
	var oid uint32
	var kind string
	err := r.conn.QueryRow(ctx, `SELECT c.oid, c.relkind::text FROM pg_catalog.pg_class c
		WHERE c.oid = to_regclass($1)`, pgx.Identifier{schema, table}.Sanitize()).Scan(&oid, &kind)
	if err == pgx.ErrNoRows {
		return nil, fmt.Errorf("table %s.%s does not exist", schema, table)
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s.%s: %w", schema, table, err)
	}
	t, err := loadTable(ctx, r.conn, oid, schema, table, kind == "p")
	if err != nil {
		return nil, err
	}
	return &Table{t: t, enc: newRowEncoder(r.codec, t.rel)}, nil
}

// Row is one row read: the change a snapshot would publish for it (OpRead,
// LSN 0, Row decoded as the transform stage decodes it) and its key as
// PostgreSQL prints it, which is also what it parses back.
type Row struct {
	Change *bus.Change
	Key    []string
}

// ReadChunk reads at most limit rows (0: all) after the key after (nil: from
// the first row) in key order and hands each to fn. It returns the number of
// rows read; fewer than limit means the table is exhausted.
func (r *RowReader) ReadChunk(ctx context.Context, t *Table, after []string, limit int, fn func(Row) error) (int, error) {
	res, err := readChunk(ctx, r.conn.PgConn(), t.t, keyRange{Last: after}, limit, r.onRow(t, fn))
	return int(res.rows), err
}

// ReadKeys reads the rows with the given keys (each as PostgreSQL prints
// it) and hands each found to fn.
func (r *RowReader) ReadKeys(ctx context.Context, t *Table, keys [][]string, fn func(Row) error) error {
	if len(keys) == 0 {
		return nil
	}
	if !t.Chunkable() {
		return fmt.Errorf("read %s: the table has no unique key", t.t.rel.qualifiedName())
	}
	w := &copyRows{onRow: r.onRow(t, fn)}
	if _, err := r.conn.PgConn().CopyTo(ctx, w, keysSQL(t.t, keys)); err != nil {
		return fmt.Errorf("read %s: %w", t.t.rel.qualifiedName(), err)
	}
	if err := w.finish(); err != nil {
		return fmt.Errorf("read %s: %w", t.t.rel.qualifiedName(), err)
	}
	return nil
}

func (r *RowReader) onRow(t *Table, fn func(Row) error) func([]copyField) error {
	return func(fields []copyField) error {
		c, err := t.enc.change(fields, 0, 0)
		if err != nil {
			return err
		}
		if err := decodeRow(c); err != nil {
			return err
		}
		key := make([]string, len(t.t.rel.key))
		for i, k := range t.t.rel.key {
			key[i] = fields[k].text
		}
		return fn(Row{Change: c, Key: key})
	}
}

// decodeRow fills c.Row from c.RowJSON through the bus's decoder, so that
// values (numbers as json.Number, ...) are what the transform stage gets.
func decodeRow(c *bus.Change) error {
	data, err := json.Marshal(struct {
		*bus.Change
		Row json.RawMessage `json:"row"`
	}{c, c.RowJSON})
	if err != nil {
		return fmt.Errorf("encode row: %w", err)
	}
	var back bus.Change
	if err := bus.Decode(data, &back); err != nil {
		return err
	}
	*c = back
	return nil
}

// keysSQL is the COPY statement that reads the rows of t with the given keys.
func keysSQL(t snapshotTable, keys [][]string) string {
	r := t.rel
	names := make([]string, len(r.columns))
	for i, col := range r.columns {
		names[i] = pgx.Identifier{col.name}.Sanitize()
	}
	only := "ONLY "
	if t.partitioned {
		only = ""
	}
	keyCols := make([]string, len(r.key))
	for i, k := range r.key {
		keyCols[i] = names[k]
	}
	lits := make([]string, len(keys))
	for i, k := range keys {
		lits[i] = literalRow(k)
	}
	return fmt.Sprintf("COPY (SELECT %s FROM %s%s WHERE (%s) IN (%s) ORDER BY %s) TO STDOUT",
		strings.Join(names, ", "), only, pgx.Identifier{r.schema, r.table}.Sanitize(),
		strings.Join(keyCols, ", "), strings.Join(lits, ", "), strings.Join(keyCols, ", "))
}

// DecodeKey converts a key as PostgreSQL prints it into key columns, as the
// changes of t carry them (and bus.DocumentID names their documents).
func (t *Table) DecodeKey(key []string) []bus.Column {
	out := make([]bus.Column, len(t.t.rel.key))
	for i, k := range t.t.rel.key {
		col := t.t.rel.columns[k]
		out[i] = bus.Column{Name: col.name, Value: t.enc.codec.DecodeText(col.oid, key[i])}
	}
	return out
}
