package bus_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/walsearch/walsearch/bus"
)

// rawSeeds are change messages of every form, well and badly made.
var rawSeeds = []string{
	`{"v":1,"op":"insert","lsn":"0/10","row":{"a":1}}`,
	`[{"v":1},{"v":1,"key":[{"name":"id","value":2}]}]`, `[]`, ` [`, `{"v":1,"lsn":"1/2"}`,
	`{"v":2,"op":"update","schema":"s","table":"t","key":[{"name":"id","value":12345678901234567890}],"row":{"id":12345678901234567890,"s":"\u00e9\"x","n":null,"o":{"a":[1,{"b":"}"}]}},"unchanged":["big"],"lsn":"0/9","pos":3,"commit_time":"2024-05-01T10:00:00.123456Z"}`,
	`{"v":1,"op":"insert","lsn":"0/10","row":[1,2]}`,
	`{"v":1,"op":"delete","lsn":"0/10","row":null}`,
	`{"v":2,"op":"read","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":7,"rows":[{"id":1},{"id":"x","y":[1]}]}`,
	`{"v":2,"op":"read","schema":"s","table":"t","key_columns":["a","b"],"lsn":"0/1","pos":0,"rows":[{"a":1,"b":null}]}`,
	`{"v":2,"op":"read","schema":"s","table":"t","key_columns":[],"lsn":"0/1","pos":0,"rows":[{}]}`,
	`{"v":2,"op":"read","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"rows":[{"i\u0064":5, "x" : "]}" , "id":6}]}`,
	`{"v":2,"op":"read","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"rows":[{"x":1}]}`,
	`{"v":2,"op":"read","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"rows":[[1]]}`,
	`{"v":2,"op":"read","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"rows":[]}`,
	`{"v":4,"op":"insert","lsn":"0/10","row":{"a":1}}`,
	`{"v":3,"op":"insert","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":4,"commit_time":"2024-05-01T10:00:00.123456Z","xid":77,"rows":[{"id":1,"a":"x"},{"id":2,"a":[1,{"b":"]}"}]}]}`,
	`{"v":3,"op":"insert","schema":"s","table":"t","key_columns":["a","b"],"lsn":"0/1","pos":0,"rows":[{"a":1,"b":"x"}]}`,
	`{"v":3,"op":"insert","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"commit_time":"nope","rows":[{"id":1}]}`,
	`{"v":3,"op":"update","schema":"s","table":"t","key_columns":["id"],"lsn":"0/1","pos":0,"rows":[{"id":1}]}`,
	`[{"v":2,"op":"insert","schema":"public","table":"t","key":[{"name":"id","value":1}],"row":{"id":1,"a":"x"},"lsn":"0/16B3748","pos":0,"commit_time":"2024-05-01T10:00:00.123456Z"},` +
		`{"v":2,"op":"insert","schema":"public","table":"t","key":[{"name":"id","value":2}],"row":{"id":2,"a":"y\n"},"lsn":"0/16B3748","pos":1,"commit_time":"2024-05-01T10:00:00.123456Z"}]`,
	`{"V":2,"OP":"insert","Schema":"s","lsn":"0/1","row":{"a":1},"key":[{"NAME":"id","Value":2,"value":3}],"unchanged":["b","c"],"pos":-1}`,
	`{"v":2,"op":"update","lsn":"0/1","row":{"a":1},"key":null,"unchanged":null,"commit_time":null,"rows":null}`,
	// Rows read before, between and after key_columns, and rows twice.
	`{"v":3,"op":"insert","schema":"s","table":"t","rows":[{"id":1,"k":2}],"key_columns":["id"],"lsn":"0/1","pos":0}`,
	`{"v":3,"op":"insert","schema":"s","table":"t","key_columns":["k"],"rows": [ {"id":1,"k":2} , {"id":3,"k":4} ],"key_columns":["id"],"lsn":"0/1","pos":0}`,
	`{"v":3,"op":"insert","schema":"s","table":"t","key_columns":["x"],"rows":[{"id":1}],"key_columns":["id"],"lsn":"0/1","pos":0}`,
	`{"v":3,"op":"insert","schema":"s","table":"t","key_columns":["id"],"rows":[{"id":1},{"id":2}],"Rows":[{"id":3}],"lsn":"0/1","pos":0}`,
	`{"v":3,"op":"insert","schema":"s","table":"t","key_columns":["id"],"rows":[{"id":1},{"id":2,"bad":[}],"lsn":"0/1","pos":0}`,
	`{"v":3,"op":"insert","schema":"s","table":"t","key_columns":["id"],"rows":`,
}

// referenceDecode is change message decoding written plainly with
// encoding/json (as DecodeChanges was before the scanner): the decoders
// are held to it.
func referenceDecode(data []byte) ([]bus.Change, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		// One change, or a read batch (see ReadBatch).
		var one struct {
			bus.Change
			referenceReadBatch
		}
		if err := referenceJSON(data, &one); err != nil {
			return nil, err
		}
		if one.V > bus.SchemaVersion {
			return nil, fmt.Errorf("decode event (schema version %d): %w", one.V, bus.ErrNewerSchema)
		}
		if one.Rows != nil {
			return one.expand(&one.Change)
		}
		return []bus.Change{one.Change}, nil
	}
	var cs []bus.Change
	if err := referenceJSON(data, &cs); err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("decode event: empty change batch")
	}
	for i := range cs {
		if cs[i].V > bus.SchemaVersion {
			return nil, fmt.Errorf("decode event (schema version %d): %w", cs[i].V, bus.ErrNewerSchema)
		}
	}
	return cs, nil
}

