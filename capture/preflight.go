package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walsearch/walsearch/bus"
)

// Preflight checks, creating and changing nothing, that a Capture with cfg
// can start: that PostgreSQL accepts the credentials of cfg.URL for queries
// and for replication, that wal_level is logical, that the captured tables
// exist and may be read, that the user may create or alter the publication
// when it has to, that a replication slot is free when one must be created,
// and that the slot and publication are this instance's (see OwnersTable).
// state is the StateStore the Capture will use.
//
// Every error it returns is a *SetupError that says what to fix: a process
// should stop on it rather than retry, since nothing was created yet.
func Preflight(ctx context.Context, cfg Config, state StateStore) error {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return &SetupError{Err: fmt.Errorf("invalid capture config: %w", err)}
	}
	if state == nil {
		return errors.New("preflight: a StateStore is required")
	}
	c := &Capture{cfg: cfg, state: state, log: slog.New(slog.DiscardHandler)}
	err := c.preflight(ctx)
	if err == nil || isSetupError(err) || ctx.Err() != nil {
		return err
	}
	return &SetupError{Err: err}
}

func (c *Capture) preflight(ctx context.Context) error {
	connCfg, err := queryConfig(c.cfg.URL)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return explainConnect(fmt.Errorf("connect to %s: %w", bus.RedactURL(c.cfg.URL), err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := checkWALLevel(ctx, conn); err != nil {
		return err
	}
	var user string
	var super, repl bool
	if err := conn.QueryRow(ctx, `SELECT current_user, rolsuper, rolreplication FROM pg_catalog.pg_roles WHERE rolname = current_user`).
		Scan(&user, &super, &repl); err != nil {
		return fmt.Errorf("read the attributes of the capture user: %w", err)
	}
	if !super && !repl {
		return fmt.Errorf("user %s lacks the REPLICATION attribute: run ALTER ROLE %s REPLICATION as a superuser", user, pgx.Identifier{user}.Sanitize())
	}
	if err := checkReplicationConn(ctx, c.cfg.URL); err != nil {
		return err
	}
	tables := c.cfg.tableNames()
	notOwned, err := checkTables(ctx, conn, user, tables)
	if err != nil {
		return err
	}

	slot, pubExists, _, err := c.readOwnership(ctx, conn)
	if err != nil {
		return err
	}

	var wmExists, wmOwned, canCreateInPublic, canCreateInDB bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.walsearch_watermarks') IS NOT NULL,
			coalesce((SELECT pg_has_role(relowner, 'USAGE') FROM pg_catalog.pg_class WHERE oid = to_regclass('public.walsearch_watermarks')), false),
			has_schema_privilege('public', 'CREATE'), has_database_privilege(current_database(), 'CREATE')`).
		Scan(&wmExists, &wmOwned, &canCreateInPublic, &canCreateInDB); err != nil {
		return fmt.Errorf("check privileges: %w", err)
	}
	var ownersExists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.walsearch_owners') IS NOT NULL`).Scan(&ownersExists); err != nil {
		return fmt.Errorf("look up %s: %w", OwnersTable, err)
	}
	published := tables
	if len(published) > 0 {
		published = append(published, watermarkName())
	}
	change, err := publicationChange(ctx, conn, c.cfg.Publication, pubExists, published)
	if err != nil {
		return err
	}
	if change && !super {
		if len(tables) == 0 {
			return fmt.Errorf("user %s is not a superuser, and a publication FOR ALL TABLES (used when postgres.tables is empty) needs one: "+
				"list the tables to capture in postgres.tables, or use a superuser in postgres.url", user)
		}
		if wmExists && !wmOwned {
			notOwned = append(notOwned, watermarkName().String())
		}
		if len(notOwned) > 0 {
			return fmt.Errorf("user %s must own the tables it publishes, and does not own %s: make it their owner (ALTER TABLE ... OWNER TO %s) or use a superuser in postgres.url",
				user, strings.Join(notOwned, ", "), pgx.Identifier{user}.Sanitize())
		}
		if !pubExists && !canCreateInDB {
			return fmt.Errorf("user %s may not create publication %s: run GRANT CREATE ON DATABASE %s TO %s, or create the publication as a superuser",
				user, c.cfg.Publication, pgx.Identifier{conn.Config().Database}.Sanitize(), pgx.Identifier{user}.Sanitize())
		}
	}
	if (!wmExists || !ownersExists) && !canCreateInPublic {
		return fmt.Errorf("user %s may not create walsearch's helper tables (%s, %s) in schema public: run GRANT CREATE ON SCHEMA public TO %s, or create them once as a superuser by starting walsearch with a superuser's postgres.url",
			user, WatermarkTable, OwnersTable, pgx.Identifier{user}.Sanitize())
	}

	if !slot.exists {
		var used, limit int
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int, current_setting('max_replication_slots')::int`).
			Scan(&used, &limit); err != nil {
			return fmt.Errorf("count replication slots: %w", err)
		}
		if used >= limit {
			return fmt.Errorf("all %d replication slots of the server are in use: raise max_replication_slots in postgresql.conf (and restart PostgreSQL) or drop a slot nothing uses", limit)
		}
	}
	return nil
}

// checkReplicationConn opens a replication connection, which pg_hba.conf
// allows separately, and identifies the server over it.
func checkReplicationConn(ctx context.Context, url string) error {
	rcfg, err := replicationConfig(url)
	if err != nil {
		return err
	}
	rconn, err := pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return explainConnect(fmt.Errorf("open replication connection to %s: %w", bus.RedactURL(url), err))
	}
	defer rconn.Close(context.WithoutCancel(ctx))
	if _, err := pglogrepl.IdentifySystem(ctx, rconn); err != nil {
		return explain(fmt.Errorf("identify the server over a replication connection: %w", err))
	}
	return nil
}

// checkTables fails unless every table exists and may be read by user; it
// returns those user does not own.
func checkTables(ctx context.Context, conn *pgx.Conn, user string, tables []tableName) (notOwned []string, err error) {
	var missing, unreadable []string
	for _, t := range tables {
		var canRead, owned bool
		err := conn.QueryRow(ctx, `SELECT has_table_privilege(c.oid, 'SELECT'), pg_has_role(c.relowner, 'USAGE')
			FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, t.schema, t.table).Scan(&canRead, &owned)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			missing = append(missing, t.String())
			continue
		case err != nil:
			return nil, fmt.Errorf("look up table %s: %w", t, err)
		}
		if !canRead {
			unreadable = append(unreadable, t.String())
		}
		if !owned {
			notOwned = append(notOwned, t.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("postgres.tables lists %s, which do not exist in database %s: create them or remove them from postgres.tables",
			strings.Join(missing, ", "), conn.Config().Database)
	}
	if len(unreadable) > 0 {
		return nil, fmt.Errorf("user %s may not read %s: run GRANT SELECT ON %s TO %s",
			user, strings.Join(unreadable, ", "), strings.Join(unreadable, ", "), pgx.Identifier{user}.Sanitize())
	}
	return notOwned, nil
}

// publicationChange reports whether capture would create or alter the
// publication to publish tables (nil: FOR ALL TABLES).
func publicationChange(ctx context.Context, conn *pgx.Conn, name string, exists bool, tables []tableName) (bool, error) {
	if !exists {
		return true, nil
	}
	var allTables, viaRoot bool
	if err := conn.QueryRow(ctx, `SELECT puballtables, pubviaroot FROM pg_catalog.pg_publication WHERE pubname = $1`, name).
		Scan(&allTables, &viaRoot); err != nil {
		return false, fmt.Errorf("read publication %s: %w", name, err)
	}
	if allTables != (len(tables) == 0) || !viaRoot {
		return true, nil
	}
	if len(tables) == 0 {
		return false, nil
	}
	current, err := publicationTables(ctx, conn, name)
	if err != nil {
		return false, err
	}
	return !sameTables(current, tables), nil
}

// explainConnect adds what to do to a failed connection.
func explainConnect(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return explain(err)
	}
	return fmt.Errorf("%w (check the host and port in postgres.url, and that PostgreSQL is running and accepts TCP connections)", err)
}
