package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/walsearch/walsearch/bus"
)

// relation is what the decoder knows about a published table, from the last
// Relation message (and the catalogue's primary key, when it was looked up).
type relation struct {
	id       uint32
	schema   string
	table    string
	identity byte // relreplident: d default, n nothing, f full, i index
	columns  []relColumn
	// members are, per column, `"name":` as the column's member starts in
	// the row's JSON object (after a comma but for the first).
	members [][]byte
	key     []int // indexes into columns, in key order
	// rowSize is the encoded size of the last row encoded from text (a
	// snapshot or backfill row, a streamed insert), to size the next one's
	// buffer (backfill chunks may share the relation).
	rowSize atomic.Int64
}

type relColumn struct {
	name  string
	oid   uint32
	isKey bool // flagged as part of the replica identity
}

// skipped reports whether changes of the table cannot be keyed and are dropped.
func (r *relation) skipped() bool { return len(r.key) == 0 }

func (r *relation) qualifiedName() string { return r.schema + "." + r.table }

// decoded is what one pgoutput message produced. changes may be the
// decoder's own slice: read it before decoding the next message.
type decoded struct {
	changes []*bus.Change
	// commit is set for a Commit message; end is the transaction's end LSN,
	// the position to confirm once its changes are durable.
	commit bool
	end    bus.LSN
	// relation is set for a Relation message, after it was applied.
	relation *relation
}

// decoder turns pgoutput messages into change events. It is pure: it keeps
// relation metadata and transaction state, and does no I/O. It is not safe
// for concurrent use.
type decoder struct {
	codec      *Codec
	rels       map[uint32]*relation
	inTx       bool
	lsn        bus.LSN
	commitTime time.Time
	xid        uint32
	pos        uint64

	// ins is the Insert message decodeBytes parses into, its columns
	// pointing into the message's bytes: valid until the next message.
	ins     pglogrepl.InsertMessage
	insData pglogrepl.TupleData
	insCols []pglogrepl.TupleDataColumn
	// keyScratch holds an insert's key columns while they are decoded.
	keyScratch []*pglogrepl.TupleDataColumn
	// spare holds streamed inserts handed back by recycle once published,
	// with their key and row buffers, for the next inserts to reuse.
	spare []*bus.Change
	// one holds a streamed insert's change as decoded.changes.
	one [1]*bus.Change
}

// maxSpare bounds the inserts kept for reuse: one message's worth.
const maxSpare = bus.MaxBatchEvents + 1

// recycle takes back a streamed insert the decoder made (KeyInRow) once
// it was published and nothing refers to it any more: its struct and its
// key and row buffers are reused by a later insert. Anything else is left
// to the garbage collector. Most of capture's allocations on a large
// INSERT were these, made and dropped for every row.
func (d *decoder) recycle(c *bus.Change) {
	if c.KeyInRow && len(d.spare) < maxSpare {
		d.spare = append(d.spare, c)
	}
}

func newDecoder(codec *Codec) *decoder {
	return &decoder{codec: codec, rels: make(map[uint32]*relation)}
}

// parseMessage parses one pgoutput message. pglogrepl trusts lengths inside
// the message, so a malformed message is turned from a panic into an error.
func parseMessage(data []byte) (msg pglogrepl.Message, err error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrProtocol)
	}
	if !lengthsFit(data) {
		return nil, fmt.Errorf("%w: malformed %q message: a length overruns the message", ErrProtocol, data[0])
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("%w: malformed %q message: %v", ErrProtocol, data[0], r)
		}
	}()
	msg, err = pglogrepl.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: parse %q message: %w", ErrProtocol, data[0], err)
	}
	return msg, nil
}

// lengthsFit walks the tuples of an Insert, Update or Delete message and the
// relation list of a Truncate message, and reports whether every declared
// length fits in the message, so that a corrupt length is rejected before
// pglogrepl allocates it.
func lengthsFit(data []byte) bool {
	if len(data) < 6 {
		return true // too short for a tuple: pglogrepl reports the length
	}
	i := 5 // type byte and relation id
	switch data[0] {
	case 'T':
		n := uint64(binary.BigEndian.Uint32(data[1:]))
		return n*4 <= uint64(len(data)-6)
	case 'I', 'D':
		return tupleFits(data, i+1) >= 0
	case 'U':
		if data[i] == 'K' || data[i] == 'O' {
			if i = tupleFits(data, i+1); i < 0 || i >= len(data) {
				return false
			}
		}
		return tupleFits(data, i+1) >= 0
	}
	return true
}

