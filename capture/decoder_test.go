package capture

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/walsearch/walsearch/bus"
)

// Byte fixtures in the pgoutput protocol (version 1) format.

type tupleCol struct {
	kind byte // 'n', 'u', 't'
	data string
}

func txt(s string) tupleCol { return tupleCol{'t', s} }

var null, toast = tupleCol{kind: 'n'}, tupleCol{kind: 'u'}

type pgoutBuf []byte

func (b pgoutBuf) u8(v byte) pgoutBuf    { return append(b, v) }
func (b pgoutBuf) u16(v uint16) pgoutBuf { return binary.BigEndian.AppendUint16(b, v) }
func (b pgoutBuf) u32(v uint32) pgoutBuf { return binary.BigEndian.AppendUint32(b, v) }
func (b pgoutBuf) u64(v uint64) pgoutBuf { return binary.BigEndian.AppendUint64(b, v) }
func (b pgoutBuf) str(s string) pgoutBuf { return append(append(b, s...), 0) }
func (b pgoutBuf) tuple(cols ...tupleCol) pgoutBuf {
	b = b.u16(uint16(len(cols)))
	for _, c := range cols {
		b = b.u8(c.kind)
		if c.kind == 't' {
			b = b.u32(uint32(len(c.data)))
			b = append(b, c.data...)
		}
	}
	return b
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgTime(t time.Time) uint64 { return uint64(t.Sub(pgEpoch).Microseconds()) }

func beginMsg(final uint64, at time.Time, xid uint32) []byte {
	return pgoutBuf{'B'}.u64(final).u64(pgTime(at)).u32(xid)
}

func commitMsg(lsn, end uint64, at time.Time) []byte {
	return pgoutBuf{'C'}.u8(0).u64(lsn).u64(end).u64(pgTime(at))
}

type relCol struct {
	key  bool
	name string
	oid  uint32
}

func relationMsg(id uint32, schema, table string, identity byte, cols ...relCol) []byte {
	b := pgoutBuf{'R'}.u32(id).str(schema).str(table).u8(identity).u16(uint16(len(cols)))
	for _, c := range cols {
		var flags byte
		if c.key {
			flags = 1
		}
		b = b.u8(flags).str(c.name).u32(c.oid).u32(0xffffffff)
	}
	return b
}

func insertMsg(rel uint32, cols ...tupleCol) []byte {
	return pgoutBuf{'I'}.u32(rel).u8('N').tuple(cols...)
}

func updateMsg(rel uint32, oldKind byte, old []tupleCol, cols ...tupleCol) []byte {
	b := pgoutBuf{'U'}.u32(rel)
	if oldKind != 0 {
		b = b.u8(oldKind).tuple(old...)
	}
	return b.u8('N').tuple(cols...)
}

func deleteMsg(rel uint32, oldKind byte, old ...tupleCol) []byte {
	return pgoutBuf{'D'}.u32(rel).u8(oldKind).tuple(old...)
}

func truncateMsg(rels ...uint32) []byte {
	b := pgoutBuf{'T'}.u32(uint32(len(rels))).u8(0)
	for _, r := range rels {
		b = b.u32(r)
	}
	return b
}

// decodeAll feeds messages to d and returns every change and commit end.
func decodeAll(t testing.TB, d *decoder, msgs ...[]byte) ([]*bus.Change, []bus.LSN) {
	t.Helper()
	var changes []*bus.Change
	var commits []bus.LSN
	for i, m := range msgs {
		res, err := d.decodeBytes(m)
		if err != nil {
			t.Fatalf("message %d (%q): %v", i, m[0], err)
		}
		changes = append(changes, res.changes...)
		if res.commit {
			commits = append(commits, res.end)
		}
	}
	return changes, commits
}

var (
	t0        = time.Date(2024, 1, 31, 10, 11, 12, 123456000, time.UTC)
	itemsRel  = relationMsg(16400, "public", "items", 'd', relCol{true, "id", oidInt4}, relCol{false, "name", oidText}, relCol{false, "price", oidNumeric})
	itemsName = "items"
)

func TestDecoderRowChanges(t *testing.T) {
	d := newDecoder(NewCodec())
	changes, commits := decodeAll(t, d,
		itemsRel,
		beginMsg(0x1000, t0, 7),
		insertMsg(16400, txt("1"), txt("apple"), txt("1.50")),
		updateMsg(16400, 0, nil, txt("1"), txt("apple"), txt("2.25")),
		deleteMsg(16400, 'K', txt("1"), null, null),
		commitMsg(0x1000, 0x1030, t0),
		beginMsg(0x2000, t0.Add(time.Second), 8),
		truncateMsg(16400),
		commitMsg(0x2000, 0x2040, t0.Add(time.Second)),
	)
	want := []*bus.Change{
		{V: bus.SchemaVersion, Op: bus.OpInsert, Schema: "public", Table: itemsName, Key: []bus.Column{{Name: "id", Value: int64(1)}},
			RowJSON: json.RawMessage(`{"id":1,"name":"apple","price":1.50}`), KeyInRow: true, LSN: 0x1000, Pos: 0, CommitTime: t0, Xid: 7},
		{V: bus.SchemaVersion, Op: bus.OpUpdate, Schema: "public", Table: itemsName, Key: []bus.Column{{Name: "id", Value: int64(1)}},
			Row: map[string]any{"id": int64(1), "name": "apple", "price": jsonNum("2.25")}, LSN: 0x1000, Pos: 1, CommitTime: t0, Xid: 7},
		{V: bus.SchemaVersion, Op: bus.OpDelete, Schema: "public", Table: itemsName, Key: []bus.Column{{Name: "id", Value: int64(1)}},
			LSN: 0x1000, Pos: 2, CommitTime: t0, Xid: 7},
		{V: bus.SchemaVersion, Op: bus.OpTruncate, Schema: "public", Table: itemsName, LSN: 0x2000, Pos: 0, CommitTime: t0.Add(time.Second), Xid: 8},
	}
	assertChanges(t, changes, want)
	if !reflect.DeepEqual(commits, []bus.LSN{0x1030, 0x2040}) {
		t.Fatalf("commit ends = %v", commits)
	}
}

func mustParse(t *testing.T, data []byte) pglogrepl.Message {
	t.Helper()
	m, err := parseMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// An insert's row is encoded straight from the tuple's text; it must say
// what the row decoded to values says, key included.
func TestDecoderInsertRowIsTheRowItsValuesMake(t *testing.T) {
	rel := relationMsg(16700, "public", "kinds", 'd', relCol{true, "id", oidInt8}, relCol{false, "name", oidText},
		relCol{false, "price", oidNumeric}, relCol{false, "tags", 1009}, relCol{false, "at", oidTimestamptz},
		relCol{false, "doc", oidJSONB}, relCol{false, "f", oidFloat8}, relCol{false, "ok", oidBool}, relCol{false, "gone", oidText})
	rows := [][]tupleCol{
		{txt("9007199254740993"), txt("a \"quoted\" name\n"), txt("12345678901234567890.5"), txt(`{x,"y z",NULL}`),
			txt("2024-01-31 10:11:12.5+01"), txt(`{"a":[1,2.50]}`), txt("1.5e300"), txt("t"), null},
		{txt("-1"), txt(""), txt("NaN"), txt("{}"), txt("infinity"), txt("null"), txt("-Infinity"), txt("f"), null},
	}
	msgs := [][]byte{rel, beginMsg(0x3000, t0, 9)}
	for _, r := range rows {
		msgs = append(msgs, insertMsg(16700, r...))
	}
	changes, _ := decodeAll(t, newDecoder(NewCodec()), append(msgs, commitMsg(0x3000, 0x3010, t0))...)
	values := newDecoder(NewCodec())
	values.applyRelation(mustParse(t, rel).(*pglogrepl.RelationMessage))
	for i, c := range changes {
		if len(c.RowJSON) == 0 || c.Row != nil || !c.KeyInRow {
			t.Fatalf("insert %d: RowJSON %s, Row %v, KeyInRow %v", i, c.RowJSON, c.Row, c.KeyInRow)
		}
		ins := mustParse(t, insertMsg(16700, rows[i]...)).(*pglogrepl.InsertMessage)
		row, _ := values.row(values.rels[16700], ins.Tuple.Columns, nil)
		want, err := bus.AppendJSONValue(nil, row)
		if err != nil {
			t.Fatal(err)
		}
		var got, exp map[string]any
		for _, x := range []struct {
			data []byte
			into *map[string]any
		}{{c.RowJSON, &got}, {want, &exp}} {
			dec := json.NewDecoder(bytes.NewReader(x.data))
			dec.UseNumber()
			if err := dec.Decode(x.into); err != nil {
				t.Fatalf("insert %d: %s: %v", i, x.data, err)
			}
		}
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("insert %d: row encoded from text\n%s\nfrom values\n%s", i, c.RowJSON, want)
		}
		if fmt.Sprint(got["id"]) != fmt.Sprint(c.Key[0].Value) {
			t.Fatalf("insert %d: key %v, row's id %v", i, c.Key[0].Value, got["id"])
		}
	}
}

func TestDecoderKeyChangeIsDeleteThenInsert(t *testing.T) {
	d := newDecoder(NewCodec())
	changes, _ := decodeAll(t, d,
		itemsRel,
		beginMsg(0x3000, t0, 9),
		updateMsg(16400, 'K', []tupleCol{txt("1"), null, null}, txt("2"), txt("pear"), null),
		commitMsg(0x3000, 0x3010, t0),
	)
	want := []*bus.Change{
		{V: bus.SchemaVersion, Op: bus.OpDelete, Schema: "public", Table: itemsName, Key: []bus.Column{{Name: "id", Value: int64(1)}},
			LSN: 0x3000, Pos: 0, CommitTime: t0, Xid: 9},
		{V: bus.SchemaVersion, Op: bus.OpInsert, Schema: "public", Table: itemsName, Key: []bus.Column{{Name: "id", Value: int64(2)}},
			Row: map[string]any{"id": int64(2), "name": "pear", "price": nil}, LSN: 0x3000, Pos: 1, CommitTime: t0, Xid: 9},
	}
	assertChanges(t, changes, want)
}

// TestDecoderOldValues: a table whose replica identity is FULL or an
// index carries its old values (those the identity sends) on updates and
// deletes, so that a row moved to another parent tells which one it left.
func TestDecoderOldValues(t *testing.T) {
	d := newDecoder(NewCodec())
	full := relationMsg(16600, "public", "lines", 'f', relCol{true, "id", oidInt4}, relCol{true, "order_id", oidInt4}, relCol{true, "note", oidText})
	byIndex := relationMsg(16601, "public", "marks", 'i', relCol{true, "id", oidInt4}, relCol{true, "order_id", oidInt4}, relCol{false, "note", oidText})
	decodeAll(t, d, itemsRel, full, byIndex)
	d.preferKey(16600, []string{"id"}) // the primary key, as capture reads it from the catalog
	changes, _ := decodeAll(t, d,
		beginMsg(0x5000, t0, 11),
		updateMsg(16600, 'O', []tupleCol{txt("1"), txt("10"), txt("m")}, txt("1"), txt("20"), txt("n")),
		deleteMsg(16600, 'O', txt("1"), txt("20"), txt("n")),
		deleteMsg(16601, 'K', txt("2"), txt("30"), null),
		deleteMsg(16400, 'K', txt("3"), null, null),
		commitMsg(0x5000, 0x5010, t0),
	)
	want := []map[string]any{
		{"id": int64(1), "order_id": int64(10), "note": "m"},
		{"id": int64(1), "order_id": int64(20), "note": "n"},
		{"id": int64(2), "order_id": int64(30)},
		nil,
	}
	if len(changes) != len(want) {
		t.Fatalf("got %d changes, want %d", len(changes), len(want))
	}
	for i, c := range changes {
		if !reflect.DeepEqual(c.Old, want[i]) || c.Xid != 11 {
			t.Errorf("change %d (%s of %s): old %v xid %d, want %v and 11", i, c.Op, c.Table, c.Old, c.Xid, want[i])
		}
	}
}

func TestDecoderUnchangedToast(t *testing.T) {
	d := newDecoder(NewCodec())
	docs := relationMsg(16500, "app", "docs", 'd', relCol{true, "id", oidInt8}, relCol{false, "body", oidText}, relCol{false, "title", oidText})
	changes, _ := decodeAll(t, d,
		docs,
		beginMsg(0x4000, t0, 10),
		updateMsg(16500, 0, nil, txt("5"), toast, txt("new title")),
		commitMsg(0x4000, 0x4010, t0),
	)
	if len(changes) != 1 {
		t.Fatalf("got %d changes", len(changes))
	}
	c := changes[0]
	if _, ok := c.Row["body"]; ok {
		t.Fatalf("unchanged TOAST column body is in Row: %#v", c.Row)
	}
	if !reflect.DeepEqual(c.Unchanged, []string{"body"}) || c.Row["title"] != "new title" {
		t.Fatalf("Row = %#v, Unchanged = %v", c.Row, c.Unchanged)
	}

	// With REPLICA IDENTITY FULL the old tuple has the value: it is used.
	full := relationMsg(16500, "app", "docs", 'f', relCol{true, "id", oidInt8}, relCol{true, "body", oidText}, relCol{true, "title", oidText})
	changes, _ = decodeAll(t, d,
		full,
		beginMsg(0x5000, t0, 11),
		updateMsg(16500, 'O', []tupleCol{txt("5"), txt("long body"), txt("new title")}, txt("5"), toast, txt("newer")),
		commitMsg(0x5000, 0x5010, t0),
	)
	d.preferKey(16500, []string{"id"})
	if len(changes) != 2 {
		// Without the catalogue's primary key, FULL keys on all columns:
		// the title change is a key change.
		t.Fatalf("got %d changes, want delete+insert keyed on all columns", len(changes))
	}
	if changes[1].Row["body"] != "long body" || len(changes[1].Unchanged) != 0 {
		t.Fatalf("Row = %#v, Unchanged = %v", changes[1].Row, changes[1].Unchanged)
	}
	changes, _ = decodeAll(t, d,
		beginMsg(0x6000, t0, 12),
		updateMsg(16500, 'O', []tupleCol{txt("5"), txt("long body"), txt("newer")}, txt("5"), toast, txt("newest")),
		commitMsg(0x6000, 0x6010, t0),
	)
	if len(changes) != 1 || changes[0].Op != bus.OpUpdate || !reflect.DeepEqual(changes[0].Key, []bus.Column{{Name: "id", Value: int64(5)}}) {
		t.Fatalf("with the primary key preferred: %+v", changes)
	}
}

func TestDecoderKeyOrderAndSkippedTables(t *testing.T) {
	d := newDecoder(NewCodec())
	decodeAll(t, d,
		relationMsg(1, "public", "pairs", 'd', relCol{true, "a", oidInt4}, relCol{true, "b", oidText}, relCol{false, "v", oidText}),
		relationMsg(2, "public", "nokey", 'd', relCol{false, "v", oidText}),
		relationMsg(3, "public", "nothing", 'n', relCol{false, "v", oidText}),
	)
	d.preferKey(1, []string{"b", "a"})
	d.preferKey(2, []string{"v"}) // not part of the replica identity: ignored
	if !d.rels[2].skipped() || !d.rels[3].skipped() || d.rels[1].skipped() {
		t.Fatal("tables without a key must be skipped, others not")
	}
	changes, _ := decodeAll(t, d,
		beginMsg(0x7000, t0, 13),
		insertMsg(1, txt("1"), txt("eu"), txt("x")),
		insertMsg(2, txt("dropped")),
		insertMsg(3, txt("dropped")),
		truncateMsg(1, 2, 3),
		commitMsg(0x7000, 0x7010, t0),
	)
	if len(changes) != 2 {
		t.Fatalf("got %d changes, want the insert and the truncate of pairs", len(changes))
	}
	if want := []bus.Column{{Name: "b", Value: "eu"}, {Name: "a", Value: int64(1)}}; !reflect.DeepEqual(changes[0].Key, want) {
		t.Fatalf("key = %v, want %v", changes[0].Key, want)
	}
	if changes[1].Op != bus.OpTruncate || changes[1].Pos != 1 {
		t.Fatalf("truncate = %+v", changes[1])
	}
}

func TestDecoderRelationChangesMidStream(t *testing.T) {
	d := newDecoder(NewCodec())
	changes, _ := decodeAll(t, d,
		itemsRel,
		beginMsg(0x8000, t0, 14),
		insertMsg(16400, txt("1"), txt("a"), txt("1")),
		commitMsg(0x8000, 0x8010, t0),
		relationMsg(16400, "public", "items", 'd', relCol{true, "id", oidInt4}, relCol{false, "name", oidText},
			relCol{false, "price", oidNumeric}, relCol{false, "tags", 1009}),
		beginMsg(0x9000, t0, 15),
		insertMsg(16400, txt("2"), txt("b"), txt("2"), txt("{x,y}")),
		commitMsg(0x9000, 0x9010, t0),
	)
	if err := changes[1].DecodeRow(); err != nil {
		t.Fatal(err)
	}
	if got := changes[1].Row["tags"]; !reflect.DeepEqual(got, []any{"x", "y"}) {
		t.Fatalf("new column after Relation message = %#v", got)
	}
}

func TestDecoderProtocolErrors(t *testing.T) {
	tests := []struct {
		name string
		msgs [][]byte
		want error
	}{
		{"row before relation", [][]byte{beginMsg(1, t0, 1), insertMsg(99, txt("1"))}, ErrProtocol},
		{"row outside transaction", [][]byte{itemsRel, insertMsg(16400, txt("1"), txt("a"), txt("1"))}, ErrProtocol},
		{"column count mismatch", [][]byte{itemsRel, beginMsg(1, t0, 1), insertMsg(16400, txt("1"))}, ErrProtocol},
		{"commit outside transaction", [][]byte{commitMsg(1, 2, t0)}, ErrProtocol},
		{"truncated message", [][]byte{itemsRel, beginMsg(1, t0, 1), insertMsg(16400, txt("1"), txt("a"), txt("1"))[:12]}, ErrProtocol},
		{"unknown message", [][]byte{{'Z', 0}}, ErrProtocol},
		{"unsent key", [][]byte{itemsRel, beginMsg(1, t0, 1), updateMsg(16400, 0, nil, toast, txt("a"), txt("1"))}, ErrUnidentifiableRow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDecoder(NewCodec())
			var err error
			for _, m := range tt.msgs {
				if _, err = d.decodeBytes(m); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func assertChanges(t *testing.T, got, want []*bus.Change) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d changes, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("change %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func FuzzDecodePgoutput(f *testing.F) {
	f.Add(itemsRel, insertMsg(16400, txt("1"), txt("a"), txt("1")))
	f.Add(itemsRel, updateMsg(16400, 'K', []tupleCol{txt("1"), null, null}, txt("2"), toast, null))
	f.Add(itemsRel, deleteMsg(16400, 'O', txt("1"), txt("a"), txt("1")))
	f.Add(itemsRel, truncateMsg(16400, 5))
	f.Add(beginMsg(1, t0, 1), commitMsg(1, 2, t0))
	f.Fuzz(func(t *testing.T, first, second []byte) {
		d := newDecoder(NewCodec())
		// The decoder must reject or decode anything without panicking.
		_, _ = d.decodeBytes(first)
		_, _ = d.decodeBytes(beginMsg(1, t0, 1))
		res, err := d.decodeBytes(second)
		if err != nil {
			return
		}
		for _, c := range res.changes {
			if c.V != bus.SchemaVersion || c.LSN != 1 {
				t.Fatalf("change %+v", c)
			}
		}
	})
}

// The decoder's own Insert parser reads what pglogrepl.Parse reads: the
// same relation and columns, or it leaves the message to parseMessage.
func FuzzParseInsertMatchesPglogrepl(f *testing.F) {
	f.Add(insertMsg(16400, txt("1"), txt("a"), txt("1")))
	f.Add(insertMsg(16400, null, toast, txt("")))
	f.Add(insertMsg(7))
	f.Add([]byte("I\x00\x00\x00\x01N\x00\x02t\x00\x00\x00\x05ab"))
	f.Add(updateMsg(16400, 'K', []tupleCol{txt("1"), null, null}, txt("2"), toast, null))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDecoder(NewCodec())
		got, ok := d.parseInsert(data)
		if !ok {
			return
		}
		want, err := parseMessage(data)
		if err != nil {
			t.Fatalf("%q: parsed here, pglogrepl failed: %v", data, err)
		}
		w, isInsert := want.(*pglogrepl.InsertMessage)
		if !isInsert || w.RelationID != got.RelationID || len(w.Tuple.Columns) != len(got.Tuple.Columns) || w.Tuple.ColumnNum != got.Tuple.ColumnNum {
			t.Fatalf("%q: parsed %+v, pglogrepl %+v", data, got, want)
		}
		for i, c := range got.Tuple.Columns {
			wc := w.Tuple.Columns[i]
			if c.DataType != wc.DataType || c.Length != wc.Length || !bytes.Equal(c.Data, wc.Data) {
				t.Fatalf("%q: column %d parsed %+v, pglogrepl %+v", data, i, c, wc)
			}
		}
	})
}

// A published insert handed back with recycle lends its struct and buffers
// to the next insert, which must carry nothing of it; anything but a
// streamed insert is not taken back.
func TestDecoderReusesRecycledInserts(t *testing.T) {
	d := newDecoder(NewCodec())
	changes, _ := decodeAll(t, d, itemsRel, beginMsg(0x1000, t0, 7),
		insertMsg(16400, txt("1"), txt("a long name that fills the row buffer"), txt("1.50")),
		deleteMsg(16400, 'K', txt("1"), null, null))
	first, del := changes[0], changes[1]
	firstRow := string(first.RowJSON)
	d.recycle(first)
	d.recycle(del)
	if len(d.spare) != 1 {
		t.Fatalf("%d changes taken back, want the insert only", len(d.spare))
	}
	changes, _ = decodeAll(t, d, insertMsg(16400, txt("2"), null, txt("3")), commitMsg(0x1000, 0x1030, t0))
	second := changes[0]
	if second != first {
		t.Fatal("the recycled insert was not reused")
	}
	want := &bus.Change{V: bus.SchemaVersion, Op: bus.OpInsert, Schema: "public", Table: itemsName, Key: []bus.Column{{Name: "id", Value: int64(2)}},
		RowJSON: json.RawMessage(`{"id":2,"name":null,"price":3}`), KeyInRow: true, LSN: 0x1000, Pos: 2, CommitTime: t0, Xid: 7}
	assertChanges(t, []*bus.Change{second}, []*bus.Change{want})
	if firstRow != `{"id":1,"name":"a long name that fills the row buffer","price":1.50}` {
		t.Fatalf("first row was %s", firstRow)
	}
}

// BenchmarkDecodeInsert decodes a streamed insert of the end-to-end
// benchmark's table into its change, recycling it as the streamer does
// once the change is published.
func BenchmarkDecodeInsert(b *testing.B) {
	d := newDecoder(NewCodec())
	decodeAll(b, d, relationMsg(16800, "public", "items", 'd', relCol{true, "id", oidInt8}, relCol{false, "name", oidText},
		relCol{false, "price", oidNumeric}, relCol{false, "tags", 1009}, relCol{false, "at", oidTimestamptz}), beginMsg(0x3000, t0, 9))
	msg := insertMsg(16800, txt("123456"), txt("item 123456"), txt("1234.56"), txt("{a,b}"), txt("2026-12-07 13:50:01.123456+00"))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := d.decodeBytes(msg)
		if err != nil || len(res.changes) != 1 {
			b.Fatal(res, err)
		}
		d.recycle(res.changes[0])
	}
}
