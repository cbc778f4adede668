package capture

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/walsearch/walsearch/bus"
)

// typeColumns has a column for every type of docs/types.md.
const typeColumns = `
	i2 int2, i4 int4, i8 int8, num numeric, num_big numeric, num_nan numeric,
	r real, d double precision, d_inf double precision, b bool,
	t text, vc varchar(10), bp char(5), nm name, ci citext, u uuid,
	j json, jb jsonb, ia int[], ta text[], ia2 int[][],
	da date, da_inf date, da_bc date, ts timestamp, ts_inf timestamp, tstz timestamptz, tstz_ninf timestamptz,
	tm time, ttz timetz, iv interval, ine inet, cid cidr, mac macaddr, mo money, by bytea,
	mood mood, moods mood[], dom positive, doms positive[], pt point`

const typeValues = `
	-32768, 2147483647, 9223372036854775807, 12.50, 3.14159265358979323846264338327950288, 'NaN',
	1.1, 1.5e300, '-Infinity', true,
	E'tab\there "quoted" \\ back', 'short', 'ab', 'pg_class', 'MiXeD', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	'{"a": [1, 2.50, null], "big": 12345678901234567890}', '{"nested": {"x": true}, "n": 0.1}',
	'{1,NULL,3}', '{"a b","c,d",NULL,"NULL"}', '{{1,2},{3,4}}',
	'2024-01-31', 'infinity', '0044-03-15 BC', '2024-01-31 10:11:12.123456', '-infinity',
	'2024-01-31 10:11:12.5+05:30', '-infinity',
	'10:11:12.5', '10:11:12+02', '1 year 2 mons 3 days 04:05:06', '192.168.0.1/24', '10.0.0.0/8',
	'08:00:2b:01:02:03', 1234.56, '\x00ff10'::bytea,
	'happy', '{happy,sad}', 2.5, '{2.5,NULL}', '(1,2)'`

func TestSnapshotAndStreamAgreeOnEveryType(t *testing.T) {
	e := newEnv(t)
	e.exec(
		// Session settings of the database must not leak into the values.
		`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'Asia/Kolkata');
			EXECUTE format('ALTER DATABASE %I SET datestyle = %L', current_database(), 'SQL, DMY');
			EXECUTE format('ALTER DATABASE %I SET intervalstyle = %L', current_database(), 'iso_8601');
			EXECUTE format('ALTER DATABASE %I SET extra_float_digits = %L', current_database(), '0'); END $$`,
		`CREATE EXTENSION citext`,
		`CREATE TYPE mood AS ENUM ('sad', 'happy')`,
		`CREATE DOMAIN positive AS numeric CHECK (VALUE > 0)`,
		`CREATE TABLE typ (id int PRIMARY KEY, `+typeColumns+`)`,
		`INSERT INTO typ VALUES (1, `+typeValues+`)`,
		`INSERT INTO typ (id) VALUES (2)`,
	)
	r := e.start(e.bus.Changes())
	r.waitStreaming(t)
	snap := e.read(2)
	e.exec(`INSERT INTO typ SELECT id + 100, ` + columnNames() + ` FROM typ`)
	stream := e.read(2)

	rows := func(cs []bus.Change) map[int64]map[string]any {
		out := map[int64]map[string]any{}
		for _, c := range cs {
			id, err := c.Row["id"].(json.Number).Int64()
			if err != nil {
				t.Fatal(err)
			}
			delete(c.Row, "id")
			out[id%100] = c.Row
		}
		return out
	}
	s, st := rows(snap), rows(stream)
	for id := int64(1); id <= 2; id++ {
		for name, want := range s[id] {
			if got, ok := st[id][name]; !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("row %d column %s: snapshot %#v, stream %#v", id, name, want, got)
			}
		}
		if len(s[id]) != len(st[id]) {
			t.Errorf("row %d: snapshot has %d columns, stream %d", id, len(s[id]), len(st[id]))
		}
	}
	// Both agree; check they agree on the documented values.
	want := map[string]any{
		"i2": json.Number("-32768"), "i8": json.Number("9223372036854775807"), "num": json.Number("12.50"),
		"num_big": "3.14159265358979323846264338327950288", "num_nan": nil, "r": json.Number("1.1"),
		"d": json.Number("1.5e+300"), "d_inf": nil, "b": true, "t": "tab\there \"quoted\" \\ back", "bp": "ab   ",
		"ci": "MiXeD", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"j":  map[string]any{"a": []any{json.Number("1"), json.Number("2.50"), nil}, "big": json.Number("12345678901234567890")},
		"jb": map[string]any{"nested": map[string]any{"x": true}, "n": json.Number("0.1")},
		"ia": []any{json.Number("1"), nil, json.Number("3")}, "ta": []any{"a b", "c,d", nil, "NULL"},
		"ia2": []any{[]any{json.Number("1"), json.Number("2")}, []any{json.Number("3"), json.Number("4")}},
		"da":  "2024-01-31", "da_inf": "9999-12-31", "da_bc": "-0043-03-15",
		"ts": "2024-01-31T10:11:12.123456", "ts_inf": "0001-01-01T00:00:00.000000",
		"tstz": "2024-01-31T04:41:12.500000Z", "tstz_ninf": "0001-01-01T00:00:00.000000Z",
		"tm": "10:11:12.5", "ttz": "10:11:12+02", "iv": "1 year 2 mons 3 days 04:05:06",
		"ine": "192.168.0.1/24", "cid": "10.0.0.0/8", "mac": "08:00:2b:01:02:03", "mo": "$1,234.56",
		"by": "AP8Q", "mood": "happy", "moods": []any{"happy", "sad"}, "dom": json.Number("2.5"),
		"doms": []any{json.Number("2.5"), nil}, "pt": "(1,2)",
	}
	for name, w := range want {
		if got := st[1][name]; !reflect.DeepEqual(got, w) {
			t.Errorf("column %s = %#v, want %#v", name, got, w)
		}
	}
	for name, v := range st[2] {
		if v != nil {
			t.Errorf("NULL column %s = %#v, want nil", name, v)
		}
	}
}

func columnNames() string {
	return "i2, i4, i8, num, num_big, num_nan, r, d, d_inf, b, t, vc, bp, nm, ci, u, j, jb, ia, ta, ia2, " +
		"da, da_inf, da_bc, ts, ts_inf, tstz, tstz_ninf, tm, ttz, iv, ine, cid, mac, mo, by, mood, moods, dom, doms, pt"
}
