package capture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
)

// OwnersTable is the table, in the public schema, that records which
// walsearch instance owns each replication slot and publication of the
// database. An instance is identified by an owner id kept in its state
// store (under data_dir with the embedded bus): capture alters or drops only
// the slot and publication recorded under its own id.
const OwnersTable = "walsearch_owners"

const ownersDDL = `CREATE TABLE IF NOT EXISTS public.walsearch_owners (
	kind text NOT NULL CHECK (kind IN ('slot', 'publication')),
	name text NOT NULL,
	owner text NOT NULL,
	instance text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (kind, name))`

func isOwnersTable(schema, table string) bool {
	return schema == watermarkSchema && table == OwnersTable
}

// Kinds of owned objects.
const (
	kindSlot        = "slot"
	kindPublication = "publication"
)

// ownerKey is the StateStore key of this instance's owner id.
const ownerKey = "capture.owner"

// ownerRecord is a row of the owners table.
type ownerRecord struct {
	owner    string
	instance string
	since    time.Time
}

// localOwner returns the owner id kept in the state store, or "".
func localOwner(ctx context.Context, state StateStore) (string, error) {
	b, found, err := state.Get(ctx, ownerKey)
	if err != nil {
		return "", fmt.Errorf("read state %s: %w", ownerKey, err)
	}
	if !found {
		return "", nil
	}
	return string(b), nil // empty: none
}

func newOwnerID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readOwners returns the records of slot and publication by kind; none when
// the owners table does not exist.
func readOwners(ctx context.Context, conn *pgx.Conn, slot, publication string) (map[string]ownerRecord, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.walsearch_owners') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up %s: %w", OwnersTable, err)
	}
	out := map[string]ownerRecord{}
	if !exists {
		return out, nil
	}
	rows, err := conn.Query(ctx, `SELECT kind, owner, instance, created_at FROM public.walsearch_owners
		WHERE (kind = 'slot' AND name = $1) OR (kind = 'publication' AND name = $2)`, slot, publication)
	if err != nil {
		return nil, explain(fmt.Errorf("read %s: %w", OwnersTable, err))
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var r ownerRecord
		if err := rows.Scan(&kind, &r.owner, &r.instance, &r.since); err != nil {
			return nil, fmt.Errorf("read %s: %w", OwnersTable, err)
		}
		out[kind] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", OwnersTable, err)
	}
	return out, nil
}

// snapshotProof returns the consistent point of the slot this state store
// took its snapshot from (begun or finished), or 0 when it took none. A slot
// whose confirmed position is at or past it is the one the snapshot came
// from: nothing else writes these keys.
func (c *Capture) snapshotProof(ctx context.Context) (bus.LSN, error) {
	var begun snapshotStart
	if _, err := c.getJSON(ctx, c.snapshotStartKey(), &begun); err != nil {
		return 0, err
	}
	if begun.LSN != 0 {
		return begun.LSN, nil
	}
	var rec snapshotRecord
	if _, err := c.getJSON(ctx, c.snapshotKey(), &rec); err != nil {
		return 0, err
	}
	return rec.LSN, nil
}

// ownership is what checkOwnership decided.
type ownership struct {
	id    string // this instance's owner id
	fresh bool   // id is new and not yet in the state store
	// adopt names the objects that exist without a record and that this
	// instance's state proves it created (before owners were recorded).
	adopt []string
}

// readOwnership reads the slot and whether the publication exists, and
// checks that both are this instance's to use (see checkOwnership).
func (c *Capture) readOwnership(ctx context.Context, conn *pgx.Conn) (slotInfo, bool, ownership, error) {
	slot, err := readSlot(ctx, conn, c.cfg.Slot)
	if err != nil {
		return slotInfo{}, false, ownership{}, err
	}
	pubExists, err := publicationExists(ctx, conn, c.cfg.Publication)
	if err != nil {
		return slotInfo{}, false, ownership{}, err
	}
	own, err := c.checkOwnership(ctx, conn, slot, pubExists)
	return slot, pubExists, own, err
}

// checkOwnership decides, without changing anything, whether this instance
// may use (and alter or drop) the configured slot and publication. It fails
// with ErrNotOwned when another instance owns either, or when one exists
// without a record and this instance's state does not prove it created it,
// and with ErrSlotLost when the slot this instance's snapshot came from is
// gone.
func (c *Capture) checkOwnership(ctx context.Context, conn *pgx.Conn, slot slotInfo, pubExists bool) (ownership, error) {
	local, err := localOwner(ctx, c.state)
	if err != nil {
		return ownership{}, err
	}
	recs, err := readOwners(ctx, conn, c.cfg.Slot, c.cfg.Publication)
	if err != nil {
		return ownership{}, err
	}
	objects := []struct {
		kind, name string
		exists     bool
	}{{kindSlot, c.cfg.Slot, slot.exists}, {kindPublication, c.cfg.Publication, pubExists}}
	for _, o := range objects {
		if r, ok := recs[o.kind]; ok && r.owner != local {
			return ownership{}, c.foreign(o.kind, o.name, r, local)
		}
	}
	proof, err := c.snapshotProof(ctx)
	if err != nil {
		return ownership{}, err
	}
	own := ownership{id: local}
	if local == "" {
		own.id, own.fresh = newOwnerID(), true
	}
	if proof != 0 && (!slot.exists || slot.lost) {
		return ownership{}, c.slotLost(proof, slot)
	}
	if proof != 0 && slot.confirmed < proof {
		return ownership{}, c.mismatch(proof, slot)
	}
	proven := slot.exists && proof != 0
	for _, o := range objects {
		if _, ok := recs[o.kind]; ok || !o.exists {
			continue
		}
		if !proven {
			return ownership{}, c.unrecorded(o.kind, o.name)
		}
		own.adopt = append(own.adopt, o.kind)
	}
	return own, nil
}

