package capture

import (
	"github.com/walsearch/walsearch/bus"

	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// kind is how a PostgreSQL type's text form is converted. Every type maps to
// one kind; types the codec does not know are kindText.
type kind uint8

const (
	kindText kind = iota
	kindInt
	kindNumeric
	kindFloat
	kindBool
	kindJSON
	kindDate
	kindTimestamp
	kindTimestamptz
	kindBytea
	kindArray
)

// typeInfo describes one type OID to the codec.
type typeInfo struct {
	kind  kind
	elem  uint32 // element type of an array
	delim byte   // element delimiter of an array literal
}

// Built-in type OIDs (pg_type.dat). They are fixed across PostgreSQL versions.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidXML         = 142
	oidBox         = 603
	oidCIDR        = 650
	oidFloat4      = 700
	oidFloat8      = 701
	oidMacaddr8    = 774
	oidMoney       = 790
	oidMacaddr     = 829
	oidInet        = 869
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
	oidBit         = 1560
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802

	// firstUserOID is FirstNormalObjectId: OIDs below it are built in.
	firstUserOID = 16384
)

// builtinTypes maps built-in scalar OIDs to their kind.
var builtinScalars = map[uint32]kind{
	oidBool: kindBool, oidBytea: kindBytea, oidChar: kindText, oidName: kindText,
	oidInt8: kindInt, oidInt2: kindInt, oidInt4: kindInt, oidText: kindText, oidOID: kindInt,
	oidJSON: kindJSON, oidXML: kindText, oidBox: kindText, oidCIDR: kindText,
	oidFloat4: kindFloat, oidFloat8: kindFloat, oidMacaddr8: kindText, oidMoney: kindText,
	oidMacaddr: kindText, oidInet: kindText, oidBPChar: kindText, oidVarchar: kindText,
	oidDate: kindDate, oidTime: kindText, oidTimestamp: kindTimestamp,
	oidTimestamptz: kindTimestamptz, oidInterval: kindText, oidTimetz: kindText,
	oidBit: kindText, oidVarbit: kindText, oidNumeric: kindNumeric, oidUUID: kindText,
	oidJSONB: kindJSON,
}

// builtinArrays maps built-in array OIDs to their element OIDs.
var builtinArrays = map[uint32]uint32{
	1000: oidBool, 1001: oidBytea, 1002: oidChar, 1003: oidName, 1016: oidInt8,
	1005: oidInt2, 1007: oidInt4, 1009: oidText, 1028: oidOID, 199: oidJSON, 143: oidXML,
	1020: oidBox, 651: oidCIDR, 1021: oidFloat4, 1022: oidFloat8, 775: oidMacaddr8,
	791: oidMoney, 1040: oidMacaddr, 1041: oidInet, 1014: oidBPChar, 1015: oidVarchar,
	1182: oidDate, 1183: oidTime, 1115: oidTimestamp, 1185: oidTimestamptz,
	1187: oidInterval, 1270: oidTimetz, 1561: oidBit, 1563: oidVarbit, 1231: oidNumeric,
	2951: oidUUID, 3807: oidJSONB,
}

// maxArrayNesting bounds how deep DecodeText follows array element types, so
// that a malformed type catalogue cannot make it recurse forever.
const maxArrayNesting = 4

// Codec converts PostgreSQL values in their text form (as pgoutput and COPY
// send them) to JSON-ready Go values. One Codec serves the snapshot and the
// stream, so that both produce identical rows. docs/types.md has the mapping.
//
// A Codec knows the built-in types; user-defined enums, domains and arrays of
// them are added from the catalogue (see loadTypes). It is safe for concurrent use.
type Codec struct {
	mu    sync.Mutex                // serialises define
	types atomic.Pointer[typeTable] // replaced, never changed: reads take no lock
}

// typeTable is what a Codec knows. Every lookup of a value's type goes
// through it, several per row, so types with small OIDs (every built-in
// one) are also kept in a slice indexed by OID: a slice index costs far less
// than a map access.
type typeTable struct {
	all   map[uint32]typeInfo
	small []typeInfo // by OID, below smallOIDs; zero where unknown (kindText)
}

// smallOIDs bounds the OIDs kept in typeTable.small: the built-in types'
// OIDs are all below it.
const smallOIDs = 4096

func newTypeTable(all map[uint32]typeInfo) *typeTable {
	t := &typeTable{all: all, small: make([]typeInfo, smallOIDs)}
	for oid, ti := range all {
		if oid < smallOIDs {
			t.small[oid] = ti
		}
	}
	return t
}

