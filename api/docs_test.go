package api_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
)

type docExample struct {
	method, path string
	headers      []string
	body         string
	response     string // the documented response, "" when none
}

// docExamples reads every ```http block of the doc and the ```json block
// that follows it.
func docExamples(t *testing.T, path string) []docExample {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```(\\w+)\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	var out []docExample
	for i, b := range blocks {
		if b[1] != "http" {
			continue
		}
		lines := strings.Split(strings.TrimSpace(b[2]), "\n")
		method, target, _ := strings.Cut(lines[0], " ")
		ex := docExample{method: method, path: target}
		j := 1
		for ; j < len(lines) && strings.Contains(lines[j], ": ") && !strings.HasPrefix(lines[j], "{"); j++ {
			name, val, _ := strings.Cut(lines[j], ": ")
			ex.headers = append(ex.headers, name, val)
		}
		ex.body = strings.Join(lines[j:], "\n")
		if i+1 < len(blocks) && blocks[i+1][1] == "json" {
			ex.response = blocks[i+1][2]
		}
		out = append(out, ex)
	}
	return out
}

// shape describes a JSON value by its object keys, recursively; arrays by
// their first element.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = shape(e)
		}
		return m
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{shape(x[0])}
	case nil:
		return "null"
	}
	return "scalar"
}

// sameShape compares shapes; an empty array matches any array, and a
// documented null matches a string (next_cursor).
func sameShape(doc, got any, at string) string {
	switch d := doc.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return at + ": want an object"
		}
		var dk, gk []string
		for k := range d {
			dk = append(dk, k)
		}
		for k := range g {
			gk = append(gk, k)
		}
		slices.Sort(dk)
		slices.Sort(gk)
		if !slices.Equal(dk, gk) {
			return at + ": keys " + strings.Join(gk, ",") + ", documented " + strings.Join(dk, ",")
		}
		for k := range d {
			if p := sameShape(d[k], g[k], at+"."+k); p != "" {
				return p
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			return at + ": want an array"
		}
		if len(d) > 0 && len(g) > 0 {
			return sameShape(d[0], g[0], at+"[0]")
		}
	default:
		if _, isObj := got.(map[string]any); isObj {
			return at + ": documented as a scalar"
		}
	}
	return ""
}

func TestDocumentedExamplesRunAgainstALiveServer(t *testing.T) {
	t.Parallel()
	// The pipeline as it is in the documented /status example.
	pipe := api.PipelineFuncs{
		IndicesFunc: func(context.Context) ([]api.ManagedIndex, error) { return []api.ManagedIndex{usersIndex()}, nil },
		StatusFunc: func(context.Context) (api.PipelineStatus, error) {
			lsn := bus.LSN(0x16B3748)
			return api.PipelineStatus{
				Capture:     api.CaptureStatus{Phase: "streaming"},
				Sink:        api.SinkStatus{Indexed: 30, DeadLetters: 2, AppliedLSN: lsn, BatchSize: 1000},
				Tables:      []api.TableProgress{{Schema: "public", Table: "users", Index: "users", Snapshot: "done", SnapshotRows: 30}},
				DeadLetters: 2, DeadLettersByTable: map[string]uint64{"public.users": 2},
				Backlog: map[string]uint64{"sink": 0, "transform": 0}, WALLSN: lsn,
			}, nil
		},
	}
	s := newServer(t, serverOpts{cfg: hiddenSecret, pipe: pipe})
	seedUsers(t, s.es, 30)
	examples := docExamples(t, "../docs/search-api.md")
	if len(examples) < 8 {
		t.Fatalf("found %d examples in docs/search-api.md", len(examples))
	}
	for _, ex := range examples {
		r := s.do(t, ex.method, ex.path, ex.body, ex.headers...)
		if r.code != 200 {
			t.Errorf("%s %s: %d %s", ex.method, ex.path, r.code, r.body)
			continue
		}
		if ex.response == "" {
			continue
		}
		var doc, got any
		if err := json.Unmarshal([]byte(ex.response), &doc); err != nil {
			t.Errorf("%s %s: documented response is not JSON: %v", ex.method, ex.path, err)
			continue
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if p := sameShape(shape(doc), shape(got), "$"); p != "" {
			t.Errorf("%s %s: %s\ngot %s", ex.method, ex.path, p, r.body)
		}
	}
}

func TestOpenAPIDescribesExactlyTheRegisteredRoutes(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOpts{})
	r := s.do(t, "GET", "/openapi.json", "")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	r.decode(t, &doc)
	if r.code != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi: %d %.200s", r.code, r.body)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	var routed []string
	for _, rt := range s.srv.Routes() {
		routed = append(routed, regexp.MustCompile(`:(\w+)`).ReplaceAllString(rt, "{$1}"))
	}
	slices.Sort(documented)
	slices.Sort(routed)
	routed = slices.Compact(routed)
	if !slices.Equal(documented, routed) {
		t.Fatalf("OpenAPI paths %v\nroutes        %v", documented, routed)
	}
	// Every documented example path is a route too.
	for _, ex := range docExamples(t, "../docs/search-api.md") {
		p, _, _ := strings.Cut(ex.path, "?")
		found := false
		for _, rt := range routed {
			m, pattern, _ := strings.Cut(rt, " ")
			re := "^" + regexp.MustCompile(`\\\{\w+\\\}`).ReplaceAllString(regexp.QuoteMeta(pattern), `[^/]+`) + "$"
			if m == ex.method && regexp.MustCompile(re).MatchString(p) {
				found = true
			}
		}
		if !found {
			t.Errorf("documented %s %s is not a route", ex.method, ex.path)
		}
	}
}
