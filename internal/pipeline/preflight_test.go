package pipeline

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/internal/faultes"
)

// TestPreflightSaysABusyEngineIsElasticsearch: an engine that answers GET /
// with 429 or a 5xx is up and failing, not another kind of server; the
// start error must not send the operator looking for a wrong URL. (The
// chaos run met it: a start while the engine answered 500.)
func TestPreflightSaysABusyEngineIsElasticsearch(t *testing.T) {
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	srv := faultes.Start(eng)
	defer srv.Close()
	es, err := esclient.New(esclient.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable} {
		srv.Inject(faultes.Fault{Status: status, All: true})
		_, err := es.Ping(context.Background())
		if err == nil {
			t.Fatalf("%d: ping succeeded", status)
		}
		msg := notElasticsearch(err).Error()
		if strings.Contains(msg, "not Elasticsearch") || !strings.Contains(msg, "up but cannot serve") {
			t.Errorf("%d: %s", status, msg)
		}
	}
}