// claim stores the owner id and records the slot and publication under it.
// A record another instance wrote first wins, and fails the claim.
func (c *Capture) claim(ctx context.Context, conn *pgx.Conn, own ownership) error {
	if own.fresh {
		if err := c.state.Put(ctx, ownerKey, []byte(own.id)); err != nil {
			return fmt.Errorf("write state %s: %w", ownerKey, err)
		}
	}
	// Looked up first: CREATE TABLE IF NOT EXISTS needs the right to create
	// in public even when the table exists.
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.walsearch_owners') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", OwnersTable, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, ownersDDL); err != nil {
			return explain(fmt.Errorf("create %s: %w", OwnersTable, err))
		}
	}
	// One transaction, slot first: of two instances claiming at once, the
	// second waits for the first's records and leaves none of its own.
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, o := range [][2]string{{kindSlot, c.cfg.Slot}, {kindPublication, c.cfg.Publication}} {
			kind, name := o[0], o[1]
			if _, err := tx.Exec(ctx, `INSERT INTO public.walsearch_owners (kind, name, owner, instance) VALUES ($1, $2, $3, $4)
				ON CONFLICT (kind, name) DO NOTHING`, kind, name, own.id, c.cfg.Instance); err != nil {
				return explain(fmt.Errorf("record the owner of %s: %w", describe(kind, name), err))
			}
			var r ownerRecord
			if err := tx.QueryRow(ctx, `SELECT owner, instance, created_at FROM public.walsearch_owners WHERE kind = $1 AND name = $2`, kind, name).
				Scan(&r.owner, &r.instance, &r.since); err != nil {
				return fmt.Errorf("read the owner of %s: %w", describe(kind, name), err)
			}
			if r.owner != own.id {
				return c.foreign(kind, name, r, own.id)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(own.adopt) > 0 {
		c.log.Warn("adopted a replication slot and publication created before walsearch recorded owners: this data dir's snapshot was taken from the slot",
			"objects", own.adopt, "publication", c.cfg.Publication, "owner", own.id)
	}
	return nil
}

func describe(kind, name string) string {
	if kind == kindSlot {
		return "replication slot " + name
	}
	return "publication " + name
}

func (c *Capture) foreign(kind, name string, r ownerRecord, local string) error {
	who := "owner " + r.owner
	if r.instance != "" {
		who += ", " + r.instance
	}
	this := "this instance has no owner id yet"
	if local != "" {
		this = "this instance is owner " + local
	}
	return &SetupError{Err: fmt.Errorf("%s belongs to another walsearch instance (%s, since %s; %s): it is left alone. "+
		"Give each instance its own postgres.slot and postgres.publication; if that instance is gone for good, "+
		"remove what it created with `walsearch teardown --yes --owner %s`: %w",
		describe(kind, name), who, r.since.UTC().Format(time.RFC3339), this, r.owner, ErrNotOwned)}
}

func (c *Capture) unrecorded(kind, name string) error {
	drop := fmt.Sprintf("SELECT pg_drop_replication_slot('%s')", name)
	if kind == kindPublication {
		drop = "DROP PUBLICATION " + name
	}
	return &SetupError{Err: fmt.Errorf("%s exists, no walsearch instance recorded owning it, and this instance's data dir holds no snapshot "+
		"taken from replication slot %s: it may be another instance's, so it is left alone. Give this instance its own "+
		"postgres.slot and postgres.publication; or start walsearch with the data_dir of the instance that created it; "+
		"or, if nothing uses it, drop it (%s): %w", describe(kind, name), c.cfg.Slot, drop, ErrNotOwned)}
}

func (c *Capture) slotLost(proof bus.LSN, slot slotInfo) error {
	what := "is gone (dropped by hand or by another tool)"
	if slot.exists {
		what = "was invalidated by PostgreSQL (max_slot_wal_keep_size) and no longer holds the WAL this instance needs"
	}
	return &SetupError{Err: fmt.Errorf("replication slot %s %s, although this instance's data dir took its snapshot from it at %s: "+
		"changes since the last confirmed position are lost, so the index may miss updates and deletes, and walsearch does not rebuild it silently. "+
		"To rebuild: stop walsearch, run `walsearch teardown --yes`, then start with an empty data_dir "+
		"(with an external Elasticsearch, also delete the indices it fed) so that a fresh snapshot is taken: %w",
		c.cfg.Slot, what, proof, ErrSlotLost)}
}

func (c *Capture) mismatch(proof bus.LSN, slot slotInfo) error {
	return &SetupError{Err: fmt.Errorf("replication slot %s is not the one this instance's data dir took its snapshot from: "+
		"its confirmed position %s is before that snapshot's consistent point %s, so the data dir and the slot do not belong together "+
		"(a data dir copied from another instance, or a slot created again by hand). The index may miss changes. To rebuild: stop walsearch, run `walsearch teardown --yes`, then start with an empty data_dir "+
		"(with an external Elasticsearch, also delete the indices it fed) so that a fresh snapshot is taken: %w",
		c.cfg.Slot, slot.confirmed, proof, ErrSlotLost)}
}

// publicationExists reports whether the publication exists.
func publicationExists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var exists bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)`, name).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("look up publication %s: %w", name, err)
	}
	return exists, nil
}

// isSetupError reports whether err is a *SetupError.
func isSetupError(err error) bool {
	var se *SetupError
	return errors.As(err, &se)
}
