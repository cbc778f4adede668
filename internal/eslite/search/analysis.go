package search

import (
	"unicode"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/character"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	bleveunicode "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
)

// analyzerByName builds one of the built-in Elasticsearch analyzers eslite offers.
// "standard" is Elasticsearch's default: Unicode text segmentation and lower-casing,
// no stop words and no stemming (bleve's own "standard" drops English stop words,
// so it is not used).
func analyzerByName(name string) (analysis.Analyzer, bool) {
	switch name {
	case "", "standard", "default":
		return &analysis.DefaultAnalyzer{
			Tokenizer:    bleveunicode.NewUnicodeTokenizer(),
			TokenFilters: []analysis.TokenFilter{lowercase.NewLowerCaseFilter()},
		}, true
	case "simple":
		return &analysis.DefaultAnalyzer{
			Tokenizer:    character.NewCharacterTokenizer(unicode.IsLetter),
			TokenFilters: []analysis.TokenFilter{lowercase.NewLowerCaseFilter()},
		}, true
	case "whitespace":
		return &analysis.DefaultAnalyzer{
			Tokenizer: character.NewCharacterTokenizer(func(r rune) bool { return !unicode.IsSpace(r) }),
		}, true
	case "keyword":
		return keywordAnalyzer(), true
	}
	return nil, false
}

// keywordAnalyzer keeps the whole value as one token.
func keywordAnalyzer() analysis.Analyzer {
	return &analysis.DefaultAnalyzer{Tokenizer: single.NewSingleTokenTokenizer()}
}

// analyze returns the terms of s under an analyzer, in order.
func analyze(a analysis.Analyzer, s string) []string {
	toks := a.Analyze([]byte(s))
	out := make([]string, 0, len(toks))
	for _, t := range toks {
		out = append(out, string(t.Term))
	}
	return out
}