// referenceReadBatch is the read or insert batch form as encoding/json
// decodes it.
type referenceReadBatch struct {
	KeyColumns []string         `json:"key_columns"`
	Rows       []map[string]any `json:"rows"`
}

// expand turns a decoded read batch into its changes; head holds the
// fields the changes share.
func (r *referenceReadBatch) expand(head *bus.Change) ([]bus.Change, error) {
	if head.Op != bus.OpRead && head.Op != bus.OpInsert || len(r.Rows) == 0 {
		return nil, fmt.Errorf("decode event: a batch of %d %q rows", len(r.Rows), head.Op)
	}
	cs := make([]bus.Change, len(r.Rows))
	keys := make([]bus.Column, len(r.Rows)*len(r.KeyColumns))
	for i, row := range r.Rows {
		key := keys[i*len(r.KeyColumns) : (i+1)*len(r.KeyColumns) : (i+1)*len(r.KeyColumns)]
		for k, name := range r.KeyColumns {
			v, ok := row[name]
			if !ok {
				return nil, fmt.Errorf("decode event: row %d of a read batch of %s.%s lacks key column %q", i, head.Schema, head.Table, name)
			}
			key[k] = bus.Column{Name: name, Value: v}
		}
		if len(key) == 0 {
			key = nil
		}
		cs[i] = bus.Change{V: head.V, Op: head.Op, Schema: head.Schema, Table: head.Table, Key: key, Row: row,
			LSN: head.LSN, Pos: head.Pos + uint64(i), CommitTime: head.CommitTime, Xid: head.Xid}
	}
	return cs, nil
}

// referenceJSON decodes with numbers kept exact, as the bus does.
func referenceJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// checkRawMatches fails unless DecodeChangesRaw, its rows then decoded with
// DecodeRow, gives what referenceDecode gives: the same changes, or an
// error where it has one. DecodeChanges must give the same too.
func checkRawMatches(t *testing.T, data []byte) {
	t.Helper()
	full, fullErr := referenceDecode(data)
	decoded, decodedErr := bus.DecodeChanges(data)
	if (fullErr == nil) != (decodedErr == nil) || fullErr == nil && !reflect.DeepEqual(full, decoded) {
		t.Fatalf("%s: DecodeChanges gives %#v (%v), the reference %#v (%v)", data, decoded, decodedErr, full, fullErr)
	}
	raw, rawErr := bus.DecodeChangesRaw(data)
	if rawErr != nil {
		if fullErr == nil {
			t.Fatalf("%s: raw decoding failed (%v), full decoding did not", data, rawErr)
		}
		return
	}
	rowErr := false
	for i := range raw {
		if err := raw[i].DecodeRow(); err != nil {
			rowErr = true
			continue
		}
		raw[i].RowJSON = nil
	}
	if fullErr != nil {
		if !rowErr {
			t.Fatalf("%s: full decoding failed (%v), raw decoding and every row did not", data, fullErr)
		}
		return
	}
	if rowErr {
		t.Fatalf("%s: a row did not decode, but the whole message did", data)
	}
	if !reflect.DeepEqual(full, raw) {
		t.Fatalf("%s:\nfull %#v\nraw  %#v", data, full, raw)
	}
}

func TestDecodeChangesRawMatchesDecodeChanges(t *testing.T) {
	for _, s := range rawSeeds {
		t.Run(s[:min(len(s), 40)], func(t *testing.T) { checkRawMatches(t, []byte(s)) })
	}
	cs, err := bus.DecodeChangesRaw([]byte(rawSeeds[5]))
	if err != nil || len(cs) != 1 || cs[0].Row != nil || !strings.HasPrefix(string(cs[0].RowJSON), `{"id":12345678901234567890,`) {
		t.Fatalf("the row is not left as it was encoded: %+v, %v", cs, err)
	}
	cs, err = bus.DecodeChangesRaw([]byte(rawSeeds[11]))
	if err != nil || len(cs) != 1 || fmt.Sprint(cs[0].Key[0].Value) != "6" {
		t.Fatalf("a key column given twice takes its last value: %+v, %v", cs, err)
	}
}

func FuzzDecodeChangesRawMatches(f *testing.F) {
	for _, s := range rawSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkRawMatches)
}

// BenchmarkDecodeInsertBatch decodes a full message of streamed inserts as
// the transform reads it: rows left encoded, keys read.
func BenchmarkDecodeInsertBatch(b *testing.B) {
	evs := make([]*bus.Change, bus.MaxBatchEvents)
	for i := range evs {
		evs[i] = &bus.Change{V: bus.SchemaVersion, Op: bus.OpInsert, Schema: "public", Table: "items",
			Key: []bus.Column{{Name: "id", Value: i}}, KeyInRow: true, LSN: 0x16B3748, Pos: uint64(i), Xid: 77,
			RowJSON: fmt.Appendf(nil, `{"id":%d,"name":"item %d","price":%d.25,"tags":["a","b"],"created_at":"2024-05-01T10:00:00.123456Z"}`, i, i, i)}
	}
	data, n, err := bus.EncodeChanges(evs, bus.MaxBatchBytes)
	if err != nil || n != len(evs) {
		b.Fatalf("encode: %d of %d, %v", n, len(evs), err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bus.DecodeChangesRaw(data); err != nil {
			b.Fatal(err)
		}
	}
}
