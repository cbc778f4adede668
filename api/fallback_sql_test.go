package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// quotedIdent matches a double-quoted SQL identifier.
var quotedIdent = regexp.MustCompile(`"(?:[^"]|"")*"`)

// FuzzFallbackSQL checks the SQL the PostgreSQL fallback builds from any
// accepted request: the client's values never reach the SQL text (only the
// parameters), every identifier is the table or one of its visible columns,
// and the placeholders are exactly the parameters plus LIMIT and OFFSET.
func FuzzFallbackSQL(f *testing.F) {
	for _, s := range []string{
		`{"index":"users","query_fields":{"status":"active","age":{"gte":30,"lt":45}},"fields":["id","name"],"sort_by":{"age":"desc"}}`,
		`{"index":"users","query_fields":{"id":[1,2,"3"],"bio":null},"exclude_fields":["bio"],"page":3,"page_size":7}`,
		`{"index":"users","query_fields":{"name":"x'); DROP TABLE users; --"}}`,
		`{"index":"users","query_fields":{"secret":"hunter2"}}`,
		`{"index":"users","fields":["we\"ird"],"sort_by":{"we\"ird":"asc"}}`,
		`{"index":"users","q":"text"}`,
	} {
		f.Add([]byte(s))
	}
	cols := []string{"id", "name", "status", "age", "secret", "bio", `we"ird`}
	hidden := []string{"secret"}
	mi := ManagedIndex{Name: "users", Schema: "public", Table: "users", Key: []string{"id"}, Columns: cols}
	v := &indexView{name: "users", fields: map[string]fieldInfo{}, hidden: hidden, key: []string{"id"}, managed: mi, columnsOnly: true}
	for name, fi := range columnFields(cols) {
		if !isHidden(hidden, name) {
			v.fields[name] = fi
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseSearchRequest(body)
		if err != nil {
			return
		}
		_, selected, err := buildSource(v, req.Fields, req.ExcludeFields)
		if err != nil {
			return
		}
		stmt, ok := fallbackSQL(v, req, selected)
		if !ok {
			return
		}
		// The same request with every value replaced builds the same SQL.
		blank := *req
		blank.filters = make([]filter, len(req.filters))
		for i, fl := range req.filters {
			b := filter{Field: fl.Field, Kind: fl.Kind}
			for range fl.Values {
				b.Values = append(b.Values, "v")
			}
			if fl.Range != nil {
				b.Range = map[string]any{}
				for op := range fl.Range {
					b.Range[op] = json.Number("0")
				}
			}
			blank.filters[i] = b
		}
		again, ok := fallbackSQL(v, &blank, selected)
		if !ok || again.rows != stmt.rows || again.count != stmt.count {
			t.Fatalf("the SQL depends on the values:\n%s\n%s", stmt.rows, again.rows)
		}
		for _, sql := range []string{stmt.rows, stmt.count} {
			for _, id := range quotedIdent.FindAllString(sql, -1) {
				name := strings.ReplaceAll(id[1:len(id)-1], `""`, `"`)
				if name == mi.Schema || name == mi.Table {
					continue
				}
				if !slices.Contains(cols, name) || isHidden(hidden, name) {
					t.Fatalf("identifier %s is not a visible column: %s", id, sql)
				}
			}
		}
		n := len(stmt.args)
		if !strings.Contains(stmt.rows, fmt.Sprintf("LIMIT $%d OFFSET $%d", n+1, n+2)) ||
			strings.Contains(stmt.rows, fmt.Sprintf("$%d", n+3)) || strings.Contains(stmt.count, fmt.Sprintf("$%d", n+1)) {
			t.Fatalf("placeholders do not match %d parameters: %s | %s", n, stmt.count, stmt.rows)
		}
	})
}
