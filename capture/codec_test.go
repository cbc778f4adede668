package capture

import (
	"github.com/walsearch/walsearch/bus"

	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestDecodeText(t *testing.T) {
	c := NewCodec()
	tests := []struct {
		name string
		oid  uint32
		text string
		want any
	}{
		{"int2", oidInt2, "-32768", int64(-32768)},
		{"int4", oidInt4, "42", int64(42)},
		{"int8", oidInt8, "9223372036854775807", int64(9223372036854775807)},
		{"oid", oidOID, "16384", int64(16384)},
		{"numeric exact", oidNumeric, "12.50", json.Number("12.50")},
		{"numeric integer", oidNumeric, "-7", json.Number("-7")},
		{"numeric decimal fraction", oidNumeric, "0.1", json.Number("0.1")},
		{"numeric too precise", oidNumeric, "3.14159265358979323846264338327950288", "3.14159265358979323846264338327950288"},
		{"numeric big integer", oidNumeric, "123456789012345678901234567890", "123456789012345678901234567890"},
		{"numeric 2^53+1", oidNumeric, "9007199254740993", "9007199254740993"},
		{"numeric NaN", oidNumeric, "NaN", nil},
		{"numeric Infinity", oidNumeric, "Infinity", nil},
		{"numeric -Infinity", oidNumeric, "-Infinity", nil},
		{"float8", oidFloat8, "1.5e+300", 1.5e300},
		{"float4", oidFloat4, "1.1", 1.1},
		{"float8 NaN", oidFloat8, "NaN", nil},
		{"float4 -Infinity", oidFloat4, "-Infinity", nil},
		{"bool true", oidBool, "t", true},
		{"bool false", oidBool, "f", false},
		{"text", oidText, "hello\tworld", "hello\tworld"},
		{"varchar", oidVarchar, "x", "x"},
		{"bpchar", oidBPChar, "ab  ", "ab  "},
		{"name", oidName, "pg_class", "pg_class"},
		{"uuid", oidUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"jsonb object", oidJSONB, `{"a": 1, "b": [true, null, 1.25], "c": 12345678901234567890}`,
			map[string]any{"a": json.Number("1"), "b": []any{true, nil, json.Number("1.25")}, "c": json.Number("12345678901234567890")}},
		{"json scalar", oidJSON, `"s"`, "s"},
		{"json invalid", oidJSON, `{`, "{"},
		{"date", oidDate, "2024-01-31", "2024-01-31"},
		{"date BC", oidDate, "0044-03-15 BC", "-0043-03-15"},
		{"date far future", oidDate, "12345-01-02", "+12345-01-02"},
		{"date infinity", oidDate, "infinity", "9999-12-31"},
		{"date -infinity", oidDate, "-infinity", "0001-01-01"},
		{"timestamp", oidTimestamp, "2024-01-31 10:11:12.123456", "2024-01-31T10:11:12.123456"},
		{"timestamp no fraction", oidTimestamp, "2024-01-31 10:11:12", "2024-01-31T10:11:12.000000"},
		{"timestamp short fraction", oidTimestamp, "2024-01-31 10:11:12.5", "2024-01-31T10:11:12.500000"},
		{"timestamp infinity", oidTimestamp, "infinity", "9999-12-31T23:59:59.999999"},
		{"timestamptz utc", oidTimestamptz, "2024-01-31 10:11:12.123456+00", "2024-01-31T10:11:12.123456Z"},
		{"timestamptz offset", oidTimestamptz, "2024-01-31 01:11:12.1+05:30", "2024-01-30T19:41:12.100000Z"},
		{"timestamptz seconds offset", oidTimestamptz, "1900-01-01 00:00:00-00:09:21", "1900-01-01T00:09:21.000000Z"},
		{"timestamptz -infinity", oidTimestamptz, "-infinity", "0001-01-01T00:00:00.000000Z"},
		{"timestamptz BC", oidTimestamptz, "0001-01-01 00:00:00+00 BC", "0000-01-01T00:00:00.000000Z"},
		{"time", oidTime, "10:11:12.5", "10:11:12.5"},
		{"timetz", oidTimetz, "10:11:12+02", "10:11:12+02"},
		{"interval", oidInterval, "1 year 2 mons 3 days 04:05:06", "1 year 2 mons 3 days 04:05:06"},
		{"inet", oidInet, "192.168.0.1/24", "192.168.0.1/24"},
		{"cidr", oidCIDR, "10.0.0.0/8", "10.0.0.0/8"},
		{"macaddr", oidMacaddr, "08:00:2b:01:02:03", "08:00:2b:01:02:03"},
		{"money", oidMoney, "$1,234.56", "$1,234.56"},
		{"bytea hex", oidBytea, `\x00ff10`, "AP8Q"},
		{"bytea empty", oidBytea, `\x`, ""},
		{"bytea escape", oidBytea, `a\\b\001`, "YVxiAQ=="},
		{"unknown type", 99999, "whatever (1,2)", "whatever (1,2)"},
		{"int not a number", oidInt4, "x", "x"},
		{"int4 array", 1007, "{1,2,NULL,3}", []any{int64(1), int64(2), nil, int64(3)}},
		{"int4 2-d array", 1007, "{{1,2},{3,4}}", []any{[]any{int64(1), int64(2)}, []any{int64(3), int64(4)}}},
		{"text array quoting", 1009, `{"a b","c\"d","NULL",NULL,plain,"x\\y"}`, []any{"a b", `c"d`, "NULL", nil, "plain", `x\y`}},
		{"empty array", 1009, "{}", []any{}},
		{"array with bounds", 1007, "[0:1]={5,6}", []any{int64(5), int64(6)}},
		{"numeric array", 1231, "{1.5,NaN,0.30000000000000004}", []any{json.Number("1.5"), nil, json.Number("0.30000000000000004")}},
		{"jsonb array", 3807, `{"{\"a\": 1}",null}`, []any{map[string]any{"a": json.Number("1")}, nil}},
		{"timestamptz array", 1185, `{"2024-01-31 10:11:12+00"}`, []any{"2024-01-31T10:11:12.000000Z"}},
		{"box array uses semicolons", 1020, "{(1,1),(0,0);(2,2),(1,1)}", []any{"(1,1),(0,0)", "(2,2),(1,1)"}},
		{"malformed array", 1007, "{1,2", "{1,2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.DecodeText(tt.oid, tt.text)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DecodeText(%d, %q) = %#v, want %#v", tt.oid, tt.text, got, tt.want)
			}
		})
	}
}

