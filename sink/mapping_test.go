package sink_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/sink"
)

// hits counts the documents of index matching query.
func (e *env) hits(index, query string) int64 {
	e.t.Helper()
	ctx := context.Background()
	res, err := esapi.IndicesRefreshRequest{Index: []string{index}}.Do(ctx, e.es)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	res, err = esapi.CountRequest{Index: []string{index}, Body: strings.NewReader(`{"query":` + query + `}`)}.Do(ctx, e.es)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var c struct {
		Count int64 `json:"count"`
	}
	if err := json.NewDecoder(res.Body).Decode(&c); err != nil || res.StatusCode != 200 {
		e.t.Fatalf("count %s %s: HTTP %d %v", index, query, res.StatusCode, err)
	}
	return c.Count
}

// fieldType returns the type index maps field to, or "".
func (e *env) fieldType(index, field string) string {
	e.t.Helper()
	_, m := e.getJSON(esapi.IndicesGetMappingRequest{Index: []string{index}})
	for _, im := range m {
		props, _ := im.(map[string]any)["mappings"].(map[string]any)["properties"].(map[string]any)
		if f, ok := props[field].(map[string]any); ok {
			typ, _ := f["type"].(string)
			if typ == "" && f["properties"] != nil {
				typ = "object"
			}
			return typ
		}
	}
	return ""
}

func (e *env) putSchema(ts *bus.TableSchema) {
	e.t.Helper()
	ts.UpdatedAt = time.Time{}
	if err := bus.PutTableSchema(context.Background(), e.bus.State(), ts); err != nil {
		e.t.Fatal(err)
	}
}

// TestSinkIndexesEveryCommonJSONShape: jsonb columns holding arrays of
// scalars, scalars, objects and arrays of objects are indexed and
// searchable; a value no mapping can hold (an array mixing objects and
// numbers, or a shape other than the one the column was mapped with) is
// dead-lettered with the engine's reason.
func TestSinkIndexesEveryCommonJSONShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cols := []bus.ColumnSchema{{Name: "id", Type: "bigint"}}
	for _, c := range []string{"tags", "label", "count", "attrs", "items", "mixed", "flip"} {
		cols = append(cols, bus.ColumnSchema{Name: c, Type: "jsonb"})
	}
	e.putSchema(&bus.TableSchema{Schema: "public", Table: "users", Key: []string{"id"}, Columns: cols})
	cfg := sink.DefaultConfig()
	cfg.Schemas = e.bus.State()
	s := e.start(cfg)
	e.publish(
		idx("1", 100, `{"id":1,"tags":["red","blue"],"label":"hello world","count":5,"attrs":{"color":"green","size":3},"items":[{"sku":"a1"},{"sku":"b2"}],"flip":"plain"}`),
		idx("2", 100, `{"id":2,"tags":"red","label":"goodbye","count":7,"attrs":{"color":"blue"},"items":{"sku":"c3"},"flip":"again"}`),
	)
	// Documents of different rows may be written in any order: the shape
	// that decides the mapping is written first.
	e.waitFor("the first documents", func() bool {
		_, _, one := e.get("users", "1")
		_, _, two := e.get("users", "2")
		return one && two || s.Status().DeadLetters > 0
	})
	if n := s.Status().DeadLetters; n != 0 {
		t.Fatalf("%d dead letters among arrays of scalars, scalars, objects and arrays of objects: %v", n, e.deadLetterReasons(int(n)))
	}
	e.publish(
		idx("3", 100, `{"id":3,"mixed":[{"a":1},2]}`),
		idx("4", 100, `{"id":4,"flip":{"now":"an object"}}`),
	)
	e.waitFor("everything settled", func() bool { _, un := e.consumerState(); return un == 0 })
	for id, want := range map[string]bool{"1": true, "2": true, "3": false, "4": false} {
		if _, _, ok := e.get("users", id); ok != want {
			t.Errorf("document %s indexed = %v, want %v", id, ok, want)
		}
	}
	if n := s.Status().DeadLetters; n != 2 {
		t.Fatalf("%d dead letters, want 2 (documents 3 and 4)", n)
	}
	for _, r := range e.deadLetterReasons(2) {
		if !strings.Contains(r, "parsing_exception") {
			t.Errorf("dead letter reason does not give the engine's reason: %s", r)
		}
	}
	for query, want := range map[string]int64{
		`{"term":{"tags.keyword":"red"}}`:          2,
		`{"term":{"tags.keyword":"blue"}}`:         1,
		`{"match":{"label":"hello"}}`:              1,
		`{"term":{"count":7}}`:                     1,
		`{"range":{"count":{"gte":5}}}`:            2,
		`{"term":{"attrs.color.keyword":"green"}}`: 1,
		`{"term":{"attrs.size":3}}`:                1,
		`{"term":{"items.sku.keyword":"b2"}}`:      1,
		`{"term":{"items.sku.keyword":"c3"}}`:      1,
	} {
		if got := e.hits("users", query); got != want {
			t.Errorf("%s: %d hits, want %d", query, got, want)
		}
	}
}

