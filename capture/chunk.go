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
// caller began) and hands each row to onRow, which must not keep fields.
func readChunk(ctx context.Context, conn *pgconn.PgConn, t snapshotTable, rg keyRange, limit int,
	onRow func(fields []copyField) error) (chunkResult, error) {
	r := t.rel
	var res chunkResult
	lastKey := make([]string, len(r.key))
	w := &copyRows{onRow: func(fields []copyField) error {
		if len(fields) != len(r.columns) {
			return fmt.Errorf("row has %d fields, want %d", len(fields), len(r.columns))
		}
		if err := onRow(fields); err != nil {
			return err
		}
		res.rows++
		for i, k := range r.key {
			lastKey[i] = fields[k].text
		}
		return nil
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

// rowEncoder encodes COPY rows of one relation as JSON objects with the
// codec.
type rowEncoder struct {
	codec *Codec
	rel   *relation
}

func newRowEncoder(codec *Codec, r *relation) *rowEncoder {
	return &rowEncoder{codec: codec, rel: r}
}

// encode appends the row as a JSON object to b.
func (e *rowEncoder) encode(b []byte, fields []copyField) ([]byte, error) {
	b = append(b, '{')
	for i, f := range fields {
		var err error
		if b, err = appendMember(b, e.codec, e.rel, i, f.text, f.null); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendMember appends column i of r as a row's member, its name (from
// r.members) then the JSON of its value's text, or null: a snapshot row
// and a streamed insert are encoded alike.
func appendMember(b []byte, codec *Codec, r *relation, i int, text string, null bool) ([]byte, error) {
	b = append(b, r.members[i]...)
	if null {
		return append(b, "null"...), nil
	}
	b, err := codec.AppendJSON(b, r.columns[i].oid, text)
	if err != nil {
		return nil, fmt.Errorf("encode %s.%s: %w", r.qualifiedName(), r.columns[i].name, err)
	}
	return b, nil
}

// key decodes the key columns of a row.
func (e *rowEncoder) key(fields []copyField) []bus.Column {
	key := make([]bus.Column, len(e.rel.key))
	for i, k := range e.rel.key {
		var v any
		if f := fields[k]; !f.null {
			v = e.codec.DecodeText(e.rel.columns[k].oid, f.text)
		}
		key[i] = bus.Column{Name: e.rel.columns[k].name, Value: v}
	}
	return key
}

// change converts one COPY row into an OpRead change at lsn and position pos.
func (e *rowEncoder) change(fields []copyField, lsn bus.LSN, pos uint64) (*bus.Change, error) {
	r := e.rel
	row, err := e.encode(make([]byte, 0, r.rowSize.Load()+64), fields)
	if err != nil {
		return nil, err
	}
	r.rowSize.Store(int64(len(row)))
	return &bus.Change{V: bus.SchemaVersion, Op: bus.OpRead, Schema: r.schema, Table: r.table, LSN: lsn, Pos: pos,
		Key: e.key(fields), RowJSON: row}, nil
}
