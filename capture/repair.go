package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
)

// ensureKeysColumn adds the keys column, which repair requests use, to a
// watermark table created by an older version.
func ensureKeysColumn(ctx context.Context, conn *pgx.Conn) error {
	var has bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
		WHERE attrelid = 'public.walsearch_watermarks'::regclass AND attname = 'keys' AND NOT attisdropped)`).Scan(&has)
	if err != nil {
		return fmt.Errorf("look up %s: %w", WatermarkTable, err)
	}
	if has {
		return nil
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE public.walsearch_watermarks ADD COLUMN IF NOT EXISTS keys jsonb`); err != nil {
		return explain(fmt.Errorf("add the keys column to %s: %w", WatermarkTable, err))
	}
	return nil
}

// RequestRepair asks the capture running on slot to re-read the rows of
// table with the given keys (each as PostgreSQL prints it, in key column
// order) while it keeps streaming: each row found is published as a
// backfill row, and each key without a row as a delete, between watermarks,
// so that a change of the same row in the log always wins and versions stay
// ordered. The request is a row of the watermark table, like a backfill
// request. It returns the request's id.
func RequestRepair(ctx context.Context, url, slot, table string, keys [][]string) (int64, error) {
	name, err := parseTableName(table)
	if err != nil {
		return 0, fmt.Errorf("repair: %w", err)
	}
	if len(keys) == 0 {
		return 0, errors.New("repair: no keys given")
	}
	data, err := json.Marshal(keys)
	if err != nil {
		return 0, fmt.Errorf("repair: encode keys: %w", err)
	}
	cfg, err := queryConfig(url)
	if err != nil {
		return 0, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("connect to %s: %w", bus.RedactURL(url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := ensureWatermarkTable(ctx, conn); err != nil {
		return 0, err
	}
	if err := ensureKeysColumn(ctx, conn); err != nil {
		return 0, err
	}
	var id int64
	err = conn.QueryRow(ctx, `INSERT INTO public.walsearch_watermarks (slot, kind, tbl, chunk, rate, keys)
		VALUES ($1, $2, $3, 0, 0, $4::jsonb) RETURNING id`, slot, signalBackfill, name.String(), string(data)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("write repair request: %w", err)
	}
	return id, nil
}

// asKeys reads the keys column of a signal: a JSON array of keys, each an
// array of strings.
func asKeys(v any) [][]string {
	raw, err := json.Marshal(v)
	if err != nil || v == nil {
		return nil
	}
	var keys [][]string
	if json.Unmarshal(raw, &keys) != nil {
		return nil
	}
	return keys
}

// repairKeys re-reads the rows of the given keys in chunks between
// watermarks (see chunk); a key without a row becomes a delete.
func (b *backfiller) repairKeys(ctx context.Context, conn *pgx.Conn, t snapshotTable, keys [][]string) error {
	per := max(b.c.cfg.ChunkRows, 1)
	for len(keys) > 0 {
		n := min(per, len(keys))
		part := keys[:n]
		keys = keys[n:]
		read := func(enc *rowEncoder, rows *[]*bus.Change) error {
			found := map[string]bool{}
			w := &copyRows{onRow: func(fields []copyField) error {
				ev, err := enc.change(fields, 0, uint64(len(*rows)))
				if err != nil {
					return err
				}
				found[bus.DocumentID(ev.Key)] = true
				*rows = append(*rows, ev)
				return nil
			}}
			if _, err := conn.PgConn().CopyTo(ctx, w, keysSQL(t, part)); err != nil {
				return fmt.Errorf("read %s: %w", t.rel.qualifiedName(), err)
			}
			if err := w.finish(); err != nil {
				return fmt.Errorf("read %s: %w", t.rel.qualifiedName(), err)
			}
			for _, k := range part {
				if len(k) != len(t.rel.key) {
					continue
				}
				key := make([]bus.Column, len(k))
				for i, ki := range t.rel.key {
					col := t.rel.columns[ki]
					key[i] = bus.Column{Name: col.name, Value: enc.codec.DecodeText(col.oid, k[i])}
				}
				if found[bus.DocumentID(key)] {
					continue
				}
				*rows = append(*rows, &bus.Change{V: bus.SchemaVersion, Op: bus.OpDelete, Schema: t.rel.schema,
					Table: t.rel.table, Key: key, Pos: uint64(len(*rows))})
			}
			return nil
		}
		if err := b.window(ctx, conn, t, read); err != nil {
			return err
		}
	}
	return nil
}
