package faultes_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/internal/faultes"
)

func start(t *testing.T) *faultes.Server {
	t.Helper()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	srv := faultes.Start(eng)
	t.Cleanup(srv.Close)
	return srv
}

// do sends one request and returns its status and body, or the error.
func do(ctx context.Context, method, url, body string) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

func docExists(t *testing.T, srv *faultes.Server, id string) bool {
	t.Helper()
	code, body, err := do(context.Background(), "GET", srv.URL+"/books/_doc/"+id, "")
	if err != nil {
		t.Fatal(err)
	}
	return code == 200 && strings.Contains(body, `"found":true`)
}

const bulkLine = "{\"index\":{\"_index\":\"books\",\"_id\":\"%s\"}}\n{\"title\":\"t\"}\n"

func bulk(id string) string { return strings.ReplaceAll(bulkLine, "%s", id) }

// TestHoldKeepsARequestUnansweredAndDropsItWithItsClient: a held bulk request
// is neither answered nor applied; when its client goes away (as a killed
// process's does) the engine never sees it; Release lets the next one through.
func TestHoldKeepsARequestUnansweredAndDropsItWithItsClient(t *testing.T) {
	t.Parallel()
	srv := start(t)
	srv.Inject(faultes.Fault{Hold: true})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, _, err := do(ctx, "POST", srv.URL+"/_bulk", bulk("1")); errc <- err }()
	waitFor(t, "the request to be held", func() bool { return srv.Held() == 1 })
	if docExists(t, srv, "1") {
		t.Fatal("a held request reached the engine")
	}
	cancel() // the client goes away
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("held request answered: %v", err)
	}
	waitFor(t, "the held request to end with its client", func() bool { return srv.Held() == 0 })
	if docExists(t, srv, "1") {
		t.Fatal("a request held until its client left was applied")
	}

	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, _, err := do(context.Background(), "POST", srv.URL+"/_bulk?refresh=true", bulk("2"))
		done <- result{code, err}
	}()
	waitFor(t, "the second request to be held", func() bool { return srv.Held() == 1 })
	srv.Release()
	if r := <-done; r.err != nil || r.code != 200 {
		t.Fatalf("released request: %d %v", r.code, r.err)
	}
	if !docExists(t, srv, "2") {
		t.Fatal("a released request was not applied")
	}
}

// TestHoldAnswerAppliesTheRequestButWithholdsTheAnswer: the engine has the
// write while the client still waits for the answer.
func TestHoldAnswerAppliesTheRequestButWithholdsTheAnswer(t *testing.T) {
	t.Parallel()
	srv := start(t)
	srv.Inject(faultes.Fault{HoldAnswer: true, Count: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, _, err := do(ctx, "POST", srv.URL+"/_bulk", bulk("1")); errc <- err }()
	waitFor(t, "the answer to be held", func() bool { return srv.Held() == 1 })
	if !docExists(t, srv, "1") {
		t.Fatal("the engine did not apply the request whose answer is held")
	}
	select {
	case err := <-errc:
		t.Fatalf("the client got an answer while it was held: %v", err)
	default:
	}
	srv.Release()
	if err := <-errc; err != nil {
		t.Fatalf("released answer: %v", err)
	}
	// Count: 1 — the next request is not held.
	if code, _, err := do(context.Background(), "POST", srv.URL+"/_bulk", bulk("3")); err != nil || code != 200 {
		t.Fatalf("request after the counted fault: %d %v", code, err)
	}
}
