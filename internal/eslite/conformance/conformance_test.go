package conformance

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/eslite"
)

// TestEsliteInProcess runs the suite against eslite through its in-process
// RoundTripper, persisted in a temporary directory so that Restart can
// close the engine and open it again on the same data.
func TestEsliteInProcess(t *testing.T) {
	dir := t.TempDir()
	rt := &swappableTransport{}
	open := func(t testing.TB) {
		t.Helper()
		e, err := eslite.Open(eslite.Config{Dir: dir})
		if err != nil {
			t.Fatalf("open eslite on %s: %v", dir, err)
		}
		rt.swap(e)
	}
	open(t)
	t.Cleanup(func() {
		if err := rt.swap(nil); err != nil {
			t.Errorf("close eslite: %v", err)
		}
	})
	Run(t, Target{
		Name:      "eslite-in-process",
		URL:       &url.URL{Scheme: "http", Host: "eslite.invalid"},
		Transport: rt,
		Restart: func(t testing.TB) {
			t.Helper()
			if err := rt.swap(nil); err != nil {
				t.Fatalf("close eslite for restart: %v", err)
			}
			open(t)
		},
	})
}

// swappableTransport delegates to the current engine's RoundTripper, so a
// restart can replace the engine under a transport the suite already holds.
type swappableTransport struct {
	mu     sync.RWMutex
	engine *eslite.Engine
	rt     http.RoundTripper
}

// swap installs e (nil for none) and closes the engine it replaces.
func (s *swappableTransport) swap(e *eslite.Engine) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.engine
	s.engine, s.rt = e, nil
	if e != nil {
		s.rt = e.RoundTripper()
	}
	if old != nil {
		return old.Close()
	}
	return nil
}

func (s *swappableTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.RLock()
	rt := s.rt
	s.mu.RUnlock()
	if rt == nil {
		return nil, errors.New("eslite is not open")
	}
	return rt.RoundTrip(req)
}

// TestEsliteSocket runs the suite against an in-memory eslite served on a
// loopback TCP socket, as `walsearch eslite --listen` does.
func TestEsliteSocket(t *testing.T) {
	e, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatalf("open eslite: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- eslite.Serve(ctx, ln, e) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("eslite.Serve returned %v after cancel, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("eslite.Serve did not return within 30s of cancel")
		}
		if err := e.Close(); err != nil {
			t.Errorf("close eslite: %v", err)
		}
	})
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	Run(t, Target{
		Name:      "eslite-socket",
		URL:       &url.URL{Scheme: "http", Host: ln.Addr().String()},
		Transport: transport,
	})
}

// TestElasticsearch runs the suite against a real cluster when
// WALSEARCH_TEST_ES_URL is set (userinfo gives basic auth;
// WALSEARCH_TEST_ES_INSECURE=1 skips TLS verification).
func TestElasticsearch(t *testing.T) {
	raw := os.Getenv("WALSEARCH_TEST_ES_URL")
	if raw == "" {
		t.Skip("WALSEARCH_TEST_ES_URL not set: skipping the real-cluster half of the conformance suite")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse WALSEARCH_TEST_ES_URL: %v", err)
	}
	target := Target{Name: "elasticsearch"}
	if u.User != nil {
		target.Username = u.User.Username()
		target.Password, _ = u.User.Password()
		u.User = nil
	}
	target.URL = u
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if os.Getenv("WALSEARCH_TEST_ES_INSECURE") == "1" {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in for test clusters with self-signed certificates
	}
	t.Cleanup(transport.CloseIdleConnections)
	target.Transport = transport
	Run(t, target)
}
