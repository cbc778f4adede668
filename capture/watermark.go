package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
)

// WatermarkTable is the table, in the public schema, that capture writes its
// backfill watermarks to and that `walsearch backfill` writes requests to.
// It is published with the captured tables; its rows are read from the
// stream as signals and never published as changes.
const WatermarkTable = "walsearch_watermarks"

const watermarkSchema = "public"

// Signal kinds: the low and high watermark around a backfill chunk, and a
// request to backfill a table.
const (
	signalLow      = "low"
	signalHigh     = "high"
	signalBackfill = "backfill"
)

const watermarkDDL = `CREATE TABLE IF NOT EXISTS public.walsearch_watermarks (
	id bigserial PRIMARY KEY,
	slot text NOT NULL,
	kind text NOT NULL CHECK (kind IN ('low', 'high', 'backfill')),
	tbl text,
	chunk bigint,
	rate double precision,
	keys jsonb,
	created_at timestamptz NOT NULL DEFAULT now())`

func isWatermarkTable(schema, table string) bool {
	return schema == watermarkSchema && table == WatermarkTable
}

func watermarkName() tableName { return tableName{watermarkSchema, WatermarkTable} }

// ensureWatermarkTable creates the watermark table when it is missing.
func ensureWatermarkTable(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.walsearch_watermarks') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", WatermarkTable, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, watermarkDDL); err != nil {
		return explain(fmt.Errorf("create %s: %w", WatermarkTable, err))
	}
	return nil
}

// writeSignal inserts a signal row and returns its id.
func writeSignal(ctx context.Context, conn *pgx.Conn, slot, kind, table string, chunk int64, rate float64) (int64, error) {
	var id int64
	err := conn.QueryRow(ctx, `INSERT INTO public.walsearch_watermarks (slot, kind, tbl, chunk, rate)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, slot, kind, table, chunk, rate).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("write %s watermark: %w", kind, err)
	}
	return id, nil
}

// RequestBackfill asks the capture running on slot to re-read table while it
// keeps streaming, reading at most rate rows per second (0: no limit). The
// request is a row in the watermark table, which the capture sees in the
// replication stream: no access to the bus is needed. It returns the
// request's id.
func RequestBackfill(ctx context.Context, url, slot, table string, rate float64) (int64, error) {
	name, err := parseTableName(table)
	if err != nil {
		return 0, fmt.Errorf("backfill: %w", err)
	}
	if rate < 0 {
		return 0, fmt.Errorf("backfill: rate %g: want 0 (no limit) or more rows per second", rate)
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
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{name.schema, name.table}.Sanitize()).Scan(&exists); err != nil {
		return 0, fmt.Errorf("look up %s: %w", name, err)
	}
	if !exists {
		return 0, fmt.Errorf("backfill: table %s does not exist", name)
	}
	if err := ensureWatermarkTable(ctx, conn); err != nil {
		return 0, err
	}
	return writeSignal(ctx, conn, slot, signalBackfill, name.String(), 0, rate)
}

// signal is a row of the watermark table seen in the stream.
type signal struct {
	id    int64
	slot  string
	kind  string
	table string
	chunk int64
	rate  float64
	// keys, on a backfill request, limits it to the rows with these keys
	// (a repair): see RequestRepair.
	keys [][]string
}

// parseSignal reads an inserted watermark table row.
func parseSignal(ev *bus.Change) (signal, bool) {
	if ev.Op != bus.OpInsert || ev.Row == nil {
		return signal{}, false
	}
	s := signal{
		id:    asInt(ev.Row["id"]),
		chunk: asInt(ev.Row["chunk"]),
		rate:  asFloat(ev.Row["rate"]),
	}
	s.slot, _ = ev.Row["slot"].(string)
	s.kind, _ = ev.Row["kind"].(string)
	s.table, _ = ev.Row["tbl"].(string)
	s.keys = asKeys(ev.Row["keys"])
	return s, s.slot != "" && s.kind != ""
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case json.Number:
		n, _ := x.Int64()
		return n
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func asFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case json.Number:
		f, _ := x.Float64()
		return f
	}
	return 0
}

// BackfillDone reports whether the backfill request id (RequestBackfill) of
// table on slot has read every row, reading its progress from state.
func BackfillDone(ctx context.Context, state StateStore, slot, table string, id int64) (bool, error) {
	name, err := parseTableName(table)
	if err != nil {
		return false, err
	}
	c := &Capture{cfg: Config{Slot: slot}, state: state}
	var p tableProgress
	found, err := c.getJSON(ctx, c.progressKey("backfill", name.schema, name.table), &p)
	if err != nil || !found {
		return false, err
	}
	return p.LSN == bus.LSN(id) && p.done(), nil
}
