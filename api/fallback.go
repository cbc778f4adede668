package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Connector opens a PostgreSQL connection for the fallback.
type Connector func(ctx context.Context) (*pgx.Conn, error)

// fallbackPoolSize is how many idle connections the fallback keeps.
const fallbackPoolSize = 4

// pgFallback answers simple searches (query_fields filters, fields,
// sort_by, paging; no q, facets or highlight) from PostgreSQL while the
// search engine is down. Identifiers come from the table's known columns and
// are quoted; every value is a query parameter.
type pgFallback struct {
	connect Connector
	log     *slog.Logger
	idle    chan *pgx.Conn
}

func newPGFallback(connect Connector, log *slog.Logger) *pgFallback {
	return &pgFallback{connect: connect, log: log, idle: make(chan *pgx.Conn, fallbackPoolSize)}
}

func (f *pgFallback) get(ctx context.Context) (*pgx.Conn, error) {
	select {
	case c := <-f.idle:
		if !c.IsClosed() {
			return c, nil
		}
	default:
	}
	return f.connect(ctx)
}

func (f *pgFallback) put(c *pgx.Conn) {
	if c.IsClosed() {
		return
	}
	select {
	case f.idle <- c:
	default:
		_ = c.Close(context.Background())
	}
}

func (f *pgFallback) close() {
	for {
		select {
		case c := <-f.idle:
			_ = c.Close(context.Background())
		default:
			return
		}
	}
}

// ping checks PostgreSQL for /health.
func (f *pgFallback) ping(ctx context.Context) error {
	c, err := f.get(ctx)
	if err != nil {
		return err
	}
	defer f.put(c)
	return c.Ping(ctx)
}

// search answers req from PostgreSQL; ok is false when req needs the
// search engine (full text, facets, highlights, or fields the table lacks).
func (f *pgFallback) search(ctx context.Context, v *indexView, req *searchRequest, selected []string) (searchResponse, bool, error) {
	stmt, ok := fallbackSQL(v, req, selected)
	if !ok {
		return searchResponse{}, false, nil
	}
	conn, err := f.get(ctx)
	if err != nil {
		f.log.Warn("fallback: connect to postgres", "error", err)
		return searchResponse{}, false, errEngineDown
	}
	defer f.put(conn)
	var total int64
	if err := conn.QueryRow(ctx, stmt.count, stmt.args...).Scan(&total); err != nil {
		return searchResponse{}, false, f.queryError(v.name, err)
	}
	rows, err := conn.Query(ctx, stmt.rows, append(stmt.args, req.PageSize, (req.Page-1)*req.PageSize)...)
	if err != nil {
		return searchResponse{}, false, f.queryError(v.name, err)
	}
	data, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (json.RawMessage, error) {
		var b []byte
		err := r.Scan(&b)
		return json.RawMessage(b), err
	})
	if err != nil {
		f.log.Warn("fallback: read rows", "index", v.name, "error", err)
		return searchResponse{}, false, errEngineDown
	}
	pages := (total + int64(req.PageSize) - 1) / int64(req.PageSize)
	if data == nil {
		data = []json.RawMessage{}
	}
	return searchResponse{Data: data, Meta: searchMeta{
		TotalRecords: total, PageSize: req.PageSize, CurrentPage: req.Page, TotalPages: pages,
		HasNext: int64(req.Page) < pages, HasPrevious: req.Page > 1, SelectedFields: selected, Source: FallbackPostgres,
	}}, true, nil
}

// queryError maps a failed fallback query to the answer: a value PostgreSQL
// cannot compare with its column (SQLSTATE class 22, data exception) is the
// client's 400; anything else means PostgreSQL cannot answer either.
func (f *pgFallback) queryError(index string, err error) error {
	f.log.Warn("fallback: query postgres", "index", index, "error", err)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22") {
		return badRequest("query_fields: a value does not fit its column while searches are answered from PostgreSQL")
	}
	return errEngineDown
}

// fallbackCanAnswer reports whether req is simple enough for the fallback:
// no full text, facets or highlights.
func fallbackCanAnswer(req *searchRequest) bool {
	return req.Q == "" && len(req.Facets) == 0 && !req.Highlight
}

type sqlStatement struct {
	count, rows string
	args        []any
}

// fallbackSQL builds parameterised SQL for req, or reports that it cannot.
func fallbackSQL(v *indexView, req *searchRequest, selected []string) (sqlStatement, bool) {
	mi := v.managed
	if !fallbackCanAnswer(req) || mi.Table == "" || len(mi.Columns) == 0 {
		return sqlStatement{}, false
	}
	col := func(name string) (string, bool) {
		if !slices.Contains(mi.Columns, name) || isHidden(v.hidden, name) {
			return "", false
		}
		return pgx.Identifier{name}.Sanitize(), true
	}
	var cols []string
	for _, f := range selected {
		c, ok := col(f)
		if !ok {
			return sqlStatement{}, false
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 {
		return sqlStatement{}, false
	}
	var where []string
	var args []any
	param := func(v any) string {
		if n, ok := v.(json.Number); ok {
			v = n.String()
		}
		args = append(args, fmt.Sprint(v))
		return fmt.Sprintf("$%d", len(args))
	}
	for _, fl := range req.filters {
		c, ok := col(fl.Field)
		if !ok {
			return sqlStatement{}, false
		}
		switch fl.Kind {
		case filterMissing:
			where = append(where, c+" IS NULL")
		case filterExact:
			where = append(where, c+"::text = "+param(fl.Values[0]))
		case filterAnyOf:
			ps := make([]string, len(fl.Values))
			for i, val := range fl.Values {
				ps[i] = param(val)
			}
			where = append(where, c+"::text IN ("+strings.Join(ps, ", ")+")")
		case filterRange:
			for _, op := range []string{"gte", "gt", "lte", "lt"} {
				if b, ok := fl.Range[op]; ok {
					sym := map[string]string{"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}[op]
					// The parameter takes the column's type, so the comparison is typed.
					where = append(where, c+" "+sym+" "+param(b))
				}
			}
		}
	}
	var order []string
	for _, sf := range req.SortBy {
		c, ok := col(sf.Field)
		if !ok {
			return sqlStatement{}, false
		}
		order = append(order, c+" "+strings.ToUpper(sf.Order))
	}
	for _, k := range v.key {
		if c, ok := col(k); ok {
			order = append(order, c+" ASC")
		}
	}
	from := pgx.Identifier{mi.Schema, mi.Table}.Sanitize()
	w := ""
	if len(where) > 0 {
		w = " WHERE " + strings.Join(where, " AND ")
	}
	o := ""
	if len(order) > 0 {
		o = " ORDER BY " + strings.Join(order, ", ")
	}
	n := len(args)
	return sqlStatement{
		count: "SELECT count(*) FROM " + from + w,
		rows: fmt.Sprintf("SELECT to_jsonb(t) FROM (SELECT %s FROM %s%s%s LIMIT $%d OFFSET $%d) t",
			strings.Join(cols, ", "), from, w, o, n+1, n+2),
		args: args,
	}, true
}
