package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL error codes the capture explains.
const (
	codeInsufficientPrivilege = "42501"
	codeUndefinedTable        = "42P01"
	codeObjectInUse           = "55006"
	codeInvalidAuthorization  = "28000"
	codeInvalidPassword       = "28P01"
	codeInvalidCatalogName    = "3D000"
)

// checkWALLevel fails with ErrWALLevel unless the server decodes logically.
func checkWALLevel(ctx context.Context, conn *pgx.Conn) error {
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return fmt.Errorf("read wal_level: %w", err)
	}
	if level != "logical" {
		return fmt.Errorf("wal_level is %q: %w", level, ErrWALLevel)
	}
	return nil
}

// ensurePublication creates the publication if it is missing and brings an
// existing one in line with tables (nil: FOR ALL TABLES). Partitions are
// published under their root table.
func ensurePublication(ctx context.Context, conn *pgx.Conn, name string, tables []tableName) (changed bool, err error) {
	ident := pgx.Identifier{name}.Sanitize()
	var allTables, viaRoot bool
	err = conn.QueryRow(ctx, `SELECT puballtables, pubviaroot FROM pg_catalog.pg_publication WHERE pubname = $1`, name).
		Scan(&allTables, &viaRoot)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return true, createPublication(ctx, conn, ident, tables)
	case err != nil:
		return false, fmt.Errorf("read publication %s: %w", name, err)
	}
	if allTables != (len(tables) == 0) {
		// FOR ALL TABLES cannot be altered into a table list or back.
		if _, err := conn.Exec(ctx, "DROP PUBLICATION "+ident); err != nil {
			return false, explain(fmt.Errorf("drop publication %s to change it: %w", name, err))
		}
		return true, createPublication(ctx, conn, ident, tables)
	}
	if len(tables) > 0 {
		current, err := publicationTables(ctx, conn, name)
		if err != nil {
			return false, err
		}
		if !sameTables(current, tables) {
			if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+ident+" SET TABLE "+tableList(tables)); err != nil {
				return false, explain(fmt.Errorf("set the tables of publication %s: %w", name, err))
			}
			changed = true
		}
	}
	if !viaRoot {
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+ident+" SET (publish_via_partition_root = true)"); err != nil {
			return false, explain(fmt.Errorf("alter publication %s: %w", name, err))
		}
		changed = true
	}
	return changed, nil
}

func createPublication(ctx context.Context, conn *pgx.Conn, ident string, tables []tableName) error {
	what := "FOR ALL TABLES"
	if len(tables) > 0 {
		what = "FOR TABLE " + tableList(tables)
	}
	_, err := conn.Exec(ctx, "CREATE PUBLICATION "+ident+" "+what+" WITH (publish_via_partition_root = true)")
	if err != nil {
		return explain(fmt.Errorf("create publication %s %s: %w", ident, what, err))
	}
	return nil
}

func tableList(tables []tableName) string {
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = pgx.Identifier{t.schema, t.table}.Sanitize()
	}
	return strings.Join(parts, ", ")
}

// publicationTables lists the tables explicitly added to a publication.
func publicationTables(ctx context.Context, conn *pgx.Conn, name string) ([]tableName, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname
		FROM pg_catalog.pg_publication p
		JOIN pg_catalog.pg_publication_rel pr ON pr.prpubid = p.oid
		JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE p.pubname = $1`, name)
	if err != nil {
		return nil, fmt.Errorf("list tables of publication %s: %w", name, err)
	}
	var out []tableName
	for rows.Next() {
		var t tableName
		if err := rows.Scan(&t.schema, &t.table); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables of publication %s: %w", name, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables of publication %s: %w", name, err)
	}
	return out, nil
}

func sameTables(a, b []tableName) bool {
	key := func(ts []tableName) []string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = t.String()
		}
		slices.Sort(s)
		return s
	}
	return slices.Equal(key(a), key(b))
}

// explain adds what to do to the PostgreSQL errors an operator can fix.
func explain(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case codeInsufficientPrivilege:
		return fmt.Errorf("%w (grant the capture user the REPLICATION attribute and ownership of the captured tables; "+
			"a publication FOR ALL TABLES, used when postgres.tables is empty, needs a superuser: list the tables in postgres.tables instead)", err)
	case codeUndefinedTable:
		return fmt.Errorf("%w (create the table or remove it from postgres.tables)", err)
	case codeInvalidAuthorization:
		if strings.Contains(pgErr.Message, "replication") {
			return fmt.Errorf("%w (allow replication connections for this user in pg_hba.conf)", err)
		}
		if strings.Contains(pgErr.Message, "role") {
			return fmt.Errorf("%w (fix the user in postgres.url, or create the role)", err)
		}
		return fmt.Errorf("%w (allow this user and host in pg_hba.conf)", err)
	case codeInvalidPassword:
		return fmt.Errorf("%w (fix the user or password in postgres.url)", err)
	case codeInvalidCatalogName:
		return fmt.Errorf("%w (fix the database name in postgres.url, or create the database)", err)
	case codeObjectInUse:
		return fmt.Errorf("%w (another process is using the replication slot: stop it or choose another postgres.slot)", err)
	}
	if strings.Contains(pgErr.Message, "wal_level") {
		return fmt.Errorf("%w: %w", err, ErrWALLevel)
	}
	return err
}
