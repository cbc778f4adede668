package search

import (
	"strings"

	bq "github.com/blevesearch/bleve/v2/search/query"
)

// simpleParser reads simple_query_string syntax: + - | " * ( ). It never fails:
// like Elasticsearch, malformed input degrades to plain terms.
type simpleParser struct {
	s   string
	i   int
	c   *compiler
	q   qSimple
	and bool
	dep int
}

func (c *compiler) simple(q qSimple) (bq.Query, *Error) {
	fields := q.fields
	if len(fields) == 0 {
		fields = c.defaultFields()
	}
	q.fields = c.expandFields(fields)
	p := &simpleParser{s: q.text, c: c, q: q, and: q.defaultOp == "and"}
	out, err := p.or()
	if err != nil {
		return nil, err
	}
	if out == nil {
		return matchNone(), nil
	}
	return out, nil
}

func (p *simpleParser) ws() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *simpleParser) or() (bq.Query, *Error) {
	var alts []bq.Query
	for {
		seq, err := p.seq()
		if err != nil {
			return nil, err
		}
		if seq != nil {
			alts = append(alts, seq)
		}
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == '|' {
			p.i++
			continue
		}
		break
	}
	if len(alts) == 0 {
		return nil, nil
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return bq.NewDisjunctionQuery(alts), nil
}

func (p *simpleParser) seq() (bq.Query, *Error) {
	var must, should, not []bq.Query
	for {
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] == '|' || (p.s[p.i] == ')' && p.dep > 0) {
			break
		}
		if p.s[p.i] == ')' {
			p.i++
			continue
		}
		op := byte(0)
		if p.s[p.i] == '+' || p.s[p.i] == '-' {
			op = p.s[p.i]
			p.i++
		}
		q, err := p.primary()
		if err != nil {
			return nil, err
		}
		if q == nil {
			continue
		}
		switch {
		case op == '+' || (op == 0 && p.and):
			must = append(must, q)
		case op == '-':
			not = append(not, q)
		default:
			should = append(should, q)
		}
	}
	if len(must)+len(should)+len(not) == 0 {
		return nil, nil
	}
	b := bq.NewBooleanQuery(nil, nil, nil)
	if len(must) > 0 {
		b.Must = bq.NewConjunctionQuery(must)
	}
	if len(should) > 0 {
		d := bq.NewDisjunctionQuery(should)
		if len(must) == 0 {
			d.SetMin(1)
		}
		b.Should = d
	}
	if len(not) > 0 {
		b.MustNot = bq.NewDisjunctionQuery(not)
	}
	if b.Must == nil && b.Should == nil {
		b.Must = bq.NewMatchAllQuery()
	}
	return b, nil
}

func (p *simpleParser) primary() (bq.Query, *Error) {
	if p.i >= len(p.s) {
		return nil, nil
	}
	switch p.s[p.i] {
	case '(':
		p.i++
		if p.dep > 50 {
			return nil, nil
		}
		p.dep++
		q, err := p.or()
		p.dep--
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ')' {
			p.i++
		}
		return q, err
	case '"':
		end := strings.IndexByte(p.s[p.i+1:], '"')
		var text string
		if end < 0 {
			text, p.i = p.s[p.i+1:], len(p.s)
		} else {
			text, p.i = p.s[p.i+1:p.i+1+end], p.i+end+2
		}
		return p.leaf(text, true, false)
	}
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(" \t\n|()\"", rune(p.s[p.i])) {
		p.i++
	}
	word := p.s[start:p.i]
	if word == "" {
		return nil, nil
	}
	if strings.HasSuffix(word, "*") {
		return p.leaf(strings.TrimRight(word, "*"), false, true)
	}
	return p.leaf(word, false, false)
}

// leaf searches one word, phrase or prefix across the query's fields.
func (p *simpleParser) leaf(text string, phrase, prefix bool) (bq.Query, *Error) {
	var alts []bq.Query
	for _, f := range p.q.fields {
		lf := p.c.m.lookup(f.name)
		if lf == nil || (lf.typ != typeText && lf.typ != typeKeyword) {
			continue
		}
		if prefix {
			term := text
			if lf.typ == typeText {
				ts := analyze(lf.san, text)
				if len(ts) == 0 {
					continue
				}
				term = ts[len(ts)-1]
			}
			pq := bq.NewPrefixQuery(term)
			pq.SetField(f.name)
			pq.SetBoost(f.boost * p.q.boost)
			alts = append(alts, pq)
			continue
		}
		q, err := p.c.match(f.name, text, "and", "", f.boost*p.q.boost, phrase)
		if err != nil {
			return nil, err
		}
		alts = append(alts, q)
	}
	if len(alts) == 0 {
		return matchNone(), nil
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return bq.NewDisjunctionQuery(alts), nil
}
