package search

import (
	"strconv"
	"strings"

	bq "github.com/blevesearch/bleve/v2/search/query"
)

// simple_query_string follows Lucene's SimpleQueryParser, which Elasticsearch
// uses unchanged: the string is read left to right with no precedence between
// operators. "+" (AND) and "|" (OR) set the operator that joins the next term
// to everything read so far; a term with no operator before it is joined with
// default_operator; an operator differing from the previous one wraps
// everything read so far as one clause, so "a | b + c" is (a | b) + c.
// "-" directly before a term (no space) negates it as "NOT term OR anything",
// which is why "fox -hound" with the default OR also matches documents without
// "fox" (as the Elasticsearch reference notes for "eggplant -frittata").
// Parentheses group, quotes make phrases, a trailing "*" makes a prefix,
// "~N" after a word is fuzzy and after a phrase is slop, "\" escapes. Input
// that does not parse (an unclosed quote or parenthesis, an operator with
// nothing to apply to) is read as plain text or ignored, never an error.

// simpleFlags enables simple_query_string operators; the values are
// Elasticsearch's SimpleQueryStringFlag values.
type simpleFlags int

const (
	flagAll        simpleFlags = -1
	flagNone       simpleFlags = 0
	flagAnd        simpleFlags = 1 << 0
	flagNot        simpleFlags = 1 << 1
	flagOr         simpleFlags = 1 << 2
	flagPrefix     simpleFlags = 1 << 3
	flagPhrase     simpleFlags = 1 << 4
	flagPrecedence simpleFlags = 1 << 5
	flagEscape     simpleFlags = 1 << 6
	flagWhitespace simpleFlags = 1 << 7
	flagFuzzy      simpleFlags = 1 << 8
	flagNear       simpleFlags = 1 << 9
)

var simpleFlagNames = map[string]simpleFlags{
	"ALL": flagAll, "NONE": flagNone, "AND": flagAnd, "NOT": flagNot, "OR": flagOr,
	"PREFIX": flagPrefix, "PHRASE": flagPhrase, "PRECEDENCE": flagPrecedence,
	"ESCAPE": flagEscape, "WHITESPACE": flagWhitespace, "FUZZY": flagFuzzy,
	"NEAR": flagNear, "SLOP": flagNear,
}

// parseSimpleFlags reads "AND|OR|PREFIX"-style flags, case-insensitively.
func parseSimpleFlags(s string) (simpleFlags, *Error) {
	var out simpleFlags
	for _, name := range strings.Split(s, "|") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		f, ok := simpleFlagNames[strings.ToUpper(name)]
		if !ok {
			return 0, illegalArgument("Unknown simple_query_string flag [" + name + "]")
		}
		if f == flagAll {
			return flagAll, nil
		}
		out |= f
	}
	return out, nil
}

func (f simpleFlags) has(x simpleFlags) bool { return f&x != 0 }

// occur is how a clause joins a boolean node.
type occur uint8

const (
	occNone occur = iota
	occMust
	occShould
)

// sqNode is a parsed simple_query_string tree: a leaf query or a boolean
// node whose clauses each carry their occur.
type sqNode struct {
	leaf    bq.Query
	clauses []sqClause
}

type sqClause struct {
	occ occur
	n   *sqNode
}

// sqState is the parser state over one (sub)query, as in Lucene.
type sqState struct {
	s         string
	i         int
	top       *sqNode
	cur, prev occur
	not       int
}

type simpleParser struct {
	c     *compiler
	q     qSimple
	defOp occur
	err   *Error
}

