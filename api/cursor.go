package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// cursorVersion is the encoding of cursors made by this build.
const cursorVersion = 1

// MaxCursorLength bounds a cursor token.
const MaxCursorLength = 16 << 10

// cursor is the state of a scroll: the query and where the last page ended.
// It travels to the client and back, signed, so the server keeps nothing.
type cursor struct {
	V       int                        `json:"v"`
	Index   string                     `json:"i"`
	Filters map[string]json.RawMessage `json:"qf,omitempty"`
	Q       string                     `json:"q,omitempty"`
	Sort    []sortField                `json:"s,omitempty"`
	Fields  []string                   `json:"f,omitempty"`
	Exclude []string                   `json:"x,omitempty"`
	Size    int                        `json:"n"`
	// After holds the sort values of the last document returned.
	After []json.RawMessage `json:"a"`
}

// cursorCodec signs and checks cursors with HMAC-SHA256. A cursor whose
// payload or signature was changed in any way fails to decode: it can never
// turn into a different query.
type cursorCodec struct{ key []byte }

func newCursorCodec(secret string) (*cursorCodec, error) {
	if secret != "" {
		sum := sha256.Sum256([]byte("walsearch cursor\x00" + secret))
		return &cursorCodec{key: sum[:]}, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make cursor key: %w", err)
	}
	return &cursorCodec{key: key}, nil
}

func (cc *cursorCodec) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, cc.key)
	m.Write(payload)
	return m.Sum(nil)
}

// encode returns the token for cur.
func (cc *cursorCodec) encode(cur *cursor) (string, error) {
	cur.V = cursorVersion
	payload, err := json.Marshal(cur)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(cc.mac(payload)), nil
}

var errBadCursor = &Error{Status: http.StatusBadRequest, Code: CodeInvalidCursor,
	Message: "cursor is invalid, was modified, or was issued by another server; start again without a cursor"}

// decode checks token's signature and returns its cursor.
func (cc *cursorCodec) decode(token string) (*cursor, error) {
	if len(token) == 0 || len(token) > MaxCursorLength {
		return nil, errBadCursor
	}
	for i := 0; i < len(token); i++ {
		// The decoder skips CR and LF; a cursor has one spelling only.
		c := token[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, errBadCursor
		}
	}
	p, s, ok := strings.Cut(token, ".")
	if !ok {
		return nil, errBadCursor
	}
	enc := base64.RawURLEncoding.Strict() // no second spelling of the same bytes
	payload, err1 := enc.DecodeString(p)
	sig, err2 := enc.DecodeString(s)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, cc.mac(payload)) {
		return nil, errBadCursor
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var cur cursor
	if err := dec.Decode(&cur); err != nil {
		return nil, errBadCursor
	}
	if cur.V != cursorVersion || cur.Size < 1 || cur.Size > MaxPageSize || len(cur.After) == 0 {
		return nil, errBadCursor
	}
	return &cur, nil
}
