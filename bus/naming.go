package bus

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Subject prefixes. A subject token never contains '.', '*', '>' or spaces, so
// schema and table names are escaped with EscapeToken.
const (
	ChangePrefix = "walsearch.change."
	DocPrefix    = "walsearch.doc."
	DLQPrefix    = "walsearch.dlq."
)

// ChangeSubject is the subject change events of schema.table are published on.
func ChangeSubject(schema, table string) string {
	return ChangePrefix + EscapeToken(schema) + "." + EscapeToken(table)
}

// DocSubject is the subject document events for index are published on.
func DocSubject(index string) string {
	return DocPrefix + EscapeToken(index)
}

// DLQSubject is the subject dead-lettered events of stage are published on.
func DLQSubject(stage string) string {
	return DLQPrefix + EscapeToken(stage)
}

// EscapeToken makes s usable as one NATS subject token. Characters outside
// [A-Za-z0-9_-] are written as ~XX (hex), so distinct names stay distinct.
func EscapeToken(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteString(strconv.FormatUint(uint64(c)>>4, 16))
		b.WriteString(strconv.FormatUint(uint64(c)&0xf, 16))
	}
	if b.Len() == 0 {
		return "~"
	}
	return b.String()
}

// UnescapeToken reverses EscapeToken; ok is false for a token EscapeToken
// cannot have written.
func UnescapeToken(tok string) (s string, ok bool) {
	if tok == "~" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] != '~' {
			b.WriteByte(tok[i])
			continue
		}
		if i+3 > len(tok) {
			return "", false
		}
		v, err := strconv.ParseUint(tok[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

// ParseChangeSubject returns the schema and table a change subject
// (ChangeSubject, or PartitionChangeSubject with its partition token) names;
// ok is false for any other subject.
func ParseChangeSubject(subject string) (schema, table string, ok bool) {
	rest, ok := strings.CutPrefix(subject, ChangePrefix)
	if !ok {
		return "", "", false
	}
	if rest, ok = cutPartition(rest, 2); !ok {
		return "", "", false
	}
	s, t, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(t, ".") {
		return "", "", false
	}
	schema, okS := UnescapeToken(s)
	table, okT := UnescapeToken(t)
	if !okS || !okT || table == "" {
		return "", "", false
	}
	return schema, table, true
}

// ParseTable reads a table name as users write it — in postgres.tables, on
// the command line, as a script's folder or a default index name (see
// IndexName): "schema.table", or "table" in the public schema.
func ParseTable(name string) (schema, table string, err error) {
	schema, table, ok := strings.Cut(name, ".")
	if !ok {
		schema, table = "public", name
	}
	if schema == "" || table == "" || strings.Contains(table, ".") {
		return "", "", fmt.Errorf("%q: want schema.table or table (in the public schema)", name)
	}
	return schema, table, nil
}

// IndexName is the search index a table is written to by default: the table
// name for the public schema, "schema.table" otherwise.
func IndexName(schema, table string) string {
	if schema == "public" {
		return table
	}
	return schema + "." + table
}

// DocumentID encodes a primary key as the document _id. A single-column key is
// its value as text (a string as is, a number in decimal). A composite key is
// the JSON array of its values in key order, e.g. [42,"eu"], which is
// deterministic and cannot collide with a single-column id unless that value
// itself is such an array literal.
func DocumentID(key []Column) string {
	if len(key) == 1 {
		if s, ok := scalarText(key[0].Value); ok {
			return s
		}
	}
	vals := make([]any, len(key))
	for i, c := range key {
		vals[i] = c.Value
	}
	b, err := json.Marshal(vals)
	if err != nil {
		// Key values come from the type codec and are JSON-encodable; this is
		// a deterministic last resort, never a silent collision with JSON ids.
		return fmt.Sprint(vals)
	}
	return string(b)
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int:
		return strconv.Itoa(x), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}
