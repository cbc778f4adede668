package eslite

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMsearch(t *testing.T) {
	for _, tc := range []struct {
		name, body, def string
		want            []msearchItem
		wantErr         string
	}{
		{name: "pairs", body: "{\"index\":\"a\"}\n{\"size\":1}\n{}\n{}\n", def: "d",
			want: []msearchItem{{expr: "a", body: []byte(`{"size":1}`)}, {expr: "d", body: []byte(`{}`)}}},
		{name: "empty header line", body: "\n{\"size\":2}\n", def: "d",
			want: []msearchItem{{expr: "d", body: []byte(`{"size":2}`)}}},
		{name: "index list and options", body: "{\"index\":[\"a\",\"b\"],\"ignore_unavailable\":true}\n{}\n",
			want: []msearchItem{{expr: "a,b", body: []byte(`{}`)}}},
		{name: "no trailing newline", body: "{}\n{\"size\":3}",
			want: []msearchItem{{expr: "", body: []byte(`{"size":3}`)}}},
		{name: "header without body is dropped", body: "{}\n{}\n{\"index\":\"x\"}\n",
			want: []msearchItem{{expr: "", body: []byte(`{}`)}}},
		{name: "CRLF", body: "{\"index\":\"a\"}\r\n{}\r\n",
			want: []msearchItem{{expr: "a", body: []byte(`{}`)}}},
		{name: "unknown header key", body: "{\"bogus\":1}\n{}\n", wantErr: "key [bogus] is not supported in the metadata section"},
		{name: "malformed header", body: "{\n{}\n", wantErr: "x_content_parse_exception"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMsearch([]byte(tc.body), tc.def)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMsearch: %v", err)
			}
			for i := range got {
				got[i].params = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseMsearch(f *testing.F) {
	f.Add([]byte("{\"index\":\"a\"}\n{\"size\":1}\n"), "d")
	f.Add([]byte("\n{}\n{}"), "")
	f.Add([]byte("{\"index\":[\"a\"],\"routing\":1}\n{\"query\":{}}\n"), "x")
	f.Fuzz(func(t *testing.T, body []byte, def string) {
		items, err := parseMsearch(body, def)
		if err != nil {
			return
		}
		if len(items) > strings.Count(string(body), "\n")/2+1 {
			t.Fatalf("%d items from %d lines", len(items), strings.Count(string(body), "\n")+1)
		}
	})
}

func TestContextIDRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		kind contextKind
		num  int64
	}{{kindScroll, 1}, {kindPIT, 1}, {kindScroll, 1 << 40}, {kindPIT, 0}} {
		id := contextID(tc.kind, tc.num)
		if got, ok := parseContextID(tc.kind, id); !ok || got != tc.num {
			t.Errorf("parseContextID(%q) = %d, %v; want %d", id, got, ok, tc.num)
		}
		other := kindPIT
		if tc.kind == kindPIT {
			other = kindScroll
		}
		if _, ok := parseContextID(other, id); ok {
			t.Errorf("a %v id parsed as the other kind", tc.kind)
		}
	}
	for _, bad := range []string{"", "not-an-id", "DXF1ZXJ5QW5kRmV0Y2gBAAAAAAAAAD4WYm9laVYtZndUQlNsdDcwakFMNjU1QQ=="} {
		if _, ok := parseContextID(kindScroll, bad); ok {
			t.Errorf("parseContextID(%q) accepted a foreign id", bad)
		}
	}
}

func FuzzParseContextID(f *testing.F) {
	f.Add(contextID(kindScroll, 7))
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, id string) {
		for _, k := range []contextKind{kindScroll, kindPIT} {
			if n, ok := parseContextID(k, id); ok {
				if _, ok2 := parseContextID(k, contextID(k, n)); !ok2 {
					t.Fatalf("id for %d does not parse back", n)
				}
			}
		}
	})
}