func TestDecodeTextUserTypes(t *testing.T) {
	c := NewCodec()
	const (
		enumOID        = 20001
		enumArrayOID   = 20002
		domainOID      = 20003
		domainArrayOID = 20004
	)
	c.define(resolveTypes([]catalogType{
		{OID: enumOID, Type: 'e'},
		{OID: enumArrayOID, Type: 'b', Elem: enumOID, Category: 'A', Delim: ','},
		{OID: domainOID, Type: 'd', Base: oidNumeric},
		{OID: domainArrayOID, Type: 'b', Elem: domainOID, Category: 'A', Delim: ','},
	}, c))
	if got := c.DecodeText(enumOID, "happy"); got != "happy" {
		t.Errorf("enum = %#v", got)
	}
	if got := c.DecodeText(enumArrayOID, "{happy,sad}"); !reflect.DeepEqual(got, []any{"happy", "sad"}) {
		t.Errorf("enum array = %#v", got)
	}
	if got := c.DecodeText(domainOID, "2.5"); got != json.Number("2.5") {
		t.Errorf("domain over numeric = %#v", got)
	}
	if got := c.DecodeText(domainArrayOID, "{2.5,NULL}"); !reflect.DeepEqual(got, []any{json.Number("2.5"), nil}) {
		t.Errorf("domain array = %#v", got)
	}
}

func TestCodecOutputIsValidJSON(t *testing.T) {
	c := NewCodec()
	for _, in := range []struct {
		oid  uint32
		text string
	}{{oidNumeric, "0.000001"}, {oidNumeric, "100"}, {oidNumeric, "-0.0"}, {oidNumeric, "+1"}, {oidNumeric, "007"}} {
		v := c.DecodeText(in.oid, in.text)
		if _, err := json.Marshal(v); err != nil {
			t.Errorf("DecodeText(%d, %q) = %#v does not encode: %v", in.oid, in.text, v, err)
		}
	}
}