// NewCodec returns a codec that knows the built-in types.
func NewCodec() *Codec {
	types := make(map[uint32]typeInfo, len(builtinScalars)+len(builtinArrays))
	for oid, k := range builtinScalars {
		types[oid] = typeInfo{kind: k}
	}
	for oid, elem := range builtinArrays {
		d := byte(',')
		if elem == oidBox {
			d = ';'
		}
		types[oid] = typeInfo{kind: kindArray, elem: elem, delim: d}
	}
	c := &Codec{}
	c.types.Store(newTypeTable(types))
	return c
}

// Known reports whether the codec has a definition for oid.
func (c *Codec) Known(oid uint32) bool {
	_, ok := c.types.Load().all[oid]
	return ok
}

// define adds or replaces the definitions of user types.
func (c *Codec) define(defs map[uint32]typeInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	types := maps.Clone(c.types.Load().all)
	maps.Copy(types, defs)
	c.types.Store(newTypeTable(types))
}

func (c *Codec) lookup(oid uint32) typeInfo {
	t := c.types.Load()
	if oid < smallOIDs {
		return t.small[oid]
	}
	return t.all[oid] // zero value: kindText
}

// DecodeText converts the text form of a value of type oid. It never fails: a
// value that does not parse as its type is returned as its text, so that one
// odd value never stops the pipeline. NULL is handled by the caller (nil).
func (c *Codec) DecodeText(oid uint32, text string) any {
	return c.decode(oid, text, 0)
}

// AppendJSON appends the JSON encoding of what DecodeText(oid, text)
// returns. The common kinds, arrays of them included, are written straight
// from their text, without building a Go value: the snapshot encodes every
// row this way.
func (c *Codec) AppendJSON(b []byte, oid uint32, text string) ([]byte, error) {
	t := c.lookup(oid)
	if t.kind == kindText {
		return bus.AppendJSONString(b, text), nil // the commonest kind, spared a call
	}
	return c.appendJSON(b, oid, t, text, 0)
}

// appendJSON is AppendJSON for a value of type oid (described by t) met
// depth arrays deep, as decode's depth counts them.
func (c *Codec) appendJSON(b []byte, oid uint32, t typeInfo, text string, depth int) ([]byte, error) {
	switch t.kind {
	case kindText:
		return bus.AppendJSONString(b, text), nil
	case kindInt:
		if plainInt(text) {
			return append(b, text...), nil
		}
	case kindNumeric:
		if validDecimal(text) && shortDecimal(text) {
			return append(b, text...), nil
		}
	case kindBool:
		switch text {
		case "t", "true":
			return append(b, "true"...), nil
		case "f", "false":
			return append(b, "false"...), nil
		}
	case kindDate:
		// Dates and timestamps are digits and punctuation: nothing to escape.
		if out, ok := appendDateText(append(b, '"'), text); ok {
			return append(out, '"'), nil
		}
	case kindTimestamp, kindTimestamptz:
		if out, ok := appendTimestampText(append(b, '"'), text, t.kind == kindTimestamptz); ok {
			return append(out, '"'), nil
		}
	case kindArray:
		if depth >= maxArrayNesting {
			return bus.AppendJSONString(b, text), nil // what decode returns
		}
		if out, ok := c.appendArray(b, t, text, depth); ok {
			return out, nil
		}
	}
	return bus.AppendJSONValue(b, c.decode(oid, text, depth))
}

// appendArray appends the JSON array for the array literal text of type t,
// writing each element as the literal is read. It returns b as it was and
// false when the literal is malformed, when an element does not encode, or
// when the elements are json values: encoding those depends on how deep the
// decoded value nests them, so they go the general way.
func (c *Codec) appendArray(b []byte, t typeInfo, text string, depth int) ([]byte, bool) {
	elem := c.lookup(t.elem)
	if c.holdsJSON(elem, depth+1) {
		return b, false
	}
	p, err := newArrayParser(text, t.delim)
	if err != nil {
		return b, false
	}
	out := b
	prev := arrayEnd
	for {
		tok, err := p.next()
		if err != nil {
			return b, false
		}
		if (tok == arrayOpen || tok == arrayElement) && (prev == arrayElement || prev == arrayClose) {
			out = append(out, ',') // a delimiter was read before tok
		}
		switch tok {
		case arrayOpen:
			out = append(out, '[')
		case arrayClose:
			out = append(out, ']')
		case arrayElement:
			if p.null {
				out = append(out, "null"...)
			} else if out, err = c.appendJSON(out, t.elem, elem, p.elem, depth+1); err != nil {
				return b, false
			}
		case arrayEnd:
			return out, true
		}
		prev = tok
	}
}

// holdsJSON reports whether elements of type elem met depth arrays deep
// decode to json values, themselves or as elements of nested arrays.
func (c *Codec) holdsJSON(elem typeInfo, depth int) bool {
	for elem.kind == kindArray && depth < maxArrayNesting {
		elem = c.lookup(elem.elem)
		depth++
	}
	return elem.kind == kindJSON
}