// TestSinkMapsAnAddedColumnBeforeWritingIt: a document carrying a column
// added a moment ago (the periodic recheck far off) is written only after
// the column is mapped from its type: a uuid is a keyword, not the text
// dynamic mapping would pick, and a numeric is double like every other
// numeric column, not float. A script's fractional field, which no column
// describes, is double too (the dynamic template).
func TestSinkMapsAnAddedColumnBeforeWritingIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ts := &bus.TableSchema{Schema: "public", Table: "users", Key: []string{"id"}, Columns: []bus.ColumnSchema{
		{Name: "id", Type: "bigint"}, {Name: "name", Type: "text"}}}
	e.putSchema(ts)
	cfg := sink.DefaultConfig()
	cfg.Schemas = e.bus.State()
	cfg.SchemaRecheck = time.Hour
	e.start(cfg)
	// A field a transform script adds is not a column: it is looked up once.
	e.publish(idx("1", 100, `{"id":1,"name":"ann","script_score":0.5}`))
	e.waitFor("first document", func() bool { _, _, ok := e.get("users", "1"); return ok })

	ts.Columns = append(ts.Columns, bus.ColumnSchema{Name: "price", Type: "numeric"}, bus.ColumnSchema{Name: "ref", Type: "uuid"})
	e.putSchema(ts)
	e.publish(idx("2", 101, `{"id":2,"name":"bob","script_score":1.5,"price":2.5,"ref":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}`))
	e.waitFor("second document", func() bool { _, _, ok := e.get("users", "2"); return ok })
	for field, want := range map[string]string{"price": "double", "ref": "keyword", "script_score": "double"} {
		if got := e.fieldType("users", field); got != want {
			t.Errorf("%s mapped as %q, want %q", field, got, want)
		}
	}
}

// TestSinkMapsColumnsAddedWhileItWasStopped: the index exists from an earlier
// run, and the stored schema gained a column meanwhile: the sink maps it from
// its type when it opens the index, before writing anything.
func TestSinkMapsColumnsAddedWhileItWasStopped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, err := esapi.IndicesCreateRequest{Index: "users_v1", Body: strings.NewReader(
		`{"aliases":{"users":{"is_write_index":true}},"mappings":{"properties":{"id":{"type":"long"}}}}`)}.Do(context.Background(), e.es)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("create index: %v %v", res, err)
	}
	res.Body.Close()
	e.putSchema(&bus.TableSchema{Schema: "public", Table: "users", Key: []string{"id"}, Columns: []bus.ColumnSchema{
		{Name: "id", Type: "bigint"}, {Name: "ratio", Type: "double precision"}, {Name: "ref", Type: "uuid"}}})
	cfg := sink.DefaultConfig()
	cfg.Schemas = e.bus.State()
	cfg.SchemaRecheck = time.Hour
	e.start(cfg)
	e.publish(idx("1", 100, `{"id":1,"ratio":0.25,"ref":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}`))
	e.waitFor("document", func() bool { _, _, ok := e.get("users", "1"); return ok })
	for field, want := range map[string]string{"ratio": "double", "ref": "keyword"} {
		if got := e.fieldType("users", field); got != want {
			t.Errorf("%s mapped as %q, want %q", field, got, want)
		}
	}
}