func FuzzDecodeText(f *testing.F) {
	c := NewCodec()
	seeds := []struct {
		oid  uint32
		text string
	}{
		{oidNumeric, "12.50"}, {oidNumeric, "NaN"}, {oidFloat8, "1e308"}, {oidInt8, "-1"},
		{oidJSONB, `{"a":[1,2]}`}, {oidDate, "0044-03-15 BC"}, {oidTimestamptz, "2024-01-31 01:11:12.1+05:30"},
		{oidTimestamp, "infinity"}, {oidBytea, `\x00ff`}, {oidBytea, `a\\b\001`}, {1009, `{"a",NULL,{b}}`},
		{1007, "[0:1]={{1,2},{3,4}}"}, {oidBool, "t"}, {99999, "x"},
	}
	for _, s := range seeds {
		f.Add(s.oid, s.text)
	}
	f.Fuzz(func(t *testing.T, oid uint32, text string) {
		v := c.DecodeText(oid, text)
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("DecodeText(%d, %q) = %#v does not encode as JSON: %v", oid, text, v, err)
		}
		// Text-kind types must come back unchanged.
		if c.lookup(oid).kind == kindText && v != text {
			t.Fatalf("text type %d changed %q to %#v", oid, text, v)
		}
		_ = b
	})
}

func TestParseArray(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		in      string
		want    arrayValue
		wantErr bool
	}{
		{in: "{}", want: arrayValue{}},
		{in: " { a , b } ", want: arrayValue{str("a"), str("b")}},
		{in: `{a\,b,"c d"}`, want: arrayValue{str("a,b"), str("c d")}},
		{in: `{\NULL,null,"NULL"}`, want: arrayValue{str("NULL"), (*string)(nil), str("NULL")}},
		{in: "{{1},{2}}", want: arrayValue{arrayValue{str("1")}, arrayValue{str("2")}}},
		{in: `{"",x}`, want: arrayValue{str(""), str("x")}},
		{in: "{a b}", want: arrayValue{str("a b")}},
		{in: "[1:2][1:1]={{1},{2}}", want: arrayValue{arrayValue{str("1")}, arrayValue{str("2")}}},
		{in: "{", wantErr: true},
		{in: "{a,}", wantErr: true},
		{in: "{,a}", wantErr: true},
		{in: `{"a}`, wantErr: true},
		{in: "{a}x", wantErr: true},
		{in: "x", wantErr: true},
		{in: "{{{{{{{1}}}}}}}", wantErr: true},
		{in: "[1:2]{1,2}", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseArray(tt.in, ',')
		if (err != nil) != tt.wantErr {
			t.Errorf("parseArray(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseArray(%q) = %s, want %s", tt.in, dumpArray(got), dumpArray(tt.want))
		}
	}
}

func dumpArray(a arrayValue) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, el := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		switch e := el.(type) {
		case arrayValue:
			b.WriteString(dumpArray(e))
		case *string:
			if e == nil {
				b.WriteString("<nil>")
			} else {
				b.WriteString("'" + *e + "'")
			}
		}
	}
	b.WriteByte('}')
	return b.String()
}

func FuzzParseArray(f *testing.F) {
	for _, s := range []string{"{}", `{"a",NULL,b}`, "{{1,2},{3,4}}", "[0:1]={1,2}", `{a\,b}`, "{ x , y }"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseArray(s, ',')
		if err != nil {
			return
		}
		// Writing the parsed array back as a literal and parsing it again
		// must give the same array.
		again, err := parseArray(arrayLiteral(a), ',')
		if err != nil {
			t.Fatalf("reparse of %q (%q): %v", s, arrayLiteral(a), err)
		}
		if !reflect.DeepEqual(a, again) {
			t.Fatalf("round trip of %q: %s != %s", s, dumpArray(a), dumpArray(again))
		}
	})
}

// arrayLiteral writes a in PostgreSQL's array syntax, quoting every element.
func arrayLiteral(a arrayValue) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, el := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		switch e := el.(type) {
		case arrayValue:
			b.WriteString(arrayLiteral(e))
		case *string:
			if e == nil {
				b.WriteString("NULL")
				continue
			}
			b.WriteByte('"')
			b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(*e))
			b.WriteByte('"')
		}
	}
	b.WriteByte('}')
	return b.String()
}

func jsonNum(s string) json.Number { return json.Number(s) }

// A decimal the fast path calls short must pass the exact check too: it is
// only a shortcut, never a different answer.
func FuzzShortDecimalIsExact(f *testing.F) {
	for _, s := range []string{"12.50", "-0.000123", "123456789012345", "1234567890123456", "0.1", "1" + strings.Repeat("0", 300), "0." + strings.Repeat("0", 295) + "1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !validDecimal(s) || !shortDecimal(s) {
			return
		}
		fl, err := strconv.ParseFloat(s, 64)
		if err != nil || canonicalDecimal(strconv.FormatFloat(fl, 'f', -1, 64)) != canonicalDecimal(s) {
			t.Fatalf("%q called short but float64 does not hold it exactly (%v)", s, err)
		}
	})
}

