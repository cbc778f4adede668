package conformance

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// response is one decoded REST answer with assertion helpers. Paths are
// dot-separated keys and array indices, e.g. "items.0.index.status" or
// "error.root_cause.0.type"; a key containing a dot cannot be addressed
// this way and is read with lookup on the decoded map instead.
type response struct {
	t      testing.TB
	method string
	path   string
	status int
	header map[string][]string
	raw    []byte
	body   any
}

func (r *response) String() string {
	const max = 2000
	s := string(r.raw)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%s %s → %d %s", r.method, r.path, r.status, s)
}

// wantStatus fails the test unless the status is code.
func (r *response) wantStatus(code int) *response {
	r.t.Helper()
	if r.status != code {
		r.t.Fatalf("want status %d, got %s", code, r)
	}
	return r
}

// wantError checks Elasticsearch's error envelope:
// {"error":{"root_cause":[{"type":…,"reason":…}],"type":…,"reason":…},"status":N}.
func (r *response) wantError(status int, typ, rootType string) *response {
	r.t.Helper()
	r.wantStatus(status)
	r.eq("status", status)
	r.eq("error.type", typ)
	r.eq("error.root_cause.0.type", rootType)
	if s, _ := r.lookup("error.reason"); s == nil || s == "" {
		r.t.Errorf("error.reason missing in %s", r)
	}
	if s, _ := r.lookup("error.root_cause.0.reason"); s == nil || s == "" {
		r.t.Errorf("error.root_cause.0.reason missing in %s", r)
	}
	return r
}

// lookup walks path through the decoded body.
func (r *response) lookup(path string) (any, bool) {
	return lookup(r.body, path)
}

func lookup(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for _, part := range strings.Split(path, ".") {
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[part]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			v = node[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// normalize turns want into the shape encoding/json decodes into, so that
// 5, int64(5) and 5.0 all compare equal to a decoded JSON 5.
func normalize(t testing.TB, want any) any {
	raw, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("encode expected value %#v: %v", want, err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode expected value %s: %v", raw, err)
	}
	return out
}

func jsonString(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(raw)
}

// eq checks that path holds exactly want (compared as JSON values).
func (r *response) eq(path string, want any) *response {
	r.t.Helper()
	got, ok := r.lookup(path)
	if !ok {
		r.t.Errorf("%s: missing, want %s; response %s", path, jsonString(want), r)
		return r
	}
	if w := normalize(r.t, want); !reflect.DeepEqual(got, w) {
		r.t.Errorf("%s = %s, want %s; response %s", path, jsonString(got), jsonString(w), r)
	}
	return r
}

// absent checks that path is not in the body at all.
func (r *response) absent(path string) *response {
	r.t.Helper()
	if got, ok := r.lookup(path); ok {
		r.t.Errorf("%s = %s, want it absent; response %s", path, jsonString(got), r)
	}
	return r
}

// present checks that path exists and is not null.
func (r *response) present(path string) *response {
	r.t.Helper()
	if got, ok := r.lookup(path); !ok || got == nil {
		r.t.Errorf("%s missing or null; response %s", path, r)
	}
	return r
}

// contains checks that the string at path contains sub.
func (r *response) contains(path, sub string) *response {
	r.t.Helper()
	if s := r.str(path); !strings.Contains(s, sub) {
		r.t.Errorf("%s = %q, want it to contain %q; response %s", path, s, sub, r)
	}
	return r
}

// str returns the string at path, failing if it is not a string.
func (r *response) str(path string) string {
	r.t.Helper()
	got, ok := r.lookup(path)
	s, isStr := got.(string)
	if !ok || !isStr {
		r.t.Fatalf("%s = %s, want a string; response %s", path, jsonString(got), r)
	}
	return s
}

// num returns the number at path, failing if it is not a number.
func (r *response) num(path string) float64 {
	r.t.Helper()
	got, ok := r.lookup(path)
	f, isNum := got.(float64)
	if !ok || !isNum {
		r.t.Fatalf("%s = %s, want a number; response %s", path, jsonString(got), r)
	}
	return f
}

// int returns the integer at path.
func (r *response) int(path string) int {
	r.t.Helper()
	f := r.num(path)
	if f != float64(int(f)) {
		r.t.Fatalf("%s = %v, want an integer; response %s", path, f, r)
	}
	return int(f)
}

// list returns the array at path.
func (r *response) list(path string) []any {
	r.t.Helper()
	got, ok := r.lookup(path)
	l, isList := got.([]any)
	if !ok || !isList {
		r.t.Fatalf("%s = %s, want an array; response %s", path, jsonString(got), r)
	}
	return l
}

// length checks the length of the array at path.
func (r *response) length(path string, n int) *response {
	r.t.Helper()
	if l := r.list(path); len(l) != n {
		r.t.Errorf("len(%s) = %d, want %d; response %s", path, len(l), n, r)
	}
	return r
}

// ids returns hits.hits.*._id in order.
func (r *response) ids() []string {
	r.t.Helper()
	hits := r.list("hits.hits")
	out := make([]string, 0, len(hits))
	for i := range hits {
		out = append(out, r.str(fmt.Sprintf("hits.hits.%d._id", i)))
	}
	return out
}

// wantIDs checks the hit ids in order.
func wantIDs(t testing.TB, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hit ids = %q, want %q", got, want)
	}
}

// wantIDSet checks the hit ids ignoring order.
func wantIDSet(t testing.TB, got []string, want ...string) {
	t.Helper()
	g := append([]string{}, got...)
	w := append([]string{}, want...)
	sort.Strings(g)
	sort.Strings(w)
	if len(g) == 0 && len(w) == 0 {
		return
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("hit ids = %q, want (any order) %q", got, want)
	}
}
