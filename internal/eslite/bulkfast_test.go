package eslite

import (
	"fmt"
	"reflect"
	"testing"
)

// TestActionLineFastAgreesWithJSON: every line the fast path accepts parses
// to the item (or error) the encoding/json parser gives, and the lines it
// cannot read exactly are left to that parser.
func TestActionLineFastAgreesWithJSON(t *testing.T) {
	accepted := []string{
		`{"index":{"_index":"items","_id":"123","version":4711,"version_type":"external_gte"}}`,
		`{"delete":{"_index":"items","_id":"9","version":1,"version_type":"external_gte"}}`,
		` { "create" : { "_id" : "a b" , "require_alias" : true } } `,
		`{"update":{"_id":"1","retry_on_conflict":3,"_source":false}}`,
		`{"index":{}}`,
		`{"index":{"_id":"","routing":null}}`,
		`{"index":{"_id":"é","op_type":"create"}}`,
		`{"index":{"_id":"1","version":-0}}`,
		`{"index":{"_id":"1","op_type":"upsert"}}`,
		`{"index":{"bogus":1}}`,
		`{"index":{"_id":"1","if_seq_no":-1,"if_primary_term":1}}`,
		`{"index":{"_id":"1","version":99999999999999999999}}`,
		`{"index":{"_id":"1","version_type":"force"}}`,
		`{"index":{"_id":"1","pipeline":"p","require_alias":false}}`,
		`{"index":{"_id":7}}`,
	}
	rejected := []string{
		``, `   `, `{}`, `[]`, `{"index":{"_id":"a\"b"}}`, `{"index":{"_id":"1"},"x":1}`,
		`{"index":{"_id":"1"}} x`, `{"index":{"_id":"1","version":1.0}}`, `{"index":{"_id":"1","version":1e3}}`,
		`{"index":{"_id":"1","version":01}}`, `{"index":{"_source":{"includes":["a"]}}}`, `{"index":{"_id":["1"]}}`,
		`{"index":{"_id":"1"`, `{"reindex":{}}`, `{"index":{"_id":"1",}}`, `{"index":{"_id":tru}}`,
		`{"index":{"_id":"1","version":1x}}`, "{\"index\":{\"_id\":\"\xff\"}}", "{\"index\":{\"_id\":\"a\tb\"}}",
		`{"index":{"dynamic_templates":{"a":"b"}}}`, `{"ind\u0065x":{}}`,
	}
	for i, line := range accepted {
		item, perr, ok := parseActionLineFast([]byte(line), i+1)
		if !ok {
			t.Errorf("%s: the fast path gave up", line)
			continue
		}
		want, wantErr := parseActionLineJSON([]byte(line), i+1)
		if fmt.Sprint(perr) != fmt.Sprint(wantErr) {
			t.Errorf("%s: error %v, want %v", line, perr, wantErr)
		}
		if !reflect.DeepEqual(item, want) {
			t.Errorf("%s: item %+v, want %+v", line, item, want)
		}
	}
	for i, line := range rejected {
		if _, _, ok := parseActionLineFast([]byte(line), i+1); ok {
			t.Errorf("%s: the fast path accepted it", line)
		}
	}
}

// FuzzActionLineFast checks the fast path against encoding/json on any
// line it accepts.
func FuzzActionLineFast(f *testing.F) {
	for _, s := range []string{
		`{"index":{"_index":"items","_id":"123","version":4711,"version_type":"external_gte"}}`,
		` { "create" : { "_id" : "a" , "require_alias" : true } } `,
		`{"update":{"_id":"1","_source":false,"if_seq_no":3}}`,
		`{"delete":{"_id":null}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		item, perr, ok := parseActionLineFast(line, 1)
		if !ok {
			return
		}
		want, wantErr := parseActionLineJSON(line, 1)
		if fmt.Sprint(perr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(item, want) {
			t.Fatalf("%q: fast %+v %v, json %+v %v", line, item, perr, want, wantErr)
		}
	})
}