// plainInt reports whether s is an integer ParseInt accepts and JSON writes
// the same way: an optional '-', then 1 to 18 digits without a leading zero.
func plainInt(s string) bool {
	s, neg := strings.CutPrefix(s, "-")
	if s == "" || len(s) > 18 || (s[0] == '0' && (len(s) > 1 || neg)) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (c *Codec) decode(oid uint32, text string, depth int) any {
	t := c.lookup(oid)
	switch t.kind {
	case kindInt:
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n
		}
	case kindNumeric:
		return decodeNumeric(text)
	case kindFloat:
		return decodeFloat(text)
	case kindBool:
		switch text {
		case "t", "true":
			return true
		case "f", "false":
			return false
		}
	case kindJSON:
		if v, ok := decodeJSON(text); ok {
			return v
		}
	case kindDate:
		if s, ok := formatDate(text); ok {
			return s
		}
	case kindTimestamp:
		if s, ok := formatTimestamp(text, false); ok {
			return s
		}
	case kindTimestamptz:
		if s, ok := formatTimestamp(text, true); ok {
			return s
		}
	case kindBytea:
		if b, ok := decodeBytea(text); ok {
			return base64.StdEncoding.EncodeToString(b)
		}
	case kindArray:
		if depth >= maxArrayNesting {
			break
		}
		arr, err := parseArray(text, t.delim)
		if err != nil {
			break
		}
		return arr.convert(func(s string) any { return c.decode(t.elem, s, depth+1) })
	}
	return text
}

// decodeNumeric keeps a numeric exact: a json.Number when float64 holds the
// same decimal value (so every JSON reader gets it right), else a string.
// NaN and the infinities have no JSON form and become nil.
func decodeNumeric(text string) any {
	switch text {
	case "NaN", "Infinity", "-Infinity":
		return nil
	}
	if !validDecimal(text) {
		return text
	}
	if shortDecimal(text) {
		return json.Number(text)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		return text
	}
	if canonicalDecimal(strconv.FormatFloat(f, 'f', -1, 64)) == canonicalDecimal(text) {
		return json.Number(text)
	}
	return text
}

// validDecimal reports whether s is a plain decimal ([-+]digits[.digits]), the
// only form numeric's output function writes and a valid JSON number once a
// leading '+' is absent.
func validDecimal(s string) bool {
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") {
		return false
	}
	if len(intPart) > 1 && intPart[0] == '0' {
		return false // JSON forbids leading zeros
	}
	for _, p := range []string{intPart, frac} {
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// shortDecimal reports whether the valid decimal s has at most 15
// significant digits and a magnitude well inside float64's normal range:
// float64 then holds its exact decimal value (every decimal of up to 15
// significant digits survives a round trip), so the slow check is not needed.
func shortDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	switch {
	case len(intPart) > 300:
		return false
	case intPart == "":
		trimmed := strings.TrimLeft(frac, "0")
		if len(frac)-len(trimmed) > 290 {
			return false // near the subnormal range
		}
		return len(trimmed) <= 15
	case frac == "":
		return len(strings.TrimRight(intPart, "0")) <= 15
	}
	// Both parts hold a non-zero digit at their outer ends.
	return len(intPart)+len(frac) <= 15
}

// canonicalDecimal strips what does not change a decimal's value: leading
// zeros of the integer part, trailing zeros of the fraction, and a negative zero.
func canonicalDecimal(s string) string {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out
}

// decodeFloat converts real and double precision. NaN and the infinities have
// no JSON form and become nil.
func decodeFloat(text string) any {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return text
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}

// decodeJSON decodes json and jsonb, keeping numbers exact as json.Number.
func decodeJSON(text string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if dec.More() {
		return nil, false
	}
	return v, true
}

// decodeBytea parses bytea output in hex format (\x0a0b) or, for servers set to
// bytea_output = escape, in escape format.
func decodeBytea(text string) ([]byte, bool) {
	if rest, ok := strings.CutPrefix(text, `\x`); ok {
		b, err := hex.DecodeString(rest)
		return b, err == nil
	}
	var out bytes.Buffer
	for i := 0; i < len(text); i++ {
		ch := text[i]
		if ch != '\\' {
			out.WriteByte(ch)
			continue
		}
		if i+1 < len(text) && text[i+1] == '\\' {
			out.WriteByte('\\')
			i++
			continue
		}
		if i+3 < len(text) && text[i+1] >= '0' && text[i+1] <= '3' && isOctal(text[i+2]) && isOctal(text[i+3]) {
			v := (text[i+1]-'0')<<6 | (text[i+2]-'0')<<3 | (text[i+3] - '0')
			out.WriteByte(v)
			i += 3
			continue
		}
		return nil, false
	}
	return out.Bytes(), true
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
