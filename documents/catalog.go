package documents

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Catalog describes the tables a definition may use, by "schema.table".
type Catalog map[string]*TableInfo

// TableInfo is what the catalog says about one table.
type TableInfo struct {
	Schema, Name string
	Columns      []ColumnInfo
	// Key is the primary key, in key order.
	Key []string
	// Unique lists the primary key and every unique constraint.
	Unique      [][]string
	ForeignKeys []ForeignKey
	// ReplicaIdentity is pg_class.relreplident: d (primary key), f (full),
	// i (an index) or n (nothing).
	ReplicaIdentity byte
	// IdentityColumns are the columns whose old values a delete, or an
	// update that changes them, sends: the primary key for d, the index's
	// columns for i, every column for f.
	IdentityColumns []string
}

// ColumnInfo is a column and its type as format_type prints it.
type ColumnInfo struct {
	Name, Type string
}

// ForeignKey is a foreign key constraint of a table.
type ForeignKey struct {
	Name       string
	Columns    []string
	RefSchema  string
	RefTable   string
	RefColumns []string
}

// QualifiedName is "schema.table".
func (t *TableInfo) QualifiedName() string { return t.Schema + "." + t.Name }

// column returns the named column.
func (t *TableInfo) column(name string) (ColumnInfo, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return ColumnInfo{}, false
}

// unique reports whether cols (in any order) are a unique key of t.
func (t *TableInfo) unique(cols []string) bool {
	for _, u := range t.Unique {
		if len(u) == len(cols) && sameSet(u, cols) {
			return true
		}
	}
	return false
}

// identityCovers reports whether a delete's (or a moving update's) old
// values include every one of cols.
func (t *TableInfo) identityCovers(cols []string) bool {
	if t.ReplicaIdentity == 'f' {
		return true
	}
	for _, c := range cols {
		if !slices.Contains(t.IdentityColumns, c) {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// catalogQuery reads every ordinary and partitioned table outside the
// system schemas: columns, primary and unique keys, foreign keys and
// replica identity.
const catalogQuery = `
SELECT n.nspname, c.relname, c.relreplident::text,
  (SELECT coalesce(json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum), '[]')
     FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT coalesce(json_agg(json_build_array(k.contype,
       (SELECT json_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(num, ord)
          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num),
       k.conname, fn.nspname, fc.relname,
       (SELECT json_agg(a.attname ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u(num, ord)
          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num)) ORDER BY k.conname), '[]')
     FROM pg_constraint k
     LEFT JOIN pg_class fc ON fc.oid = k.confrelid
     LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
     WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'f')),
  (SELECT coalesce(json_agg(a.attname ORDER BY u.ord), '[]')
     FROM pg_index i, unnest(i.indkey) WITH ORDINALITY u(num, ord)
     JOIN pg_attribute a ON a.attnum = u.num
     WHERE i.indrelid = c.oid AND a.attrelid = c.oid AND i.indisreplident)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`

// LoadCatalog reads the catalog of every user table.
func LoadCatalog(ctx context.Context, conn *pgx.Conn) (Catalog, error) {
	rows, err := conn.Query(ctx, catalogQuery)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	defer rows.Close()
	cat := Catalog{}
	for rows.Next() {
		var (
			t        TableInfo
			ident    string
			cols     [][]string
			cons     [][]any
			identIdx []string
		)
		if err := rows.Scan(&t.Schema, &t.Name, &ident, &cols, &cons, &identIdx); err != nil {
			return nil, fmt.Errorf("read catalog: %w", err)
		}
		if ident != "" {
			t.ReplicaIdentity = ident[0]
		}
		for _, c := range cols {
			t.Columns = append(t.Columns, ColumnInfo{Name: c[0], Type: c[1]})
		}
		for _, k := range cons {
			typ, _ := k[0].(string)
			kcols := jsonStrings(k[1])
			switch typ {
			case "p":
				t.Key = kcols
				t.Unique = append(t.Unique, kcols)
			case "u":
				t.Unique = append(t.Unique, kcols)
			case "f":
				name, _ := k[2].(string)
				rs, _ := k[3].(string)
				rt, _ := k[4].(string)
				t.ForeignKeys = append(t.ForeignKeys, ForeignKey{Name: name, Columns: kcols, RefSchema: rs, RefTable: rt, RefColumns: jsonStrings(k[5])})
			}
		}
		switch t.ReplicaIdentity {
		case 'd':
			t.IdentityColumns = t.Key
		case 'i':
			t.IdentityColumns = identIdx
		case 'f':
			for _, c := range t.Columns {
				t.IdentityColumns = append(t.IdentityColumns, c.Name)
			}
		}
		cat[t.QualifiedName()] = &t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	return cat, nil
}

// jsonStrings converts a decoded JSON array of strings.
func jsonStrings(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
