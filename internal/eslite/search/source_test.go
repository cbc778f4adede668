package search

import "testing"

// TestSourceFilterMatchesElasticsearch: the _source filter follows
// Elasticsearch's rules — a pattern names a field and all under it, '*'
// crosses dots and is the only special character, excludes win, and
// objects inside arrays are filtered like their array's field.
func TestSourceFilterMatchesElasticsearch(t *testing.T) {
	for _, tc := range []struct {
		name               string
		includes, excludes []string
		in, want           string
	}{
		{"a field and all under it", []string{"a"}, nil, `{"a":{"b":1,"c":{"d":2}},"x":1}`, `{"a":{"b":1,"c":{"d":2}}}`},
		{"a wildcard below a field", []string{"a.*"}, nil, `{"a":{"b":1,"c":{"d":2}},"x":1}`, `{"a":{"b":1,"c":{"d":2}}}`},
		{"a wildcard crosses dots", []string{"*.d"}, nil, `{"a":{"c":{"d":2,"e":3}},"d":1}`, `{"a":{"c":{"d":2}}}`},
		{"a name is not a prefix", []string{"user"}, nil, `{"user":1,"username":2}`, `{"user":1}`},
		{"? is no wildcard", []string{"a?"}, nil, `{"a?":1,"ab":2}`, `{"a?":1}`},
		{"objects in arrays", []string{"items.sku"}, nil, `{"items":[{"sku":"x","qty":1},{"sku":"y"}],"n":1}`, `{"items":[{"sku":"x"},{"sku":"y"}]}`},
		{"excludes win", []string{"a"}, []string{"a.secret"}, `{"a":{"secret":1,"ok":2}}`, `{"a":{"ok":2}}`},
		{"an exclude wildcard", nil, []string{"*_hash"}, `{"password_hash":"x","name":"n"}`, `{"name":"n"}`},
		{"no pattern: as stored", nil, nil, `{"b": 1, "a" :2}`, `{"b": 1, "a" :2}`},
	} {
		got := string(NewSourceFilter(true, tc.includes, tc.excludes).Apply([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("%s: includes %v excludes %v: %s, want %s", tc.name, tc.includes, tc.excludes, got, tc.want)
		}
	}
}
