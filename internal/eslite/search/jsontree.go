package search

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// kind is the JSON type of a node.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

func (k kind) String() string {
	switch k {
	case kBool:
		return "VALUE_BOOLEAN"
	case kNumber:
		return "VALUE_NUMBER"
	case kString:
		return "VALUE_STRING"
	case kArray:
		return "START_ARRAY"
	case kObject:
		return "START_OBJECT"
	}
	return "VALUE_NULL"
}

// node is one JSON value with the byte offset where its token starts, so that
// errors can name "[line:col]" the way Elasticsearch's parser does.
type node struct {
	kind  kind
	str   string // string value, or the literal text of a number
	b     bool
	keys  []string
	koffs []int // offsets of the keys
	vals  []*node
	off   int
}

// get returns the value under key in an object node, or nil.
func (n *node) get(key string) *node {
	if n == nil || n.kind != kObject {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// jsonParser is a small recursive-descent parser that keeps token offsets.
type jsonParser struct {
	src   []byte
	pos   int
	depth int
}

// maxJSONDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxJSONDepth = 200

// syntaxError is a JSON syntax problem at a byte offset.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

// parseJSON parses exactly one JSON value (surrounded by optional whitespace).
// Duplicate keys are a syntax error, as they are for Elasticsearch's parser.
func parseJSON(src []byte) (*node, error) {
	p := &jsonParser{src: src}
	p.ws()
	if p.pos >= len(p.src) {
		return nil, &syntaxError{off: p.pos, msg: "unexpected end of input"}
	}
	n, err := p.value()
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos < len(p.src) {
		return nil, &syntaxError{off: p.pos, msg: "unexpected content after the end of the JSON value"}
	}
	return n, nil
}

func (p *jsonParser) ws() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) fail(msg string) error { return &syntaxError{off: p.pos, msg: msg} }

func (p *jsonParser) value() (*node, error) {
	if p.pos >= len(p.src) {
		return nil, p.fail("unexpected end of input")
	}
	start := p.pos
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return &node{kind: kString, str: s, off: start}, nil
	case c == 't':
		if err := p.lit("true"); err != nil {
			return nil, err
		}
		return &node{kind: kBool, b: true, off: start}, nil
	case c == 'f':
		if err := p.lit("false"); err != nil {
			return nil, err
		}
		return &node{kind: kBool, off: start}, nil
	case c == 'n':
		if err := p.lit("null"); err != nil {
			return nil, err
		}
		return &node{kind: kNull, off: start}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.fail("unexpected character '" + string(rune(c)) + "'")
	}
}

func (p *jsonParser) lit(s string) error {
	if len(p.src)-p.pos < len(s) || string(p.src[p.pos:p.pos+len(s)]) != s {
		return p.fail("unrecognized token")
	}
	p.pos += len(s)
	return nil
}

func (p *jsonParser) number() (*node, error) {
	start := p.pos
	if p.src[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.pos < len(p.src) && p.src[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return nil, p.fail("invalid number")
	}
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.fail("invalid number")
		}
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.fail("invalid number")
		}
	}
	return &node{kind: kNumber, str: string(p.src[start:p.pos]), off: start}, nil
}

func (p *jsonParser) string() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	plain := true
	for {
		if p.pos >= len(p.src) {
			return "", &syntaxError{off: start, msg: "unterminated string"}
		}
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			if plain {
				if !utf8.Valid(p.src[start+1 : p.pos-1]) {
					return "", &syntaxError{off: start, msg: "invalid UTF-8 in string"}
				}
				return string(p.src[start+1 : p.pos-1]), nil
			}
			var s string
			if err := json.Unmarshal(p.src[start:p.pos], &s); err != nil {
				return "", &syntaxError{off: start, msg: "invalid string: " + err.Error()}
			}
			return s, nil
		case c == '\\':
			plain = false
			p.pos += 2
		case c < 0x20:
			return "", &syntaxError{off: p.pos, msg: "illegal unquoted character in string"}
		default:
			p.pos++
		}
	}
}

func (p *jsonParser) object() (*node, error) {
	n := &node{kind: kObject, off: p.pos}
	p.depth++
	if p.depth > maxJSONDepth {
		return nil, p.fail("JSON nested too deeply")
	}
	defer func() { p.depth-- }()
	p.pos++
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return n, nil
	}
	for {
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return nil, p.fail("expected a field name")
		}
		koff := p.pos
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		for _, existing := range n.keys {
			if existing == k {
				return nil, &syntaxError{off: koff, msg: "Duplicate field '" + k + "'"}
			}
		}
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, p.fail("expected ':'")
		}
		p.pos++
		p.ws()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, k)
		n.koffs = append(n.koffs, koff)
		n.vals = append(n.vals, v)
		p.ws()
		if p.pos >= len(p.src) {
			return nil, p.fail("unexpected end of input in object")
		}
		if p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.src[p.pos] == '}' {
			p.pos++
			return n, nil
		}
		return nil, p.fail("expected ',' or '}'")
	}
}

func (p *jsonParser) array() (*node, error) {
	n := &node{kind: kArray, off: p.pos}
	p.depth++
	if p.depth > maxJSONDepth {
		return nil, p.fail("JSON nested too deeply")
	}
	defer func() { p.depth-- }()
	p.pos++
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return n, nil
	}
	for {
		p.ws()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		n.vals = append(n.vals, v)
		p.ws()
		if p.pos >= len(p.src) {
			return nil, p.fail("unexpected end of input in array")
		}
		if p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.src[p.pos] == ']' {
			p.pos++
			return n, nil
		}
		return nil, p.fail("expected ',' or ']'")
	}
}

// lineCol turns a byte offset into Elasticsearch's 1-based line and column.
func lineCol(src []byte, off int) (int, int) {
	line, col := 1, 1
	if off > len(src) {
		off = len(src)
	}
	for _, c := range src[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// loc renders the "[line:col]" prefix Elasticsearch puts in front of parse errors.
func loc(src []byte, off int) string {
	l, c := lineCol(src, off)
	return "[" + strconv.Itoa(l) + ":" + strconv.Itoa(c) + "]"
}

// toAny converts a node into plain Go values (json.Number for numbers).
func (n *node) toAny() any {
	switch n.kind {
	case kBool:
		return n.b
	case kNumber:
		return json.Number(n.str)
	case kString:
		return n.str
	case kArray:
		out := make([]any, len(n.vals))
		for i, v := range n.vals {
			out[i] = v.toAny()
		}
		return out
	case kObject:
		out := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			out[k] = n.vals[i].toAny()
		}
		return out
	}
	return nil
}