// tupleFits checks one TupleData starting at i and returns the offset after
// it, or -1.
func tupleFits(data []byte, i int) int {
	if i+2 > len(data) {
		return -1
	}
	n := int(binary.BigEndian.Uint16(data[i:]))
	i += 2
	for range n {
		if i >= len(data) {
			return -1
		}
		kind := data[i]
		i++
		if kind == 't' || kind == 'b' {
			if i+4 > len(data) {
				return -1
			}
			l := int(binary.BigEndian.Uint32(data[i:]))
			i += 4
			if l > len(data)-i {
				return -1
			}
			i += l
		}
	}
	return i
}

// decodeBytes parses and decodes one message.
func (d *decoder) decodeBytes(data []byte) (decoded, error) {
	if m, ok := d.parseInsert(data); ok {
		return d.decode(m)
	}
	msg, err := parseMessage(data)
	if err != nil {
		return decoded{}, err
	}
	return d.decode(msg)
}

// parseInsert parses an Insert message as pglogrepl.Parse does, into the
// decoder's own message, whose column values are slices of data instead
// of copies: pglogrepl allocates every column and copies its value byte by
// byte, about 15 allocations for a row of five columns, which made a
// quarter of capture's time on a large INSERT. ok is false for any other
// message, and for one whose lengths do not fit (parseMessage reports it).
func (d *decoder) parseInsert(data []byte) (*pglogrepl.InsertMessage, bool) {
	if len(data) < 9 || data[0] != 'I' || data[5] != 'N' || !lengthsFit(data) {
		return nil, false
	}
	i := 6
	n := int(binary.BigEndian.Uint16(data[i:]))
	i += 2
	d.insCols = slices.Grow(d.insCols[:0], n)[:n]
	d.insData.Columns = slices.Grow(d.insData.Columns[:0], n)[:n]
	for k := range n {
		c := &d.insCols[k]
		*c = pglogrepl.TupleDataColumn{DataType: data[i]}
		i++
		if c.DataType == pglogrepl.TupleDataTypeText || c.DataType == pglogrepl.TupleDataTypeBinary {
			c.Length = binary.BigEndian.Uint32(data[i:])
			i += 4
			c.Data = data[i : i+int(c.Length) : i+int(c.Length)]
			i += int(c.Length)
		}
		d.insData.Columns[k] = c
	}
	d.insData.ColumnNum = uint16(n)
	d.ins = pglogrepl.InsertMessage{RelationID: binary.BigEndian.Uint32(data[1:]), Tuple: &d.insData}
	return &d.ins, true
}

// decode applies one message.
func (d *decoder) decode(msg pglogrepl.Message) (decoded, error) {
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		if d.inTx {
			return decoded{}, fmt.Errorf("%w: begin inside a transaction", ErrProtocol)
		}
		d.inTx, d.lsn, d.commitTime, d.xid, d.pos = true, bus.LSN(m.FinalLSN), m.CommitTime.UTC(), m.Xid, 0
		return decoded{}, nil
	case *pglogrepl.CommitMessage:
		if !d.inTx {
			return decoded{}, fmt.Errorf("%w: commit outside a transaction", ErrProtocol)
		}
		d.inTx = false
		return decoded{commit: true, end: bus.LSN(m.TransactionEndLSN)}, nil
	case *pglogrepl.RelationMessage:
		return decoded{relation: d.applyRelation(m)}, nil
	case *pglogrepl.InsertMessage:
		return d.rowChange(m.RelationID, func(r *relation) ([]*bus.Change, error) { return d.insert(r, m) })
	case *pglogrepl.UpdateMessage:
		return d.rowChange(m.RelationID, func(r *relation) ([]*bus.Change, error) { return d.update(r, m) })
	case *pglogrepl.DeleteMessage:
		return d.rowChange(m.RelationID, func(r *relation) ([]*bus.Change, error) { return d.delete(r, m) })
	case *pglogrepl.TruncateMessage:
		return d.truncate(m)
	case *pglogrepl.TypeMessage, *pglogrepl.OriginMessage, *pglogrepl.LogicalDecodingMessage:
		// Types are resolved through the catalogue; origins and logical
		// messages carry no row changes.
		return decoded{}, nil
	}
	return decoded{}, fmt.Errorf("%w: unexpected message %T", ErrProtocol, msg)
}

