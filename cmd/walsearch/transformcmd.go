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

// readTableRows reads up to limit rows of schema.table in key order with
// capture's row reader, so that values (enums, domains, numeric, timestamps,
// jsonb, ...) are exactly what the pipeline hands the script.
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
	rr, err := capture.NewRowReader(ctx, conn)
	if err != nil {
		return nil, err
	}
	t, err := rr.Table(ctx, schema, table)
	if err != nil {
		return nil, err
	}
	var out []*bus.Change
	if limit <= 0 {
		return nil, nil
	}
	errEnough := errors.New("enough rows")
	_, err = rr.ReadChunk(ctx, t, nil, limit, func(r capture.Row) error {
		if len(out) >= limit {
			return errEnough // a table without a unique key is read whole
		}
		c := r.Change
		c.Op, c.Pos = op, uint64(len(out))
		if op == bus.OpDelete {
			c.Row = nil
		}
		out = append(out, c)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return out, nil
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
