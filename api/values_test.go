package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheckValue(t *testing.T) {
	long := fieldInfo{Type: "long", Exact: "f"}
	dbl := fieldInfo{Type: "double", Exact: "f"}
	flt := fieldInfo{Type: "float", Exact: "f"}
	ulong := fieldInfo{Type: "unsigned_long", Exact: "f"}
	date := fieldInfo{Type: "date", Exact: "f"}
	epochOnly := fieldInfo{Type: "date", Exact: "f", Format: "epoch_millis"}
	isoOnly := fieldInfo{Type: "date", Exact: "f", Format: "strict_date_optional_time"}
	custom := fieldInfo{Type: "date", Exact: "f", Format: "dd/MM/yyyy"}
	boolean := fieldInfo{Type: "boolean", Exact: "f"}
	kw := fieldInfo{Type: "keyword", Exact: "f"}
	n := func(s string) json.Number { return json.Number(s) }
	for _, tc := range []struct {
		fi fieldInfo
		v  any
		ok bool
	}{
		{long, n("1"), true},
		{long, n("-9223372036854775808"), true},
		{long, n("9223372036854775807"), true},
		{long, n("9223372036854775808"), false},
		{long, n("1.5"), true}, // the engine matches nothing, as Elasticsearch does
		{long, n("1e20"), false},
		{long, "42", true},
		{long, " 42 ", true},
		{long, "abc", false},
		{long, "2024-01-01", false},
		{long, true, false},
		{ulong, n("18446744073709551615"), true},
		{ulong, n("-1"), false},
		{dbl, n("1e308"), true},
		{dbl, n("1e400"), false},
		{dbl, n("-1e400"), false},
		{dbl, "1e400", false},
		{dbl, "NaN", false},
		{dbl, "Inf", false},
		{flt, n("1e39"), false},
		{flt, n("3e38"), true},
		{boolean, true, true},
		{boolean, "false", true},
		{boolean, "yes", false},
		{boolean, n("1"), false},
		{date, "2024", true},
		{date, "2024-01", true},
		{date, "2024-01-31", true},
		{date, "2024-01-31T12", true},
		{date, "2024-01-31T12:30:59.123456Z", true},
		{date, "2024-01-31T12:30:59+02:00", true},
		{date, "2024-01-31T12:30:59-0530", true},
		{date, "2024-13-01", false},
		{date, "2024-01-31 12:30", false},
		{date, "yesterday", false},
		{date, "now", true},
		{date, "now-1d/d", true},
		{date, "now+1h-30m", true},
		{date, "now-1x", false},
		{date, "now-", false},
		{date, "2024-01-01||+1M/d", true},
		{date, "2024-01-01||bad", false},
		{date, n("1704067200000"), true},
		{date, "1704067200000", true},
		{date, true, false},
		{epochOnly, "2024-01-01", false},
		{epochOnly, n("1704067200000"), true},
		{isoOnly, n("1704067200000"), false},
		{isoOnly, n("2024"), true},
		{custom, "anything", true}, // left to the engine
		{kw, n("5"), true},
		{kw, true, true},
		{fieldInfo{Exact: "f"}, "x", true}, // a column of unknown type
	} {
		err := checkValue("query_fields.f", tc.fi, tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("%s %#v: err = %v, want ok=%v", tc.fi.Type+"/"+tc.fi.Format, tc.v, err, tc.ok)
			continue
		}
		var ae *Error
		if err != nil && (!errors.As(err, &ae) || ae.Status != 400 || !strings.HasPrefix(ae.Message, "query_fields.f: ") || !strings.Contains(ae.Message, tc.fi.Type)) {
			t.Errorf("%s %#v: %v does not name the field and its type", tc.fi.Type, tc.v, err)
		}
	}
}

func FuzzCheckValue(f *testing.F) {
	for _, s := range []string{`1`, `"abc"`, `1e400`, `true`, `"now-1d/d"`, `"2024-01-31T12:00:00Z"`, `"2024-01-01||+1M"`, `-9223372036854775809`} {
		f.Add(s)
	}
	types := []fieldInfo{{Type: "long"}, {Type: "integer"}, {Type: "unsigned_long"}, {Type: "double"}, {Type: "half_float"},
		{Type: "date"}, {Type: "date", Format: "epoch_second"}, {Type: "boolean"}, {Type: "keyword"}}
	f.Fuzz(func(t *testing.T, raw string) {
		fl, err := parseFilters(map[string]json.RawMessage{"f": json.RawMessage(raw)})
		if err != nil || fl[0].Kind != filterExact {
			return
		}
		for _, fi := range types {
			err := checkValue("query_fields.f", fi, fl[0].Values[0])
			if err == nil {
				continue
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "query_fields.f") {
				t.Fatalf("%s as %s: %v is not a 400 naming the field", raw, fi.Type, err)
			}
			if strings.Contains(ae.Message, raw) && len(raw) > 8 {
				t.Fatalf("message echoes the value: %s", ae.Message)
			}
		}
	})
}
