package capture

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// queryer is what catalogue lookups need: a connection or a transaction.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// catalogType is one row of pg_type for a user-defined type.
type catalogType struct {
	OID      uint32
	Type     byte   // typtype: b base, d domain, e enum, c composite, r range, m multirange
	Base     uint32 // typbasetype of a domain
	Elem     uint32 // typelem of an array
	Category byte   // typcategory: 'A' for arrays
	Delim    byte   // typdelim
}

// loadTypes adds every user-defined type to codec: enums, domains (as their
// base type) and arrays of any type. Built-in types are already known.
func loadTypes(ctx context.Context, q queryer, codec *Codec) error {
	rows, err := q.Query(ctx, `SELECT oid, typtype, typbasetype, typelem, typcategory, typdelim
		FROM pg_catalog.pg_type WHERE oid >= $1`, uint32(firstUserOID))
	if err != nil {
		return fmt.Errorf("load types: %w", err)
	}
	var types []catalogType
	for rows.Next() {
		var t catalogType
		var typ, cat, delim string
		if err := rows.Scan(&t.OID, &typ, &t.Base, &t.Elem, &cat, &delim); err != nil {
			rows.Close()
			return fmt.Errorf("load types: %w", err)
		}
		t.Type, t.Category, t.Delim = firstByte(typ), firstByte(cat), firstByte(delim)
		types = append(types, t)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load types: %w", err)
	}
	codec.define(resolveTypes(types, codec))
	return nil
}

func firstByte(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}

// resolveTypes turns catalogue rows into codec definitions: a domain takes its
// base type's definition (following domains over domains), an array keeps its
// element type and delimiter, everything else (enums, composites, ranges,
// extension base types such as citext) is converted as text.
func resolveTypes(types []catalogType, codec *Codec) map[uint32]typeInfo {
	byOID := make(map[uint32]catalogType, len(types))
	for _, t := range types {
		byOID[t.OID] = t
	}
	out := make(map[uint32]typeInfo, len(types))
	var resolve func(oid uint32, depth int) typeInfo
	resolve = func(oid uint32, depth int) typeInfo {
		if ti, ok := out[oid]; ok {
			return ti
		}
		t, ok := byOID[oid]
		if !ok || depth > 16 {
			return codec.lookup(oid)
		}
		var ti typeInfo
		switch {
		case t.Type == 'd':
			ti = resolve(t.Base, depth+1)
		case t.Category == 'A' && t.Elem != 0:
			delim := t.Delim
			if delim == 0 {
				delim = ','
			}
			ti = typeInfo{kind: kindArray, elem: t.Elem, delim: delim}
		default:
			ti = typeInfo{kind: kindText}
		}
		out[oid] = ti
		return ti
	}
	for _, t := range types {
		resolve(t.OID, 0)
	}
	return out
}

// identityKey returns a table's replica identity (relreplident) and the
// columns that identify its rows, in key order: the replica identity index's
// columns for REPLICA IDENTITY USING INDEX, else the primary key's (none
// when the table has no primary key).
func identityKey(ctx context.Context, q queryer, relID uint32) (identity byte, key []string, err error) {
	rows, err := q.Query(ctx, `SELECT c.relreplident::text, coalesce((
			SELECT array_agg(a.attname::text ORDER BY k.ord)
			FROM pg_catalog.pg_index i
			CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			WHERE i.indrelid = c.oid
			  AND CASE WHEN c.relreplident = 'i' THEN i.indisreplident ELSE i.indisprimary END
		), '{}')
		FROM pg_catalog.pg_class c WHERE c.oid = $1`, relID)
	if err != nil {
		return 0, nil, fmt.Errorf("read key of relation %d: %w", relID, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, nil, fmt.Errorf("read key of relation %d: %w", relID, err)
		}
		return 0, nil, nil // dropped since: the Relation message's flags decide
	}
	var ident string
	if err := rows.Scan(&ident, &key); err != nil {
		return 0, nil, fmt.Errorf("read key of relation %d: %w", relID, err)
	}
	return firstByte(ident), key, rows.Err()
}

// tableColumns lists the columns pgoutput publishes for a table: not
// dropped, not generated, in attribute order.
func tableColumns(ctx context.Context, q queryer, relID uint32) ([]relColumn, error) {
	rows, err := q.Query(ctx, `SELECT attname::text, atttypid FROM pg_catalog.pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
		ORDER BY attnum`, relID)
	if err != nil {
		return nil, fmt.Errorf("read columns of relation %d: %w", relID, err)
	}
	var cols []relColumn
	for rows.Next() {
		var c relColumn
		if err := rows.Scan(&c.name, &c.oid); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read columns of relation %d: %w", relID, err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of relation %d: %w", relID, err)
	}
	return cols, nil
}

// catalogRelation builds the relation the stream would see for a table, so
// that the snapshot keys rows exactly as the stream does: the replica
// identity's columns are flagged (all of them for FULL), and the key is the
// identity index or primary key in key order.
func catalogRelation(id uint32, schema, table string, identity byte, cols []relColumn, key []string) *relation {
	r := &relation{id: id, schema: schema, table: table, identity: identity, columns: cols, members: memberNames(cols)}
	inKey := make(map[string]bool, len(key))
	for _, k := range key {
		inKey[k] = true
	}
	for i := range r.columns {
		switch identity {
		case 'f':
			r.columns[i].isKey = true
		case 'd', 'i':
			r.columns[i].isKey = inKey[r.columns[i].name]
		}
		if r.columns[i].isKey {
			r.key = append(r.key, i)
		}
	}
	r.setKey(key)
	return r
}
