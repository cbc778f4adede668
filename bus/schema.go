package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// TableSchema describes a captured table's columns. Capture stores it in the
// state KV under SchemaKey whenever it learns or re-learns a table (snapshot
// start, a Relation message after a schema change); the sink reads it to
// derive the index mapping from the column types.
type TableSchema struct {
	V       int            `json:"v"`
	Schema  string         `json:"schema"`
	Table   string         `json:"table"`
	Columns []ColumnSchema `json:"columns"`
	// Key names the columns of the document id, in key order.
	Key []string `json:"key"`
	// LSN is the position from which this description holds.
	LSN       LSN       `json:"lsn"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ColumnSchema is one column of a TableSchema.
type ColumnSchema struct {
	Name string `json:"name"`
	// Type is the PostgreSQL type name as format_type() prints it without
	// modifiers, e.g. "integer", "numeric", "timestamp with time zone",
	// "text[]". For a domain it is the base type; for an enum, "enum".
	Type string `json:"type"`
	// OID is the type's OID (the base type's for a domain).
	OID uint32 `json:"oid"`
	// Array is true for array types; Type then names the array type.
	Array bool `json:"array,omitempty"`
}

// SchemaKey is the state KV key of a table's schema.
func SchemaKey(schema, table string) string {
	return "schema." + EscapeToken(schema) + "." + EscapeToken(table)
}

// SchemaStore is the part of the state KV schemas are kept in.
type SchemaStore interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// PutTableSchema stores ts.
func PutTableSchema(ctx context.Context, s SchemaStore, ts *TableSchema) error {
	ts.V = SchemaVersion
	if ts.UpdatedAt.IsZero() {
		ts.UpdatedAt = time.Now().UTC()
	}
	b, err := json.Marshal(ts)
	if err != nil {
		return fmt.Errorf("encode schema of %s.%s: %w", ts.Schema, ts.Table, err)
	}
	return s.Put(ctx, SchemaKey(ts.Schema, ts.Table), b)
}

// GetTableSchema returns the stored schema of schema.table, or nil when none
// is stored yet.
func GetTableSchema(ctx context.Context, s SchemaStore, schema, table string) (*TableSchema, error) {
	b, ok, err := s.Get(ctx, SchemaKey(schema, table))
	if err != nil || !ok {
		return nil, err
	}
	var ts TableSchema
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, fmt.Errorf("decode schema of %s.%s: %w", schema, table, err)
	}
	if ts.V > SchemaVersion {
		return nil, fmt.Errorf("schema of %s.%s: %w", schema, table, ErrNewerSchema)
	}
	return &ts, nil
}

// ListTableSchemas returns every stored table schema; one that cannot be
// read is left out.
func ListTableSchemas(ctx context.Context, s *KV) ([]*TableSchema, error) {
	keys, err := s.Keys(ctx, "schema.>")
	if err != nil {
		return nil, fmt.Errorf("list table schemas: %w", err)
	}
	out := make([]*TableSchema, 0, len(keys))
	for _, k := range keys {
		raw, ok, err := s.Get(ctx, k)
		if err != nil || !ok {
			continue
		}
		var ts TableSchema
		if json.Unmarshal(raw, &ts) == nil && ts.Table != "" {
			out = append(out, &ts)
		}
	}
	return out, nil
}