// applyRelation records a table's shape. A Relation message is sent before
// the first change of a table in a session and again after its schema
// changed, so columns may differ from the previous one.
func (d *decoder) applyRelation(m *pglogrepl.RelationMessage) *relation {
	r := &relation{id: m.RelationID, schema: m.Namespace, table: m.RelationName, identity: m.ReplicaIdentity}
	for i, c := range m.Columns {
		isKey := c.Flags&1 != 0
		r.columns = append(r.columns, relColumn{name: c.Name, oid: c.DataType, isKey: isKey})
		if isKey {
			r.key = append(r.key, i)
		}
	}
	if r.identity == 'n' {
		r.key = nil
	}
	r.members = memberNames(r.columns)
	d.rels[r.id] = r
	return r
}

// memberNames returns, per column, `"name":` as the column's member starts
// in a row's JSON object, after a comma but for the first.
func memberNames(cols []relColumn) [][]byte {
	out := make([][]byte, len(cols))
	for i, col := range cols {
		var n []byte
		if i > 0 {
			n = append(n, ',')
		}
		out[i] = append(bus.AppendJSONString(n, col.name), ':')
	}
	return out
}

// preferKey sets a table's key to the named columns (its primary key or
// replica identity index, in key order) when all of them are part of the
// replica identity; the flagged columns in table order stay the key otherwise.
// It must be called again after every Relation message for the table.
func (d *decoder) preferKey(relID uint32, names []string) {
	if r, ok := d.rels[relID]; ok && r.identity != 'n' {
		r.setKey(names)
	}
}

// setKey makes the named columns the key, if all of them exist and are sent
// in old-key tuples.
func (r *relation) setKey(names []string) bool {
	if len(names) == 0 {
		return false
	}
	key := make([]int, 0, len(names))
	for _, n := range names {
		found := -1
		for i, c := range r.columns {
			if c.name == n && c.isKey {
				found = i
				break
			}
		}
		if found < 0 {
			return false
		}
		key = append(key, found)
	}
	r.key = key
	return true
}

func (d *decoder) rowChange(relID uint32, fn func(*relation) ([]*bus.Change, error)) (decoded, error) {
	if !d.inTx {
		return decoded{}, fmt.Errorf("%w: row change outside a transaction", ErrProtocol)
	}
	r, ok := d.rels[relID]
	if !ok {
		return decoded{}, fmt.Errorf("%w: change for relation %d before its Relation message", ErrProtocol, relID)
	}
	if r.skipped() {
		return decoded{}, nil
	}
	changes, err := fn(r)
	if err != nil {
		return decoded{}, err
	}
	return decoded{changes: changes}, nil
}

func (d *decoder) newChange(op bus.Op, r *relation) *bus.Change {
	c := new(bus.Change)
	d.initChange(c, op, r)
	return c
}

// initChange sets a zero change's envelope: the next position of the
// transaction.
func (d *decoder) initChange(c *bus.Change, op bus.Op, r *relation) {
	c.V, c.Op, c.Schema, c.Table = bus.SchemaVersion, op, r.schema, r.table
	c.LSN, c.Pos, c.CommitTime, c.Xid = d.lsn, d.pos, d.commitTime, d.xid
	d.pos++
}

// tupleColumns checks a tuple against the relation's shape.
func tupleColumns(r *relation, t *pglogrepl.TupleData, what string) ([]*pglogrepl.TupleDataColumn, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: %s of %s has no tuple", ErrProtocol, what, r.qualifiedName())
	}
	if len(t.Columns) != len(r.columns) {
		return nil, fmt.Errorf("%w: %s of %s has %d columns, relation has %d",
			ErrProtocol, what, r.qualifiedName(), len(t.Columns), len(r.columns))
	}
	for _, c := range t.Columns {
		if c.DataType == pglogrepl.TupleDataTypeBinary {
			return nil, fmt.Errorf("%w: %s of %s has a binary value; text was requested", ErrProtocol, what, r.qualifiedName())
		}
	}
	return t.Columns, nil
}

func (d *decoder) value(col relColumn, c *pglogrepl.TupleDataColumn) any {
	if c.DataType != pglogrepl.TupleDataTypeText {
		return nil
	}
	return d.codec.DecodeText(col.oid, string(c.Data))
}

