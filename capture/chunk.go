package capture

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walsearch/walsearch/bus"
)

// keyRange is a part of a table in key order: the rows after Last (nil: from
// the first row) and before Hi (nil: to the last row), both exclusive. Keys
// are kept as PostgreSQL prints them, which is also what it parses back.
// Rows counts the rows read so far; Done is set once the range is exhausted.
type keyRange struct {
	Last []string `json:"last,omitempty"`
	Hi   []string `json:"hi,omitempty"`
	Rows uint64   `json:"rows"`
	Done bool     `json:"done,omitempty"`
}

// chunkable reports whether rows of t can be read in key order chunks: its
// key must be unique (a primary key or a replica identity index), which a
// REPLICA IDENTITY FULL table without a primary key does not have.
func (t snapshotTable) chunkable() bool { return t.unique && len(t.rel.key) > 0 }

// chunkSQL is the COPY statement that reads the next at most limit rows of
// rg (limit 0: all of them). Key values are untyped literals, which
// PostgreSQL reads as the type of the column they are compared with.
func chunkSQL(t snapshotTable, rg keyRange, limit int) string {
	r := t.rel
	names := make([]string, len(r.columns))
	for i, col := range r.columns {
		names[i] = pgx.Identifier{col.name}.Sanitize()
	}
	only := "ONLY "
	if t.partitioned {
		only = "" // a partitioned table's rows are in its partitions
	}
	var b strings.Builder
	fmt.Fprintf(&b, "COPY (SELECT %s FROM %s%s", strings.Join(names, ", "), only, pgx.Identifier{r.schema, r.table}.Sanitize())
	if t.chunkable() {
		keys := make([]string, len(r.key))
		for i, k := range r.key {
			keys[i] = names[k]
		}
		key := "(" + strings.Join(keys, ", ") + ")"
		var where []string
		if rg.Last != nil {
			where = append(where, key+" > "+literalRow(rg.Last))
		}
		if rg.Hi != nil {
			where = append(where, key+" < "+literalRow(rg.Hi))
		}
		if len(where) > 0 {
			b.WriteString(" WHERE " + strings.Join(where, " AND "))
		}
		b.WriteString(" ORDER BY " + strings.Join(keys, ", "))
		if limit > 0 {
			fmt.Fprintf(&b, " LIMIT %d", limit)
		}
	}
	b.WriteString(") TO STDOUT")
	return b.String()
}

func literalRow(vals []string) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = quoteLiteral(v)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ")"
	}
	return "ROW(" + strings.Join(parts, ", ") + ")"
}

// chunkResult is what reading one chunk gave.
type chunkResult struct {
	rows uint64
	last []string // key of the last row read, nil if none
}

// readChunk reads the next chunk of rg over conn (inside the transaction the
// caller began) and hands each row to emit as an OpRead change at lsn.
// Positions are numbered from pos.
func (c *Capture) readChunk(ctx context.Context, conn *pgconn.PgConn, t snapshotTable, rg keyRange, limit int,
	lsn bus.LSN, emit func(*bus.Change) error) (chunkResult, error) {
	r := t.rel
	var res chunkResult
	lastKey := make([]string, len(r.key))
	w := &copyRows{onRow: func(fields []copyField) error {
		if len(fields) != len(r.columns) {
			return fmt.Errorf("row has %d fields, want %d", len(fields), len(r.columns))
		}
		ev, err := c.rowChange(r, fields, lsn, res.rows)
		if err != nil {
			return err
		}
		res.rows++
		for i, k := range r.key {
			lastKey[i] = fields[k].text
		}
		return emit(ev)
	}}
	if len(r.columns) == 0 {
		return res, nil
	}
	if _, err := conn.CopyTo(ctx, w, chunkSQL(t, rg, limit)); err != nil {
		return res, fmt.Errorf("read %s: %w", r.qualifiedName(), err)
	}
	if err := w.finish(); err != nil {
		return res, fmt.Errorf("read %s: %w", r.qualifiedName(), err)
	}
	if res.rows > 0 && t.chunkable() {
		res.last = lastKey
	}
	return res, nil
}

// rowChange converts one COPY row of r into an OpRead change. The row is
// encoded straight to JSON (Change.RowJSON): a snapshot encodes every row
// once and never needs it as Go values; the key's values are decoded.
func (c *Capture) rowChange(r *relation, fields []copyField, lsn bus.LSN, pos uint64) (*bus.Change, error) {
	ev := &bus.Change{V: bus.SchemaVersion, Op: bus.OpRead, Schema: r.schema, Table: r.table, LSN: lsn, Pos: pos}
	b := make([]byte, 0, r.rowSize.Load()+64)
	b = append(b, '{')
	var err error
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = bus.AppendJSONString(b, r.columns[i].name)
		b = append(b, ':')
		if f.null {
			b = append(b, "null"...)
		} else if b, err = c.codec.AppendJSON(b, r.columns[i].oid, f.text); err != nil {
			return nil, fmt.Errorf("encode %s.%s: %w", r.qualifiedName(), r.columns[i].name, err)
		}
	}
	ev.RowJSON = append(b, '}')
	r.rowSize.Store(int64(len(ev.RowJSON)))
	ev.Key = make([]bus.Column, len(r.key))
	for i, k := range r.key {
		var v any
		if f := fields[k]; !f.null {
			v = c.codec.DecodeText(r.columns[k].oid, f.text)
		}
		ev.Key[i] = bus.Column{Name: r.columns[k].name, Value: v}
	}
	return ev, nil
}
