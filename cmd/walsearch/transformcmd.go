package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/transform"
)

func (m *Main) transformCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "transform",
		Short: "Work with per-table transform.js scripts",
	}
	cmd.AddCommand(m.transformTestCommand())
	return cmd
}

func (m *Main) transformTestCommand() *cobra.Command {
	var (
		path    string
		rows    []string
		keyCols []string
		op      string
		fromDB  bool
		limit   int
	)
	cmd := &cobra.Command{
		Use:   "test <table>",
		Short: "Run a table's transform.js on sample rows and print what it produces",
		Long: `test runs the script of <table> ("users" for public.users, or "schema.table")
from scripts_dir on rows given with --row, or read from PostgreSQL with
--from-db, and prints each input and its outputs: the documents to index, the
deletes, or the error with the script's stack trace. Nothing is published or
indexed. The exit status is non-zero when any row failed.

Rows read with --from-db go through the same type conversion as capture
(numeric exact, timestamps in RFC 3339, jsonb as objects, ...).`,
		Example: `  walsearch transform test users --row '{"id": 1, "email": "ann@example.com"}'
  walsearch transform test shop.orders --from-db --limit 5`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fromDB == (len(rows) > 0) {
				return errors.New("transform test: give --row or --from-db")
			}
			cfg, err := config.Load(path, m.Env, cmd.Flags())
			if err != nil {
				return err
			}
			schema, table, err := bus.ParseTable(args[0])
			if err != nil {
				return fmt.Errorf("transform test: %w", err)
			}
			sc := cfg.ScriptConfig()
			sc.Workers = 1
			sc.Logger = newLogger(m.Stderr, cfg.Log)
			scripts, err := transform.LoadTableScript(sc, schema, table)
			if err != nil {
				return err
			}
			defer scripts.Close()
			if len(scripts.Tables()) == 0 {
				fmt.Fprintf(m.Stdout, "no script at %s: rows are indexed as they are\n\n", transform.ScriptPath(cfg.ScriptsDir, schema, table))
			}
			var changes []*bus.Change
			if fromDB {
				if op == "" {
					op = string(bus.OpRead)
				}
				changes, err = readTableRows(cmd.Context(), cfg.Postgres.URL, schema, table, limit, bus.Op(op))
			} else {
				if op == "" {
					op = string(bus.OpInsert)
				}
				changes, err = parseRows(rows, schema, table, keyCols, bus.Op(op))
			}
			if err != nil {
				return err
			}
			failed := 0
			for i, c := range changes {
				if i > 0 {
					fmt.Fprintln(m.Stdout)
				}
				if !printMapped(m.Stdout, scripts, c) {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("transform test: %d of %d rows failed", failed, len(changes))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&path, "config", "c", "", "path to walsearch.yaml")
	config.AddFlags(f, config.FlagPostgresURL, config.FlagScriptsDir, config.FlagLogLevel)
	f.StringArrayVar(&rows, "row", nil, "a row as a JSON object (repeatable)")
	f.StringSliceVar(&keyCols, "key", []string{"id"}, "with --row: the primary-key columns")
	f.StringVar(&op, "op", "", "operation: insert, update, read or delete (default insert for --row, read for --from-db)")
	f.BoolVar(&fromDB, "from-db", false, "read rows from the table in postgres.url")
	f.IntVar(&limit, "limit", 10, "with --from-db: how many rows")
	return cmd
}

func validOp(op bus.Op) error {
	switch op {
	case bus.OpInsert, bus.OpUpdate, bus.OpRead, bus.OpDelete:
		return nil
	}
	return fmt.Errorf("--op: want insert, update, read or delete, got %q", op)
}

// parseRows builds change events from --row values, decoding numbers the way
// the bus does (exactly).
func parseRows(raw []string, schema, table string, keyCols []string, op bus.Op) ([]*bus.Change, error) {
	if err := validOp(op); err != nil {
		return nil, err
	}
	var out []*bus.Change
	for i, r := range raw {
		dec := json.NewDecoder(strings.NewReader(r))
		dec.UseNumber()
		var row map[string]any
		if err := dec.Decode(&row); err != nil || row == nil {
			return nil, fmt.Errorf("--row %d: want a JSON object: %v", i+1, err)
		}
		c := &bus.Change{Op: op, Schema: schema, Table: table, Row: row, LSN: 1, Pos: uint64(i)}
		for _, k := range keyCols {
			if v, ok := row[k]; ok {
				c.Key = append(c.Key, bus.Column{Name: k, Value: v})
			}
		}
		if op == bus.OpDelete {
			c.Row = nil
		}
		out = append(out, c)
	}
	return out, nil
}

// readTableRows reads up to limit rows of schema.table in primary-key order,
// in text format, converted by capture's codec as a snapshot would.
func readTableRows(ctx context.Context, url, schema, table string, limit int, op bus.Op) ([]*bus.Change, error) {
	if err := validOp(op); err != nil {
		return nil, err
	}
	if url == "" {
		return nil, errors.New("--from-db: postgres.url is not set")
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres %s: %w", bus.RedactURL(url), err)
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{schema, table}.Sanitize()
	var keyCols []string
	rows, err := conn.Query(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = $1::regclass AND i.indisprimary
		ORDER BY array_position(i.indkey::int2[], a.attnum)`, ident)
	if err != nil {
		return nil, fmt.Errorf("read primary key of %s.%s: %w", schema, table, err)
	}
	keyCols, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read primary key of %s.%s: %w", schema, table, err)
	}
	q := "SELECT * FROM " + ident
	if len(keyCols) > 0 {
		q += " ORDER BY " + strings.Join(quoteAll(keyCols), ", ")
	}
	q += fmt.Sprintf(" LIMIT %d", max(limit, 0))
	// The simple protocol returns every value in text form, the form the
	// codec converts for snapshots and pgoutput alike.
	rows, err = conn.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	codec := capture.NewCodec()
	fields := rows.FieldDescriptions()
	var out []*bus.Change
	for rows.Next() {
		row := make(map[string]any, len(fields))
		for i, raw := range rows.RawValues() {
			if raw == nil {
				row[fields[i].Name] = nil
				continue
			}
			row[fields[i].Name] = codec.DecodeText(fields[i].DataTypeOID, string(raw))
		}
		c := &bus.Change{Op: op, Schema: schema, Table: table, Row: row, Pos: uint64(len(out))}
		for _, k := range keyCols {
			c.Key = append(c.Key, bus.Column{Name: k, Value: row[k]})
		}
		// Round-trip through the bus encoding so the script sees exactly
		// what it sees in the pipeline (numbers as json.Number).
		if err := roundTrip(c); err != nil {
			return nil, err
		}
		if op == bus.OpDelete {
			c.Row = nil
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", schema, table, err)
	}
	return out, nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = pgx.Identifier{n}.Sanitize()
	}
	return out
}

func roundTrip(c *bus.Change) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode row: %w", err)
	}
	var back bus.Change
	if err := bus.Decode(data, &back); err != nil {
		return err
	}
	*c = back
	return nil
}

// printMapped prints a change and what the script made of it; it reports
// whether the script succeeded.
func printMapped(w io.Writer, s *transform.Scripts, c *bus.Change) bool {
	in := any(c.Row)
	if c.Op == bus.OpDelete {
		in = c.Key
	}
	fmt.Fprintf(w, "input (%s %s):\n  %s\n", c.Op, bus.DocumentID(c.Key), compactJSON(in))
	docs, err := s.Map(c)
	if err != nil {
		fmt.Fprintf(w, "error:\n  %v\n", err)
		var se *transform.ScriptError
		if errors.As(err, &se) && se.Stack != "" {
			fmt.Fprintf(w, "stack:\n%s\n", indent(strings.TrimRight(se.Stack, "\n")))
		}
		return false
	}
	if len(docs) == 0 {
		fmt.Fprintln(w, "output: nothing (the script kept the document)")
	}
	for _, d := range docs {
		switch d.Op {
		case bus.DocIndex:
			fmt.Fprintf(w, "output: index %s/%s\n  %s\n", d.Index, d.ID, d.Source)
			if len(d.Unchanged) > 0 {
				fmt.Fprintf(w, "  unchanged (kept from the index): %s\n", strings.Join(d.Unchanged, ", "))
			}
		default:
			fmt.Fprintf(w, "output: %s %s/%s\n", d.Op, d.Index, d.ID)
		}
	}
	return true
}

func compactJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var b bytes.Buffer
	if json.Compact(&b, data) != nil {
		return string(data)
	}
	return b.String()
}
