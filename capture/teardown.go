package capture

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
)

// TeardownOptions says what Teardown may remove.
type TeardownOptions struct {
	// URL is the PostgreSQL connection URL. Required.
	URL string
	// Slot and Publication are the instance's names. Default: "walsearch".
	Slot, Publication string
	// State is the instance's state store, which holds its owner id; nil
	// when its data dir is gone (then only Owner can prove ownership).
	State StateStore
	// Owner is the owner id of an instance that is gone for good: what is
	// recorded under it is removed as if it were this instance's.
	Owner string
	// Apply removes; without it Teardown only reports what it would remove.
	Apply bool
}

// TeardownReport says what Teardown removed (or would remove) and what it
// kept, and why.
type TeardownReport struct {
	Removed []string
	Kept    []string
}

// Teardown removes what a walsearch instance created in PostgreSQL: its
// replication slot, its publication, its ownership records and watermark
// rows, and the helper tables (walsearch_watermarks, walsearch_owners) once
// no other instance uses them. It removes nothing unless every object is
// this instance's (recorded under its owner id or opts.Owner, or unrecorded
// and proven by its state, see Capture's ownership rules), and nothing while
// the slot is in use. With Apply false it changes nothing.
func Teardown(ctx context.Context, opts TeardownOptions) (TeardownReport, error) {
	if opts.Slot == "" {
		opts.Slot = DefaultSlot
	}
	if opts.Publication == "" {
		opts.Publication = DefaultPublication
	}
	connCfg, err := queryConfig(opts.URL)
	if err != nil {
		return TeardownReport{}, err
	}
	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return TeardownReport{}, explainConnect(fmt.Errorf("connect to %s: %w", bus.RedactURL(opts.URL), err))
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var local string
	var proven bool // the state store took its snapshot from this slot
	c := &Capture{cfg: Config{Slot: opts.Slot, Publication: opts.Publication}, state: opts.State}
	slot, err := readSlot(ctx, conn, opts.Slot)
	if err != nil {
		return TeardownReport{}, err
	}
	if opts.State != nil {
		if local, err = localOwner(ctx, opts.State); err != nil {
			return TeardownReport{}, err
		}
		lsn, err := c.snapshotProof(ctx)
		if err != nil {
			return TeardownReport{}, err
		}
		proven = lsn != 0 && (!slot.exists || slot.confirmed >= lsn)
	}
	recs, err := readOwners(ctx, conn, opts.Slot, opts.Publication)
	if err != nil {
		return TeardownReport{}, err
	}
	pubExists, err := publicationExists(ctx, conn, opts.Publication)
	if err != nil {
		return TeardownReport{}, err
	}
	mine := func(owner string) bool { return owner != "" && (owner == local || owner == opts.Owner) }
	var rep TeardownReport
	for _, o := range []struct {
		kind, name string
		exists     bool
	}{{kindSlot, opts.Slot, slot.exists}, {kindPublication, opts.Publication, pubExists}} {
		r, recorded := recs[o.kind]
		switch {
		case recorded && !mine(r.owner):
			who := r.owner
			if r.instance != "" {
				who += ", " + r.instance
			}
			return TeardownReport{}, fmt.Errorf("teardown: %s belongs to another walsearch instance (owner %s): nothing removed; "+
				"if that instance is gone for good, run teardown again with --owner %s: %w", describe(o.kind, o.name), who, r.owner, ErrNotOwned)
		case !recorded && o.exists && !proven:
			return TeardownReport{}, fmt.Errorf("teardown: %s exists but no walsearch instance recorded owning it, and this data dir holds no snapshot taken from it: "+
				"nothing removed; run teardown with the configuration and data_dir of the instance that created it: %w", describe(o.kind, o.name), ErrNotOwned)
		}
		if o.exists {
			rep.Removed = append(rep.Removed, describe(o.kind, o.name))
		}
	}
	if slot.activePID != 0 {
		return TeardownReport{}, fmt.Errorf("teardown: replication slot %s is in use by server process %d: stop the walsearch instance that streams from it first", opts.Slot, slot.activePID)
	}
	if len(recs) > 0 {
		rep.Removed = append(rep.Removed, fmt.Sprintf("the ownership records of %s", describeRecorded(recs, opts)))
	}
	dropHelpers, why, err := helpersUnused(ctx, conn, opts)
	if err != nil {
		return TeardownReport{}, err
	}
	if dropHelpers {
		rep.Removed = append(rep.Removed, "table public."+WatermarkTable, "table public."+OwnersTable)
	} else if why != "" {
		rep.Kept = append(rep.Kept, "tables public."+WatermarkTable+" and public."+OwnersTable+": "+why)
	}
	if !opts.Apply {
		return rep, nil
	}

	if slot.exists {
		if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, opts.Slot); err != nil {
			return TeardownReport{}, explain(fmt.Errorf("drop replication slot %s: %w", opts.Slot, err))
		}
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if pubExists {
			if _, err := tx.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{opts.Publication}.Sanitize()); err != nil {
				return explain(fmt.Errorf("drop publication %s: %w", opts.Publication, err))
			}
		}
		if dropHelpers {
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS public.walsearch_watermarks, public.walsearch_owners`); err != nil {
				return explain(fmt.Errorf("drop walsearch's helper tables: %w", err))
			}
			return nil
		}
		if len(recs) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM public.walsearch_owners WHERE (kind = 'slot' AND name = $1) OR (kind = 'publication' AND name = $2)`,
				opts.Slot, opts.Publication); err != nil {
				return explain(fmt.Errorf("delete ownership records: %w", err))
			}
		}
		if _, err := tx.Exec(ctx, `DO $$ BEGIN
				IF to_regclass('public.walsearch_watermarks') IS NOT NULL THEN
					DELETE FROM public.walsearch_watermarks WHERE slot = `+quoteLiteral(opts.Slot)+`;
				END IF;
			END $$`); err != nil {
			return explain(fmt.Errorf("delete the watermarks of slot %s: %w", opts.Slot, err))
		}
		return nil
	})
	if err != nil {
		return TeardownReport{}, fmt.Errorf("teardown: %w (the replication slot, if listed, is already dropped; run teardown again to finish)", err)
	}
	return rep, nil
}