// row converts a new tuple. Unchanged TOAST values are taken from the old
// tuple when it has them (REPLICA IDENTITY FULL), else named in unchanged.
func (d *decoder) row(r *relation, cols, old []*pglogrepl.TupleDataColumn) (row map[string]any, unchanged []string) {
	row = make(map[string]any, len(cols))
	for i, c := range cols {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			if old != nil && old[i].DataType == pglogrepl.TupleDataTypeText {
				row[r.columns[i].name] = d.value(r.columns[i], old[i])
				continue
			}
			unchanged = append(unchanged, r.columns[i].name)
			continue
		}
		row[r.columns[i].name] = d.value(r.columns[i], c)
	}
	return row, unchanged
}

// keyText returns the raw key values of a tuple, falling back to old for
// columns sent as unchanged TOAST, in dst's array when it is large enough.
func keyText(dst []*pglogrepl.TupleDataColumn, r *relation, cols, old []*pglogrepl.TupleDataColumn) ([]*pglogrepl.TupleDataColumn, error) {
	out := slices.Grow(dst[:0], len(r.key))[:len(r.key)]
	for i, k := range r.key {
		c := cols[k]
		if c.DataType == pglogrepl.TupleDataTypeToast {
			if old == nil || old[k].DataType == pglogrepl.TupleDataTypeToast {
				return nil, fmt.Errorf("%w: key column %s of %s was not sent", ErrUnidentifiableRow, r.columns[k].name, r.qualifiedName())
			}
			c = old[k]
		}
		out[i] = c
	}
	return out, nil
}

func (d *decoder) key(r *relation, kc []*pglogrepl.TupleDataColumn) []bus.Column {
	return d.appendKey(nil, r, kc)
}

// appendKey is key in dst's array when it is large enough.
func (d *decoder) appendKey(dst []bus.Column, r *relation, kc []*pglogrepl.TupleDataColumn) []bus.Column {
	key := slices.Grow(dst[:0], len(r.key))[:len(r.key)]
	for i, k := range r.key {
		key[i] = bus.Column{Name: r.columns[k].name, Value: d.value(r.columns[k], kc[i])}
	}
	return key
}

