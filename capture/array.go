package capture

import (
	"errors"
	"strings"
)

// arrayValue is a parsed array literal: each element is either a nested
// arrayValue (another dimension), a *string (nil for NULL).
type arrayValue []any

var errArraySyntax = errors.New("malformed array literal")

// parseArray parses PostgreSQL's array output ({1,2,NULL}, {{"a b",c},{d,e}},
// [0:1]={1,2}) into nested arrayValues. delim is the element type's delimiter
// (',' for every type except box).
func parseArray(s string, delim byte) (arrayValue, error) {
	if strings.HasPrefix(s, "[") {
		// Dimension decoration for lower bounds other than 1: the bounds do
		// not survive in JSON, the elements do.
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errArraySyntax
		}
		s = s[eq+1:]
	}
	p := arrayParser{s: s, delim: delim}
	p.skipSpace()
	v, err := p.array(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return nil, errArraySyntax
	}
	return v, nil
}

// maxArrayDims is PostgreSQL's MAXDIM.
const maxArrayDims = 6

type arrayParser struct {
	s     string
	i     int
	delim byte
}

func (p *arrayParser) skipSpace() {
	for p.i < len(p.s) && isArraySpace(p.s[p.i]) {
		p.i++
	}
}

func isArraySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func (p *arrayParser) array(depth int) (arrayValue, error) {
	if depth >= maxArrayDims || p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, errArraySyntax
	}
	p.i++
	out := arrayValue{}
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return out, nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, errArraySyntax
		}
		var el any
		var err error
		switch p.s[p.i] {
		case '{':
			el, err = p.array(depth + 1)
		case '"':
			el, err = p.quoted()
		default:
			el, err = p.unquoted()
		}
		if err != nil {
			return nil, err
		}
		out = append(out, el)
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, errArraySyntax
		}
		switch p.s[p.i] {
		case p.delim:
			p.i++
		case '}':
			p.i++
			return out, nil
		default:
			return nil, errArraySyntax
		}
	}
}

func (p *arrayParser) quoted() (*string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '\\':
			if p.i+1 >= len(p.s) {
				return nil, errArraySyntax
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case '"':
			p.i++
			v := b.String()
			return &v, nil
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return nil, errArraySyntax
}

func (p *arrayParser) unquoted() (*string, error) {
	var b strings.Builder
	// Trailing unescaped whitespace is not part of the element.
	keep := 0
	escaped := false
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == p.delim || c == '}' {
			break
		}
		if c == '{' || c == '"' {
			return nil, errArraySyntax
		}
		if c == '\\' {
			if p.i+1 >= len(p.s) {
				return nil, errArraySyntax
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
			keep = b.Len()
			escaped = true
			continue
		}
		b.WriteByte(c)
		p.i++
		if !isArraySpace(c) {
			keep = b.Len()
		}
	}
	v := b.String()[:keep]
	if v == "" {
		return nil, errArraySyntax
	}
	if !escaped && strings.EqualFold(v, "NULL") {
		return nil, nil
	}
	return &v, nil
}

// convert maps every non-NULL element through fn, keeping the dimensions.
func (a arrayValue) convert(fn func(string) any) []any {
	out := make([]any, len(a))
	for i, el := range a {
		switch e := el.(type) {
		case arrayValue:
			out[i] = e.convert(fn)
		case *string:
			if e != nil {
				out[i] = fn(*e)
			}
		}
	}
	return out
}
