package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/internal/esclient"
)

// errEngineDown answers searches while the search engine is unreachable.
var errEngineDown = unavailable("the search engine is unavailable; retry later")

// breaker remembers that the engine failed, so that for a short cooldown
// searches answer 503 at once instead of each waiting for a timeout.
type breaker struct {
	cooldown time.Duration

	mu        sync.Mutex
	openUntil time.Time
	lastErr   string
}

func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Now().Before(b.openUntil)
}

func (b *breaker) fail(err error) {
	b.mu.Lock()
	b.openUntil, b.lastErr = time.Now().Add(b.cooldown), err.Error()
	b.mu.Unlock()
}

func (b *breaker) succeed() {
	b.mu.Lock()
	b.openUntil, b.lastErr = time.Time{}, ""
	b.mu.Unlock()
}

// engine sends requests to the search engine through the breaker.
type engine struct {
	es *esclient.Client
	br *breaker
}

// esResponse is the part of a search response the API reads.
type esResponse struct {
	Hits struct {
		Total struct {
			Value int64 `json:"value"`
		} `json:"total"`
		Hits []esHit `json:"hits"`
	} `json:"hits"`
	Aggregations map[string]struct {
		Buckets []struct {
			Key         any    `json:"key"`
			KeyAsString string `json:"key_as_string"`
			DocCount    int64  `json:"doc_count"`
		} `json:"buckets"`
	} `json:"aggregations"`
}

type esHit struct {
	ID        string              `json:"_id"`
	Source    json.RawMessage     `json:"_source"`
	Sort      []json.RawMessage   `json:"sort"`
	Highlight map[string][]string `json:"highlight"`
}

// search runs body against index.
func (e *engine) search(ctx context.Context, index string, body any) (*esResponse, error) {
	if e.br.open() {
		return nil, errEngineDown
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode search: %w", err)
	}
	res, err := esapi.SearchRequest{Index: []string{index}, Body: bytes.NewReader(raw)}.Do(ctx, e.es)
	if err != nil {
		return nil, e.transportError(ctx, err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, e.transportError(ctx, err)
	}
	if res.StatusCode == http.StatusBadRequest {
		// The engine refuses queries it cannot run on the index's fields (a
		// value its field cannot hold, in a form the API does not check):
		// the request's fault, told without the engine's words.
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest,
			Message: fmt.Sprintf("the search engine refused the query: check that each query_fields value fits its field's type (GET /indices/%s/fields)", index),
			cause:   fmt.Errorf("search %s: HTTP 400: %.300s", index, rb)}
	}
	if err := e.statusError(index, res.StatusCode, rb); err != nil {
		return nil, fmt.Errorf("search %s: %w (%.300s)", index, err, rb)
	}
	var sr esResponse
	if err := json.Unmarshal(rb, &sr); err != nil {
		return nil, fmt.Errorf("decode search response: %w", err)
	}
	return &sr, nil
}

// refresh makes every write to index visible to search.
func (e *engine) refresh(ctx context.Context, index string) error {
	if e.br.open() {
		return errEngineDown
	}
	res, err := esapi.IndicesRefreshRequest{Index: []string{index}}.Do(ctx, e.es)
	if err != nil {
		return e.transportError(ctx, err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return e.statusError(index, res.StatusCode, rb)
}

// count returns the number of documents in index.
func (e *engine) count(ctx context.Context, index string) (int64, error) {
	if e.br.open() {
		return 0, errEngineDown
	}
	res, err := esapi.CountRequest{Index: []string{index}}.Do(ctx, e.es)
	if err != nil {
		return 0, e.transportError(ctx, err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	if err := e.statusError(index, res.StatusCode, rb); err != nil {
		return 0, err
	}
	var cr struct {
		Count int64 `json:"count"`
	}
	if err := json.Unmarshal(rb, &cr); err != nil {
		return 0, fmt.Errorf("decode count: %w", err)
	}
	return cr.Count, nil
}

// ping checks the engine and updates the breaker.
func (e *engine) ping(ctx context.Context) error {
	_, err := e.es.Ping(ctx)
	if err != nil {
		e.br.fail(err)
		return err
	}
	e.br.succeed()
	return nil
}

func (e *engine) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// An engine that hangs is as unavailable as one that refuses:
			// the next searches fail fast instead of each waiting as long.
			e.br.fail(fmt.Errorf("no answer in time: %w", err))
		}
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeTimeout, Message: "the search engine did not answer in time"}
	}
	e.br.fail(err)
	return errEngineDown
}

var errUpstream = errors.New("unexpected answer from the search engine")

// statusError is what an engine answer with status (and body) means to
// the API. Credentials or privileges the engine refused are an *AuthError,
// whose message (logged with the failed request) says what to configure.
func (e *engine) statusError(index string, status int, body []byte) error {
	if err := e.es.AuthError(status, body); err != nil {
		return err
	}
	switch {
	case status == http.StatusNotFound:
		return errIndexNotFound(index)
	case status == http.StatusTooManyRequests || status >= 500:
		e.br.fail(fmt.Errorf("HTTP %d", status))
		return errEngineDown
	case status >= 400:
		return fmt.Errorf("HTTP %d: %w", status, errUpstream)
	}
	return nil
}