// The UTC fast path of formatTimestamp gives what the general path (through
// time.Date, reached here with a "+00:00" offset) gives, for every input.
func FuzzTimestampFastPathMatches(f *testing.F) {
	for _, s := range []string{"2024-02-29 23:59:59.999999", "2023-02-29 00:00:00", "0044-03-15 12:00:00 BC", "1900-02-29 01:02:03.5",
		"2000-02-29 24:00:00", "2024-12-31 23:59:60", "10000-01-01 00:00:00", "2024-04-31 00:00:00", "0001-01-01 00:00:00 BC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		body, bc := strings.CutSuffix(s, " BC")
		suffix := ""
		if bc {
			suffix = " BC"
		}
		fast, fastOK := formatTimestamp(body+"+00"+suffix, true)
		slow, slowOK := formatTimestamp(body+"+00:00"+suffix, true)
		if fast != slow || fastOK != slowOK {
			t.Fatalf("%q: fast path %q %v, general path %q %v", s, fast, fastOK, slow, slowOK)
		}
		naive, naiveOK := formatTimestamp(s, false)
		if naiveOK != slowOK || (naiveOK && naive+"Z" != slow) {
			t.Fatalf("%q: timestamp %q %v, timestamptz %q %v", s, naive, naiveOK, slow, slowOK)
		}
	})
}

// AppendJSON writes exactly what encoding DecodeText's value writes: the
// snapshot's direct path and the stream's path give the same bytes.
func FuzzAppendJSONMatchesDecodeText(f *testing.F) {
	c := NewCodec()
	c.define(nestedArrayTypes)
	for _, s := range []struct {
		oid  uint32
		text string
	}{
		{oidInt8, "-42"}, {oidInt8, "-0"}, {oidInt4, "007"}, {oidInt8, "9223372036854775808"}, {oidNumeric, "12.50"},
		{oidNumeric, "0.1000000000000000055511151231257827"}, {oidNumeric, "NaN"}, {oidText, "a\"b\x00\u2028"},
		{oidBool, "t"}, {oidBool, "maybe"}, {oidTimestamptz, "2024-01-31 01:11:12.1+05:30"}, {oidDate, "infinity"},
		{oidTimestamp, "2024-02-30 00:00:00"}, {1009, `{"a",NULL}`}, {oidJSONB, `{"n": 1.0}`}, {oidBytea, `\x00ff`}, {99999, "x"},
	} {
		f.Add(s.oid, s.text)
	}
	for _, s := range appendJSONCases {
		f.Add(s.oid, s.text)
	}
	for _, s := range nestedArrayCases {
		f.Add(s.oid, s.text)
	}
	f.Fuzz(func(t *testing.T, oid uint32, text string) {
		if !c.Known(oid) {
			// Most of uint32 is unknown types, all alike: spend the
			// mutations on types with something to get wrong.
			oid = fuzzOIDs[oid%uint32(len(fuzzOIDs))]
		}
		want, werr := bus.AppendJSONValue(nil, c.DecodeText(oid, text))
		got, gerr := c.AppendJSON(nil, oid, text)
		if (werr == nil) != (gerr == nil) || string(got) != string(want) {
			t.Fatalf("AppendJSON(%d, %q) = %s (%v), want %s (%v)", oid, text, got, gerr, want, werr)
		}
	})
}

