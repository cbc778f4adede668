package bus

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is the version of the event encoding written by this build.
// Readers reject events with a higher version instead of guessing at them.
// Version 2 added the read batch (see ReadBatch), version 3 the insert
// batch (see EncodeChanges); a reader reads every older version's events
// as they are.
const SchemaVersion = 3

// Op is what happened to a row.
type Op string

// The operations a change event can carry.
const (
	OpInsert   Op = "insert"
	OpUpdate   Op = "update"
	OpDelete   Op = "delete"
	OpTruncate Op = "truncate"
	// OpRead is a row read by the initial snapshot or a backfill, not by the log.
	OpRead Op = "read"
	// OpWatermark carries no row. Its LSN says that every transaction that
	// committed before LSN was published before this event. Stages pass it on
	// in order; the sink records it once everything before it is written, which
	// is what read-your-writes waits for.
	OpWatermark Op = "watermark"
)

// Watermark subject tokens: a reserved schema no PostgreSQL table can have
// (identifiers cannot start with "~" unquoted, and EscapeToken encodes it).
const (
	WatermarkSchema = "~walsearch"
	WatermarkTable  = "watermark"
)

// NewWatermark returns the watermark event for lsn.
func NewWatermark(lsn LSN) *Change {
	return &Change{Op: OpWatermark, Schema: WatermarkSchema, Table: WatermarkTable, LSN: lsn}
}

// Change is one row-level change captured from PostgreSQL, after type conversion.
// It is published on ChangeSubject(schema, table).
type Change struct {
	V      int    `json:"v"`
	Op     Op     `json:"op"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// Key holds the primary-key (or replica-identity) columns in key order.
	// Empty for OpTruncate.
	Key []Column `json:"key,omitempty"`
	// Row is the new row for insert, update and read; nil for delete and truncate.
	// Values are JSON-ready (see the capture package's type codec).
	Row map[string]any `json:"row,omitempty"`
	// RowJSON, when set, is the row already encoded as a JSON object; the
	// publisher writes it instead of Row. It lets a producer that reads rows
	// as text (the snapshot, streamed inserts) skip building Row. Readers
	// of DecodeChanges always get Row.
	RowJSON json.RawMessage `json:"-"`
	// KeyInRow is the producer's word that RowJSON holds every key column
	// with the value in Key (both were made from one tuple), which lets an
	// insert with RowJSON travel in an insert batch. It does not travel.
	KeyInRow bool `json:"-"`
	// Unchanged names TOASTed columns whose value did not change and was not sent:
	// they are absent from Row and must be left as they are in the index.
	Unchanged []string `json:"unchanged,omitempty"`
	// From is the old key of a row whose key an UPDATE changed, on the insert
	// of its new key, when Unchanged is not empty: the unchanged values are
	// then those of the document at From (the delete of From comes right
	// before this change, in the same message).
	From []Column `json:"from,omitempty"`
	// Old holds the row's previous values as far as its table's replica
	// identity sends them, for an update or delete of a table with
	// REPLICA IDENTITY FULL or USING INDEX; nil otherwise (the default
	// identity's old values are the key, in Key). Documents built from
	// related tables need them to tell which document a row left.
	Old map[string]any `json:"old,omitempty"`
	// OldJSON, when set, is Old still encoded; readers get it instead of Old
	// (see DecodeOld).
	OldJSON json.RawMessage `json:"-"`
	// LSN is the commit LSN of the transaction (the snapshot's consistent point for
	// OpRead). It orders versions of a row: a later commit always has a higher LSN.
	LSN LSN `json:"lsn"`
	// Pos is the position of this change within its transaction (or snapshot chunk).
	Pos uint64 `json:"pos"`
	// CommitTime is when the transaction committed (zero for OpRead).
	CommitTime time.Time `json:"commit_time,omitzero"`
	// Xid is the transaction's id as the log sends it (32 bits); 0 for
	// OpRead and for events written before it was recorded.
	Xid uint32 `json:"xid,omitempty"`
}

// Column is a named value.
type Column struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// MsgID is the JetStream message id of the change: derived from its position in
// the log so that republishing it after a crash is dropped as a duplicate.
func (c *Change) MsgID() string {
	if c.Op == OpRead {
		return "r:" + c.LSN.String() + ":" + c.Schema + "." + c.Table + ":" + DocumentID(c.Key)
	}
	return "c:" + c.LSN.String() + ":" + strconv.FormatUint(c.Pos, 10)
}

// DocOp is what the sink must do with a document.
type DocOp string

// The operations a document event can carry.
const (
	DocIndex  DocOp = "index"
	DocDelete DocOp = "delete"
	// DocTruncate removes every document of Index written before LSN.
	DocTruncate DocOp = "truncate"
	// DocWatermark carries a change watermark (see OpWatermark) in Version.
	DocWatermark DocOp = "watermark"
)

// WatermarkIndex is the index token of watermark document events.
const WatermarkIndex = "~walsearch.watermark"

// Doc is one document write for the search index, produced by transform and
// consumed by the sink. It is published on DocSubject(index).
type Doc struct {
	V     int    `json:"v"`
	Op    DocOp  `json:"op"`
	Index string `json:"index"`
	ID    string `json:"id,omitempty"`
	// Source is the document for DocIndex.
	Source json.RawMessage `json:"source,omitempty"`
	// Unchanged lists top-level fields of Source's row that were not sent by
	// PostgreSQL (unchanged TOAST values): the sink must keep their indexed value.
	Unchanged []string `json:"unchanged,omitempty"`
	// From is the id, in the same index, of the document this one moved
	// from (the row's key changed): Unchanged values are taken from it, and
	// the sink deletes it only after this document is written.
	From string `json:"from,omitempty"`
	// Version is the external version of the write (the commit LSN).
	Version uint64 `json:"version"`
	// Origin identifies the change that produced this document.
	Schema     string    `json:"schema"`
	Table      string    `json:"table"`
	Pos        uint64    `json:"pos"`
	CommitTime time.Time `json:"commit_time,omitzero"`
}

// MsgID is the JetStream message id of the document event.
func (d *Doc) MsgID() string {
	return "d:" + strconv.FormatUint(d.Version, 10) + ":" + strconv.FormatUint(d.Pos, 10) + ":" + d.Index + ":" + d.ID
}

// LSN is a PostgreSQL log sequence number. It is encoded as PostgreSQL prints
// it ("16/B374D848") so that events and status output read like the server's.
type LSN uint64

// String formats l as PostgreSQL does.
func (l LSN) String() string {
	var b [17]byte
	return string(l.appendTo(b[:0]))
}

// appendTo appends l as PostgreSQL prints it: two upper-case hex numbers.
func (l LSN) appendTo(b []byte) []byte {
	b = appendHex(b, uint64(l)>>32)
	b = append(b, '/')
	return appendHex(b, uint64(uint32(l)))
}

func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789ABCDEF"
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = digits[v&0xf]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// ParseLSN parses the "XXX/XXX" form.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parse lsn %q: want the form 16/B374D848", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse lsn %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse lsn %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// MarshalText implements encoding.TextMarshaler.
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := ParseLSN(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}