func describeRecorded(recs map[string]ownerRecord, opts TeardownOptions) string {
	var names []string
	if _, ok := recs[kindSlot]; ok {
		names = append(names, describe(kindSlot, opts.Slot))
	}
	if _, ok := recs[kindPublication]; ok {
		names = append(names, describe(kindPublication, opts.Publication))
	}
	if len(names) == 2 {
		return names[0] + " and " + names[1]
	}
	return names[0]
}

// helpersUnused reports whether the helper tables exist and would be unused
// once opts' slot and publication are gone: no other ownership record, and
// no other pgoutput slot in the database (an instance from before owners
// were recorded). Otherwise why says who still uses them, if they exist.
func helpersUnused(ctx context.Context, conn *pgx.Conn, opts TeardownOptions) (bool, string, error) {
	var wm, owners bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.walsearch_watermarks') IS NOT NULL, to_regclass('public.walsearch_owners') IS NOT NULL`).
		Scan(&wm, &owners); err != nil {
		return false, "", fmt.Errorf("look up walsearch's helper tables: %w", err)
	}
	if !wm && !owners {
		return false, "", nil
	}
	var others []string
	if owners {
		rows, err := conn.Query(ctx, `SELECT kind || ' ' || name FROM public.walsearch_owners
			WHERE NOT ((kind = 'slot' AND name = $1) OR (kind = 'publication' AND name = $2)) ORDER BY 1`, opts.Slot, opts.Publication)
		if err != nil {
			return false, "", explain(fmt.Errorf("read %s: %w", OwnersTable, err))
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return false, "", fmt.Errorf("read %s: %w", OwnersTable, err)
		}
		others = append(others, names...)
	}
	rows, err := conn.Query(ctx, `SELECT 'slot ' || slot_name FROM pg_catalog.pg_replication_slots
		WHERE database = current_database() AND plugin = 'pgoutput' AND slot_name <> $1 ORDER BY 1`, opts.Slot)
	if err != nil {
		return false, "", fmt.Errorf("list replication slots: %w", err)
	}
	slots, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, "", fmt.Errorf("list replication slots: %w", err)
	}
	for _, s := range slots {
		if !slices.Contains(others, s) {
			others = append(others, s)
		}
	}
	if len(others) > 0 {
		return false, fmt.Sprintf("still used by %v", others), nil
	}
	return true, "", nil
}