// BenchmarkAppendJSON measures the snapshot's encoding of one value of each
// common kind from its COPY text.
func BenchmarkAppendJSON(b *testing.B) {
	c := NewCodec()
	for _, bm := range []struct {
		name string
		oid  uint32
		text string
	}{
		{"timestamptz", oidTimestamptz, "2024-01-31 10:11:12.123456+00"},
		{"text[]", 1009, "{a,b}"},
		{"int8[]", 1016, "{1,22,333,-4444}"},
		{"numeric", oidNumeric, "12345.6789"},
		{"text", oidText, "a plain line of text"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 256)
			for b.Loop() {
				var err error
				if buf, err = c.AppendJSON(buf[:0], bm.oid, bm.text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fuzzOIDs are the types FuzzAppendJSONMatchesDecodeText tries in place of
// an OID the codec does not know; 99999 stands for all unknown ones.
var fuzzOIDs = []uint32{
	99999, oidText, oidInt8, oidInt4, oidNumeric, oidFloat8, oidBool, oidJSONB, oidBytea, oidDate, oidTimestamp,
	oidTimestamptz, 1009, 1016, 1231, 1185, 1182, 1115, 1000, 1020, 3807, 1001, 1022,
	oidTextArrayArray, oidJSONBArrayArray, oidSelfArray,
}

// appendJSONCases are values whose JSON AppendJSON writes without decoding
// them, or tries to: dates, timestamps and arrays, well formed or not.
var appendJSONCases = []struct {
	oid  uint32
	text string
}{
	{oidDate, "2024-02-29"}, {oidDate, "2023-02-29"}, {oidDate, "0044-03-15 BC"}, {oidDate, "-infinity"},
	{oidDate, "12345-01-02"}, {oidDate, "2024-1-31"},
	{oidTimestamp, "2024-02-29 24:00:00"}, {oidTimestamp, "2024-12-31 23:59:60.5"}, {oidTimestamp, "infinity"},
	{oidTimestamp, "0001-01-01 00:00:00 BC"}, {oidTimestamp, "2024-01-31 10:11:12.1234567"},
	{oidTimestamptz, "2024-01-31 01:11:12.1+05:30"}, {oidTimestamptz, "2024-01-31 22:00:00-03"},
	{oidTimestamptz, "1900-01-01 00:00:00-00:09:21"}, {oidTimestamptz, "9999999-12-31 23:00:00-03"},
	{oidTimestamptz, "0044-03-15 12:00:00+00 BC"}, {oidTimestamptz, "2000-02-29 24:00:00+00"},
	{oidTimestamptz, "infinity"}, {oidTimestamptz, "-infinity"}, {oidTimestamptz, "2024-01-31 10:11:12"},
	{1009, "{}"}, {1009, " { a , b } "}, {1009, "{{a,b},{c,d}}"}, {1009, `{NULL,null,"NULL",\NULL}`},
	{1009, `{"a\"b","c\\d",e\,f,"g h"}`}, {1009, "[0:1]={1,2}"}, {1009, "[1:1][0:1]={{a,b}}"},
	{1009, "{{{{{{a}}}}}}"}, {1009, "{{{{{{{a}}}}}}}"}, {1009, "{1,2"}, {1009, "{{1},2}"}, {1009, `{"a}`},
	{1009, "{a,}"}, {1009, "{a}x"}, {1009, "[0:1]{1}"}, {1009, "{\u2028,\"\x01\"}"},
	{1016, "{1,-22,NULL,333}"}, {1016, "{{1,NULL},{NULL,2}}"}, {1009, `{{NULL,"NULL"},{"",nUlL}}`}, {1009, "{{},{}}"}, {1016, "{007,9223372036854775807,9223372036854775808}"}, {1016, "{{1,2},{3,4}}"},
	{1231, "{1.5,NaN,0.30000000000000004,-0}"}, {1231, "{Infinity,1e5}"},
	{1185, `{"2024-01-31 10:11:12+00","2024-01-31 01:11:12.1+05:30",NULL,infinity,-infinity}`},
	{1185, `{"2024-01-31 10:11:12-03"}`}, {1185, "{2024-01-31}"},
	{1182, "{2024-02-29,2023-02-29,\"0044-03-15 BC\",infinity}"}, {1115, `{"2024-02-29 24:00:00"}`},
	{1000, "{t,f,true,false,NULL,maybe}"}, {1020, "{(1,1),(0,0);(2,2),(1,1)}"}, {1020, "{(1,1);}"},
	{3807, `{"{\"a\": 1}",null,"[[1]]"}`}, {3807, `{"{\"a\": 1}"`}, {199, `{1,"\"x\""}`},
	{1001, `{"\\x00ff","\\x0"}`}, {1022, "{1.5,NaN,-Infinity,1e308,x}"}, {1021, "{1.1}"},
}

// TestAppendJSONMatchesDecodeText runs the cases of
// FuzzAppendJSONMatchesDecodeText that exercise the direct paths.
func TestAppendJSONMatchesDecodeText(t *testing.T) {
	c := NewCodec()
	for _, tt := range appendJSONCases {
		want, werr := bus.AppendJSONValue([]byte("prefix"), c.DecodeText(tt.oid, tt.text))
		got, gerr := c.AppendJSON([]byte("prefix"), tt.oid, tt.text)
		if (werr == nil) != (gerr == nil) || string(got) != string(want) {
			t.Errorf("AppendJSON(%d, %q) = %s (%v), want %s (%v)", tt.oid, tt.text, got, gerr, want, werr)
		}
	}
}

// Array types whose elements are arrays, which a catalogue can declare:
// DecodeText follows them to maxArrayNesting.
const (
	oidTextArrayArray  = 20001 // of text[]
	oidJSONBArrayArray = 20002 // of jsonb[]
	oidSelfArray       = 20003 // of itself
)

var nestedArrayTypes = map[uint32]typeInfo{
	oidTextArrayArray:  {kind: kindArray, elem: 1009, delim: ','},
	oidJSONBArrayArray: {kind: kindArray, elem: 3807, delim: ','},
	oidSelfArray:       {kind: kindArray, elem: oidSelfArray, delim: ','},
}

// nestedArrayCases are values of nestedArrayTypes, and json arrays nesting
// deeper than encoding allows only once they are array elements.
var nestedArrayCases = []struct {
	oid  uint32
	text string
}{
	{oidTextArrayArray, `{"{a,b}",NULL,"{c}"}`}, {oidTextArrayArray, `{"{\"x\"}"}`}, {oidTextArrayArray, `{"{1"}`},
	{oidJSONBArrayArray, `{"{\"[1]\"}"}`}, {oidSelfArray, `{"{\"{\\\"{x}\\\"}\"}"}`}, {oidSelfArray, "{{a}}"},
	{3807, `{"` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `"}`},
	{oidJSONB, strings.Repeat("[", 1001) + strings.Repeat("]", 1001)},
}

// Arrays of arrays are written as DecodeText follows them, and json elements
// nest in their arrays as DecodeText's value nests them.
func TestAppendJSONNestedArrayTypes(t *testing.T) {
	c := NewCodec()
	c.define(nestedArrayTypes)
	for _, in := range nestedArrayCases {
		want, werr := bus.AppendJSONValue(nil, c.DecodeText(in.oid, in.text))
		got, gerr := c.AppendJSON(nil, in.oid, in.text)
		if (werr == nil) != (gerr == nil) || string(got) != string(want) {
			t.Errorf("AppendJSON(%d, %q) = %s (%v), want %s (%v)", in.oid, in.text, got, gerr, want, werr)
		}
	}
}

// FuzzCanonicalTimestampMatches checks the in-place path for the usual
// timestamp form against the general one, which parses every field.
func FuzzCanonicalTimestampMatches(f *testing.F) {
	for _, s := range []string{"2024-02-29 23:59:59.999999", "2023-02-29 00:00:00", "1900-02-29 01:02:03.5", "2000-02-29 24:00:00",
		"2024-12-31 23:59:60", "0000-01-01 00:00:00", "9999-12-31 23:59:59.1234567", "2024-01-01 00:00:00.", "2024-1-01 00:00:00",
		"2024-01-01T00:00:00", "2024-04-31 00:00:00", "0001-01-01 00:00:00 BC", "2024-06-01 12:30:00.25"} {
		f.Add(s, false)
		f.Add(s+"+00", true)
	}
	f.Fuzz(func(t *testing.T, s string, tz bool) {
		fast, fastOK := appendCanonicalTimestamp(nil, s, tz)
		if !fastOK {
			return
		}
		slow, slowOK := appendParsedTimestamp(nil, s, tz)
		if !slowOK || string(fast) != string(slow) {
			t.Fatalf("%q (tz %v): in place %q, parsed %q %v", s, tz, fast, slow, slowOK)
		}
	})
}

// TestDefineIsSeenForEveryOID checks that definitions reach lookups of
// small OIDs (kept in a slice) and large ones (in the map) alike.
func TestDefineIsSeenForEveryOID(t *testing.T) {
	c := NewCodec()
	for _, oid := range []uint32{oidText, smallOIDs - 1, smallOIDs, firstUserOID + 7} {
		if c.lookup(oid).kind == kindInt {
			t.Fatalf("oid %d is an int before it is defined", oid)
		}
		c.define(map[uint32]typeInfo{oid: {kind: kindInt}})
		if got := c.DecodeText(oid, "42"); got != int64(42) {
			t.Errorf("oid %d defined as an integer decodes 42 as %#v", oid, got)
		}
		if !c.Known(oid) {
			t.Errorf("oid %d defined but not known", oid)
		}
	}
	if c.lookup(oidInt4).kind != kindInt || c.lookup(oidBool).kind != kindBool {
		t.Fatal("built-in types lost by define")
	}
}
