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