func sameKey(a, b []*pglogrepl.TupleDataColumn) bool {
	for i := range a {
		if a[i].DataType != b[i].DataType || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func (d *decoder) insert(r *relation, m *pglogrepl.InsertMessage) ([]*bus.Change, error) {
	cols, err := tupleColumns(r, m.Tuple, "insert")
	if err != nil {
		return nil, err
	}
	// The key's text is decoded into c.Key right away: a scratch slice will do.
	kc, err := keyText(d.keyScratch, r, cols, nil)
	if err != nil {
		return nil, err
	}
	d.keyScratch = kc
	var c *bus.Change
	var keyBuf []bus.Column
	var rowBuf []byte
	if n := len(d.spare); n > 0 {
		c, d.spare = d.spare[n-1], d.spare[:n-1]
		keyBuf, rowBuf = c.Key[:0], c.RowJSON[:0]
		*c = bus.Change{}
	} else {
		c = new(bus.Change)
	}
	d.initChange(c, bus.OpInsert, r)
	c.Key = d.appendKey(keyBuf, r, kc)
	if isWatermarkTable(r.schema, r.table) || isOwnersTable(r.schema, r.table) || sendsUnchanged(cols) {
		// Capture reads walsearch's own rows (signals) as values; an
		// unchanged TOAST value, which an insert never has, goes the way
		// of an update's.
		c.Row, c.Unchanged = d.row(r, cols, nil)
		return []*bus.Change{c}, nil
	}
	if c.RowJSON, err = d.rowJSON(rowBuf, r, cols); err != nil {
		return nil, err
	}
	c.KeyInRow = true
	// decoded.changes is read before the next message: one slice will do.
	d.one[0] = c
	return d.one[:], nil
}

func sendsUnchanged(cols []*pglogrepl.TupleDataColumn) bool {
	for _, c := range cols {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			return true
		}
	}
	return false
}

// rowJSON encodes an insert's tuple, which has every value, as a JSON
// object in table order, straight from the values' text as a snapshot row
// is (see rowEncoder): no map, no boxed values, and nothing for the
// publisher to encode again, which made about a third of capture's time on
// a large INSERT.
func (d *decoder) rowJSON(dst []byte, r *relation, cols []*pglogrepl.TupleDataColumn) ([]byte, error) {
	// The values' text is made a string once, for the row, rather than
	// once per column (most of capture's allocations on a large INSERT).
	var sb strings.Builder
	size := 0
	for _, c := range cols {
		size += len(c.Data)
	}
	sb.Grow(size)
	for _, c := range cols {
		sb.Write(c.Data)
	}
	texts := sb.String()
	b := slices.Grow(dst[:0], int(r.rowSize.Load())+64)
	b = append(b, '{')
	for i, c := range cols {
		text := texts[:len(c.Data)]
		texts = texts[len(c.Data):]
		// Anything but a text value is NULL here, as value gives it.
		null := c.DataType != pglogrepl.TupleDataTypeText
		var err error
		if b, err = appendMember(b, d.codec, r, i, text, null); err != nil {
			return nil, err
		}
	}
	r.rowSize.Store(int64(len(b)))
	return append(b, '}'), nil
}

// update emits an update, or a delete of the old key and an insert of the
// new row when the key changed, so that the old document does not linger.
func (d *decoder) update(r *relation, m *pglogrepl.UpdateMessage) ([]*bus.Change, error) {
	cols, err := tupleColumns(r, m.NewTuple, "update")
	if err != nil {
		return nil, err
	}
	var old []*pglogrepl.TupleDataColumn
	if m.OldTuple != nil {
		if old, err = tupleColumns(r, m.OldTuple, "update old key"); err != nil {
			return nil, err
		}
	}
	newKey, err := keyText(nil, r, cols, old)
	if err != nil {
		return nil, err
	}
	var out []*bus.Change
	if old != nil {
		oldKey, err := keyText(nil, r, old, nil)
		if err != nil {
			return nil, err
		}
		if !sameKey(oldKey, newKey) {
			del := d.newChange(bus.OpDelete, r)
			del.Key = d.key(r, oldKey)
			out = append(out, del)
		}
	}
	op := bus.OpUpdate
	if len(out) > 0 {
		op = bus.OpInsert
	}
	c := d.newChange(op, r)
	c.Key = d.key(r, newKey)
	c.Row, c.Unchanged = d.row(r, cols, old)
	if len(out) > 0 && len(c.Unchanged) > 0 {
		// The unchanged values are those of the old key's document.
		c.From = out[0].Key
	}
	c.Old = d.old(r, old)
	return append(out, c), nil
}

func (d *decoder) delete(r *relation, m *pglogrepl.DeleteMessage) ([]*bus.Change, error) {
	old, err := tupleColumns(r, m.OldTuple, "delete")
	if err != nil {
		return nil, err
	}
	kc, err := keyText(nil, r, old, nil)
	if err != nil {
		return nil, err
	}
	c := d.newChange(bus.OpDelete, r)
	c.Key = d.key(r, kc)
	c.Old = d.old(r, old)
	return []*bus.Change{c}, nil
}

// old converts an old tuple's values for Change.Old: every value sent
// for REPLICA IDENTITY FULL, the index's columns for USING INDEX, none
// for the default identity (its old values are the key).
func (d *decoder) old(r *relation, old []*pglogrepl.TupleDataColumn) map[string]any {
	if old == nil || (r.identity != 'f' && r.identity != 'i') {
		return nil
	}
	out := make(map[string]any, len(old))
	for i, c := range old {
		col := r.columns[i]
		if c.DataType == pglogrepl.TupleDataTypeToast || (r.identity == 'i' && !col.isKey) {
			continue
		}
		out[col.name] = d.value(col, c)
	}
	return out
}

func (d *decoder) truncate(m *pglogrepl.TruncateMessage) (decoded, error) {
	if !d.inTx {
		return decoded{}, fmt.Errorf("%w: truncate outside a transaction", ErrProtocol)
	}
	var out decoded
	for _, id := range m.RelationIDs {
		r, ok := d.rels[id]
		if !ok {
			return decoded{}, fmt.Errorf("%w: truncate of relation %d before its Relation message", ErrProtocol, id)
		}
		if r.skipped() {
			continue
		}
		out.changes = append(out.changes, d.newChange(bus.OpTruncate, r))
	}
	return out, nil
}
