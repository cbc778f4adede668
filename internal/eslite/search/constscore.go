package search

import (
	"context"

	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	bq "github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
)

// constScoreQuery matches what its inner query matches and scores every match
// boost, like Lucene's ConstantScoreQuery: it is how filters, term-level
// queries on non-text data and constant_score are searched. The inner query
// runs unscored and drives the iteration itself, so a selective filter costs
// its own postings, not a walk over every document.
type constScoreQuery struct {
	inner bq.Query
	boost float64
}

// constant makes q score a fixed boost.
func constant(q bq.Query, boost float64) bq.Query {
	return &constScoreQuery{inner: q, boost: boost}
}

func (q *constScoreQuery) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts bsearch.SearcherOptions) (bsearch.Searcher, error) {
	inner, err := q.inner.Searcher(ctx, r, m, bsearch.SearcherOptions{Score: "none"})
	if err != nil {
		return nil, err
	}
	return &constScoreSearcher{Searcher: inner, boost: q.boost}, nil
}

// constScoreSearcher overrides its inner searcher's scores. It reports no
// weight and ignores the query norm bleve's boolean searchers hand down, so
// the score is exactly boost wherever the query sits.
type constScoreSearcher struct {
	bsearch.Searcher
	boost float64
}

func (s *constScoreSearcher) Next(ctx *bsearch.SearchContext) (*bsearch.DocumentMatch, error) {
	d, err := s.Searcher.Next(ctx)
	if d != nil {
		d.Score = s.boost
	}
	return d, err
}

func (s *constScoreSearcher) Advance(ctx *bsearch.SearchContext, id index.IndexInternalID) (*bsearch.DocumentMatch, error) {
	d, err := s.Searcher.Advance(ctx, id)
	if d != nil {
		d.Score = s.boost
	}
	return d, err
}

func (s *constScoreSearcher) Weight() float64 { return 0 }

func (s *constScoreSearcher) SetQueryNorm(float64) {}