func (c *compiler) simple(q qSimple) (bq.Query, *Error) {
	fields := q.fields
	if len(fields) == 0 {
		fields = c.defaultFields()
	}
	q.fields = c.expandFields(fields)
	p := &simpleParser{c: c, q: q, defOp: occShould}
	if q.defaultOp == "and" {
		p.defOp = occMust
	}
	st := &sqState{s: q.text}
	p.parse(st, 0)
	if p.err != nil {
		return nil, p.err
	}
	if st.top == nil {
		return matchNone(), nil
	}
	return p.toBleve(st.top, q.msm)
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// parse is Lucene's parseSubQuery.
func (p *simpleParser) parse(st *sqState, depth int) {
	f := p.q.flags
	for st.i < len(st.s) && p.err == nil {
		ch := st.s[st.i]
		switch {
		case ch == '(' && f.has(flagPrecedence):
			p.subQuery(st, depth)
		case ch == ')' && f.has(flagPrecedence):
			st.i++ // extraneous
		case ch == '"' && f.has(flagPhrase):
			p.phrase(st)
		case ch == '+' && f.has(flagAnd):
			// Ignored when an operator is already set or nothing precedes it.
			if st.cur == occNone && st.top != nil {
				st.cur = occMust
			}
			st.i++
		case ch == '|' && f.has(flagOr):
			if st.cur == occNone && st.top != nil {
				st.cur = occShould
			}
			st.i++
		case ch == '-' && f.has(flagNot):
			// Unary and sticky: it applies only to a term right after it.
			st.not++
			st.i++
			continue
		case isSpace(ch):
			st.i++
		default:
			p.token(st)
		}
		st.not = 0
	}
}

func (p *simpleParser) subQuery(st *sqState, depth int) {
	start := st.i + 1
	st.i = start
	level := 1
	escaped := false
	for st.i < len(st.s) {
		ch := st.s[st.i]
		if !escaped {
			if ch == '\\' && p.q.flags.has(flagEscape) {
				escaped = true
				st.i++
				continue
			}
			if ch == '(' {
				level++
			} else if ch == ')' {
				if level--; level == 0 {
					break
				}
			}
		}
		escaped = false
		st.i++
	}
	switch {
	case st.i == len(st.s):
		// Never closed: the "(" is ignored.
		st.i = start
	case st.i == start:
		// "()" cancels the operator that would have applied to it.
		st.cur = occNone
		st.i++
	default:
		sub := &sqState{s: st.s[start:st.i]}
		if depth < 64 {
			p.parse(sub, depth+1)
		}
		p.build(st, sub.top)
		st.i++
	}
}

func (p *simpleParser) phrase(st *sqState) {
	start := st.i + 1
	st.i = start
	var buf strings.Builder
	escaped, hasSlop := false, false
	for st.i < len(st.s) {
		ch := st.s[st.i]
		if !escaped {
			if ch == '\\' && p.q.flags.has(flagEscape) {
				escaped = true
				st.i++
				continue
			}
			if ch == '"' {
				if st.i+1 < len(st.s) && st.s[st.i+1] == '~' && p.q.flags.has(flagNear) {
					st.i++
					hasSlop = st.i+1 < len(st.s)
				}
				break
			}
		}
		escaped = false
		buf.WriteByte(ch)
		st.i++
	}
	switch {
	case st.i == len(st.s):
		// Never closed: the quote is ignored and the rest read as terms.
		st.i = start
	case st.i == start:
		// `""` cancels the operator that would have applied to it.
		st.cur = occNone
		st.i++
	default:
		slop := 0
		if hasSlop {
			slop = p.fuzziness(st)
		}
		p.build(st, p.leaf(buf.String(), leafPhrase, slop))
		st.i++
	}
}

func (p *simpleParser) tokenFinished(st *sqState) bool {
	f := p.q.flags
	switch ch := st.s[st.i]; {
	case ch == '"':
		return f.has(flagPhrase)
	case ch == '|':
		return f.has(flagOr)
	case ch == '+':
		return f.has(flagAnd)
	case ch == '(' || ch == ')':
		return f.has(flagPrecedence)
	case isSpace(ch):
		return f.has(flagWhitespace)
	}
	return false
}

func (p *simpleParser) token(st *sqState) {
	f := p.q.flags
	var buf strings.Builder
	escaped, prefix, fuzzy := false, false, false
	for st.i < len(st.s) {
		ch := st.s[st.i]
		if !escaped {
			if ch == '\\' && f.has(flagEscape) {
				escaped, prefix = true, false
				st.i++
				continue
			}
			if p.tokenFinished(st) {
				break
			}
			if buf.Len() > 0 && ch == '~' && f.has(flagFuzzy) {
				fuzzy = true
				break
			}
			prefix = buf.Len() > 0 && ch == '*' && f.has(flagPrefix)
		}
		escaped = false
		buf.WriteByte(ch)
		st.i++
	}
	if buf.Len() == 0 {
		return
	}
	text := buf.String()
	switch {
	case fuzzy:
		n := min(p.fuzziness(st), 2)
		if n == 0 {
			p.build(st, p.leaf(text, leafDefault, 0))
		} else {
			p.build(st, p.leaf(text, leafFuzzy, n))
		}
	case prefix:
		p.build(st, p.leaf(text[:len(text)-1], leafPrefix, 0))
	default:
		p.build(st, p.leaf(text, leafDefault, 0))
	}
}

// fuzziness reads the number after "~" up to the end of the token: none
// means 2, anything unparsable 0.
func (p *simpleParser) fuzziness(st *sqState) int {
	if st.i >= len(st.s) || st.s[st.i] != '~' {
		return 0
	}
	var digits strings.Builder
	for st.i < len(st.s) {
		st.i++
		if st.i < len(st.s) {
			if p.tokenFinished(st) {
				break
			}
			digits.WriteByte(st.s[st.i])
		}
	}
	if digits.Len() == 0 {
		return 2
	}
	n, err := strconv.Atoi(digits.String())
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// build adds a term, phrase or group to the tree (Lucene's buildQueryTree).
// A nil branch (text that analyses to nothing) leaves the state as it was.
func (p *simpleParser) build(st *sqState, branch *sqNode) {
	if branch == nil {
		return
	}
	if st.not%2 == 1 {
		// NOT x is "anything except x".
		branch = &sqNode{leaf: notQuery(p.toBleveOrNone(branch))}
	}
	if st.top == nil {
		st.top = branch
	} else {
		if st.cur == occNone {
			st.cur = p.defOp
		}
		if st.prev != st.cur {
			st.top = &sqNode{clauses: []sqClause{{occ: st.cur, n: st.top}}}
		}
		st.top.clauses = append(st.top.clauses, sqClause{occ: st.cur, n: branch})
	}
	st.prev = st.cur
	st.cur = occNone
}

func notQuery(q bq.Query) bq.Query {
	b := bq.NewBooleanQuery(nil, nil, nil)
	b.Must = bq.NewMatchAllQuery()
	b.MustNot = bq.NewDisjunctionQuery([]bq.Query{q})
	return b
}

func (p *simpleParser) toBleveOrNone(n *sqNode) bq.Query {
	q, err := p.toBleve(n, "")
	if err != nil {
		if p.err == nil {
			p.err = err
		}
		return matchNone()
	}
	return q
}

// toBleve converts a tree; msm applies to the top boolean node's optional
// clauses, as Elasticsearch applies minimum_should_match.
func (p *simpleParser) toBleve(n *sqNode, msm string) (bq.Query, *Error) {
	if n.leaf != nil {
		return n.leaf, nil
	}
	var must, should []bq.Query
	for _, c := range n.clauses {
		q, err := p.toBleve(c.n, "")
		if err != nil {
			return nil, err
		}
		if c.occ == occMust {
			must = append(must, q)
		} else {
			should = append(should, q)
		}
	}
	minShould := 0
	if msm != "" && len(should) > 0 {
		m, err := minimumShouldMatch(msm, len(should))
		if err != nil {
			return nil, err
		}
		minShould = m
	}
	b := bq.NewBooleanQuery(nil, nil, nil)
	if len(should) > 0 {
		d := bq.NewDisjunctionQuery(should)
		switch {
		case minShould > 0 && len(must) > 0:
			d.SetMin(float64(minShould))
			must = append(must, d)
		case minShould > 0:
			d.SetMin(float64(minShould))
			b.Should = d
		case len(must) == 0:
			d.SetMin(1)
			b.Should = d
		default:
			b.Should = d
		}
	}
	if len(must) > 0 {
		b.Must = bq.NewConjunctionQuery(must)
	}
	return b, nil
}

type leafKind int

const (
	leafDefault leafKind = iota
	leafPhrase
	leafPrefix
	leafFuzzy
)

// leaf searches one word, phrase, prefix or fuzzy term across the query's
// fields, or returns nil when no field has anything to search for it.
func (p *simpleParser) leaf(text string, kind leafKind, n int) *sqNode {
	var alts []bq.Query
	for _, f := range p.q.fields {
		lf := p.c.m.lookup(f.name)
		if lf == nil || (lf.typ != typeText && lf.typ != typeKeyword) {
			continue
		}
		boost := f.boost * p.q.boost
		var terms []string
		if lf.typ == typeText {
			terms = analyze(lf.san, text)
			if len(terms) == 0 {
				continue
			}
		}
		switch kind {
		case leafPrefix, leafFuzzy:
			// Not analysed, only normalised (lower-cased for text).
			term := text
			if lf.typ == typeText {
				term = strings.ToLower(text)
				if len(terms) == 1 {
					term = terms[0]
				}
			}
			if kind == leafPrefix {
				pq := bq.NewPrefixQuery(term)
				pq.SetField(f.name)
				pq.SetBoost(boost)
				alts = append(alts, pq)
				continue
			}
			fq := bq.NewFuzzyQuery(term)
			fq.SetField(f.name)
			fq.SetFuzziness(n)
			fq.SetPrefix(p.q.fuzzyPrefix)
			fq.SetBoost(boost)
			alts = append(alts, fq)
		case leafPhrase:
			if n > 0 && len(terms) > 1 {
				// Sloppy phrase: bleve has no slop, so every term is required
				// in any position.
				q, err := p.c.match(f.name, text, "and", "", boost, false)
				if err != nil {
					p.err = err
					return nil
				}
				alts = append(alts, q)
				continue
			}
			q, err := p.c.match(f.name, text, "and", "", boost, true)
			if err != nil {
				p.err = err
				return nil
			}
			alts = append(alts, q)
		default:
			op := "or"
			if p.defOp == occMust {
				op = "and"
			}
			q, err := p.c.match(f.name, text, op, "", boost, false)
			if err != nil {
				p.err = err
				return nil
			}
			alts = append(alts, q)
		}
	}
	switch len(alts) {
	case 0:
		return nil
	case 1:
		return &sqNode{leaf: alts[0]}
	}
	return &sqNode{leaf: bq.NewDisjunctionQuery(alts)}
}
