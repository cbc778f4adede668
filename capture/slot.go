package capture

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walsearch/walsearch/bus"
)

// slotInfo is a replication slot as pg_replication_slots shows it.
type slotInfo struct {
	exists    bool
	confirmed bus.LSN
	// lost is set when PostgreSQL invalidated the slot (wal_status 'lost'):
	// it no longer holds the WAL since its confirmed position.
	lost bool
	// activePID is the server process streaming from the slot, or 0.
	activePID int
}

// readSlot looks the slot up and checks that it is a pgoutput slot of this
// database.
func readSlot(ctx context.Context, conn *pgx.Conn, name string) (slotInfo, error) {
	var plugin, slotType string
	var db *string
	var confirmed *string
	var lost bool
	var pid *int32
	err := conn.QueryRow(ctx, `SELECT coalesce(plugin, ''), slot_type, database, confirmed_flush_lsn::text,
			coalesce(wal_status = 'lost', false), active_pid
		FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, name).Scan(&plugin, &slotType, &db, &confirmed, &lost, &pid)
	if errors.Is(err, pgx.ErrNoRows) {
		return slotInfo{}, nil
	}
	if err != nil {
		return slotInfo{}, fmt.Errorf("read replication slot %s: %w", name, err)
	}
	if slotType != "logical" || plugin != "pgoutput" {
		return slotInfo{}, fmt.Errorf("replication slot %s is a %s slot with plugin %q: drop it or choose another postgres.slot", name, slotType, plugin)
	}
	if db == nil || *db != conn.Config().Database {
		return slotInfo{}, fmt.Errorf("replication slot %s belongs to another database: choose another postgres.slot", name)
	}
	info := slotInfo{exists: true, lost: lost}
	if pid != nil {
		info.activePID = int(*pid)
	}
	if confirmed != nil {
		lsn, err := bus.ParseLSN(*confirmed)
		if err != nil {
			return slotInfo{}, fmt.Errorf("read replication slot %s: %w", name, err)
		}
		info.confirmed = lsn
	}
	return info, nil
}

// createdSlot is the answer to CREATE_REPLICATION_SLOT.
type createdSlot struct {
	consistentPoint bus.LSN
	snapshot        string // exported snapshot, valid until the next command on the connection
}

// createSlot creates the logical slot over a replication connection and
// exports a snapshot consistent with the slot's starting point.
func createSlot(ctx context.Context, rconn *pgconn.PgConn, name string) (createdSlot, error) {
	res, err := pglogrepl.ParseCreateReplicationSlot(rconn.Exec(ctx,
		fmt.Sprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (SNAPSHOT 'export')", name)))
	if err != nil {
		return createdSlot{}, explain(fmt.Errorf("create replication slot %s: %w", name, err))
	}
	lsn, err := bus.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return createdSlot{}, fmt.Errorf("create replication slot %s: %w", name, err)
	}
	return createdSlot{consistentPoint: lsn, snapshot: res.SnapshotName}, nil
}

// dropSlot drops the slot, waiting for a previous session still holding it
// to let go.
func dropSlot(ctx context.Context, rconn *pgconn.PgConn, name string) error {
	if _, err := rconn.Exec(ctx, fmt.Sprintf("DROP_REPLICATION_SLOT %s WAIT", name)).ReadAll(); err != nil {
		return explain(fmt.Errorf("drop replication slot %s: %w", name, err))
	}
	return nil
}

// startReplication starts streaming from the slot. A slot still held by a
// session that is going away (a previous Run, a restarted process) is
// waited for, up to wait.
func startReplication(ctx context.Context, rconn *pgconn.PgConn, slot, publication string, from bus.LSN, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	opts := pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", publication)},
	}
	for {
		err := pglogrepl.StartReplication(ctx, rconn, slot, pglogrepl.LSN(from), opts)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != codeObjectInUse || time.Now().After(deadline) {
			if err != nil {
				return explain(fmt.Errorf("start replication from slot %s at %s: %w", slot, from, err))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// takeOverSlot ends the server session that streams from the slot, if
// any: the caller holds a lease proving that session's capture lost it
// (a process stopped longer than the lease's TTL, whose connection still
// looks alive to PostgreSQL). startReplication then waits for the slot
// to be released.
func (c *Capture) takeOverSlot(ctx context.Context, conn *pgx.Conn) error {
	var pid *int32
	err := conn.QueryRow(ctx, `SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, c.cfg.Slot).Scan(&pid)
	if err != nil || pid == nil {
		if err == nil || errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return explain(fmt.Errorf("look up replication slot %s: %w", c.cfg.Slot, err))
	}
	c.log.Warn("ending the server session that still streams from the slot: it belongs to a capture process that lost its lease", "pid", *pid)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, *pid); err != nil {
		return explain(fmt.Errorf("end server process %d, which holds replication slot %s for a capture that lost its lease: %w", *pid, c.cfg.Slot, err))
	}
	return nil
}
