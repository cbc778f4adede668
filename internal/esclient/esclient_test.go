package esclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
)

func engine(t *testing.T) *eslite.Engine {
	t.Helper()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// startTLS serves h over TLS on 127.0.0.1 and returns the server and a PEM
// file holding the certificate it presents (its own CA).
func startTLS(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv, writeCA(t, srv.Certificate())
}

// otherCA is a self-signed CA certificate that signed nothing the tests
// serve.
func otherCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func writeCA(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// roundTrip indexes a document and reads it back through c.
func roundTrip(t *testing.T, c *esclient.Client) {
	t.Helper()
	ctx := context.Background()
	res, err := esapi.IndexRequest{Index: "books", DocumentID: "1", Body: strings.NewReader(`{"title":"Dune"}`)}.Do(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.IsError() {
		t.Fatalf("index: %s", res.Status())
	}
	res, err = esapi.GetRequest{Index: "books", DocumentID: "1"}.Do(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "Dune") {
		t.Fatalf("get: %d %s", res.StatusCode, body)
	}
}

func TestTLSWithTheConfiguredCA(t *testing.T) {
	t.Parallel()
	srv, ca := startTLS(t, engine(t))
	c, err := esclient.New(esclient.Config{URL: srv.URL, CACert: ca})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatalf("ping over TLS with the server's CA: %v", err)
	}
	roundTrip(t, c)
}

func TestTLSUntrustedCertificateSaysWhatToSet(t *testing.T) {
	t.Parallel()
	srv, _ := startTLS(t, engine(t))
	for name, cfg := range map[string]esclient.Config{
		"system CAs": {URL: srv.URL},
		"another CA": {URL: srv.URL, CACert: writeCA(t, otherCA(t))},
	} {
		c, err := esclient.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Ping(context.Background())
		var unknown x509.UnknownAuthorityError
		if err == nil || !errors.As(err, &unknown) || !strings.Contains(err.Error(), "set elasticsearch.ca_cert") {
			t.Fatalf("%s: ping of an untrusted server: %v", name, err)
		}
	}
}

func TestTLSInsecureSkipVerify(t *testing.T) {
	t.Parallel()
	srv, _ := startTLS(t, engine(t))
	c, err := esclient.New(esclient.Config{URL: srv.URL, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatalf("ping with insecure_skip_verify: %v", err)
	}
	roundTrip(t, c)
}

func TestHTTPSURLToAPlainServerSaysSo(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(engine(t))
	t.Cleanup(srv.Close)
	c, err := esclient.New(esclient.Config{URL: strings.Replace(srv.URL, "http://", "https://", 1), InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "does not speak TLS") {
		t.Fatalf("ping of a plain server over https: %v", err)
	}
}

func TestTLSSettingsAreChecked(t *testing.T) {
	t.Parallel()
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cfg  esclient.Config
		want string
	}{
		"missing CA file":    {esclient.Config{URL: "https://127.0.0.1:9200", CACert: "/nonexistent/ca.pem"}, "elasticsearch.ca_cert"},
		"CA file not PEM":    {esclient.Config{URL: "https://127.0.0.1:9200", CACert: notPEM}, "holds no PEM certificate"},
		"CA with plain http": {esclient.Config{URL: "http://127.0.0.1:9200", CACert: notPEM}, "only used with an https:// url"},
		"CA and insecure":    {esclient.Config{URL: "https://127.0.0.1:9200", CACert: notPEM, InsecureSkipVerify: true}, "not both"},
	} {
		if _, err := esclient.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}

// securedEngine is a fault-injection stand-in for Elasticsearch with
// security on: it passes a request to the engine only with an accepted
// Authorization header, and answers 401 otherwise (403 for user "reader"
// writing), with Elasticsearch's error body and WWW-Authenticate header.
type securedEngine struct {
	next     http.Handler
	accepted map[string]string // Authorization header → user
}

func newSecuredEngine(t *testing.T) *securedEngine {
	basic := func(user, pass string) string {
		return "basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	return &securedEngine{next: engine(t), accepted: map[string]string{
		basic("elastic", "s3cret"): "elastic",
		basic("reader", "r3ad"):    "reader",
		"apikey " + testAPIKey:     "api-key-user",
	}}
}

const testAPIKey = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="

func (s *securedEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ") // schemes are case-insensitive
	user, ok := s.accepted[strings.ToLower(scheme)+" "+cred]
	if !ok {
		reason := "missing authentication credentials for REST request [" + r.URL.Path + "]"
		if auth != "" {
			reason = "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", "ApiKey")
		writeError(w, http.StatusUnauthorized, "security_exception", reason)
		return
	}
	if user == "reader" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusForbidden, "security_exception",
			"action [indices:data/write/index] is unauthorized for user [reader] with effective roles [viewer] on indices [books]")
		return
	}
	s.next.ServeHTTP(w, r)
}

func writeError(w http.ResponseWriter, status int, typ, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.WriteHeader(status)
	io.WriteString(w, `{"error":{"root_cause":[{"type":"`+typ+`","reason":"`+reason+`"}],"type":"`+typ+`","reason":"`+reason+`"},"status":`+strconv.Itoa(status)+`}`)
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	srv, ca := startTLS(t, newSecuredEngine(t))
	ctx := context.Background()
	good := []esclient.Config{
		{URL: srv.URL, CACert: ca, Username: "elastic", Password: "s3cret"},
		{URL: strings.Replace(srv.URL, "https://", "https://elastic:s3cret@", 1), CACert: ca},
	}
	for _, cfg := range good {
		c, err := esclient.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Ping(ctx); err != nil {
			t.Fatalf("ping with good credentials: %v", err)
		}
		roundTrip(t, c)
	}
	for name, tc := range map[string]struct {
		cfg  esclient.Config
		want []string
	}{
		"wrong password": {esclient.Config{URL: srv.URL, CACert: ca, Username: "elastic", Password: "wrong"},
			[]string{`refused user "elastic"`, "check elasticsearch.username and elasticsearch.password", "HTTP 401", "unable to authenticate"}},
		"no credentials": {esclient.Config{URL: srv.URL, CACert: ca},
			[]string{"requires credentials", "set elasticsearch.username and elasticsearch.password", "elasticsearch.api_key", "missing authentication credentials"}},
	} {
		c, err := esclient.New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Ping(ctx)
		var aerr *esclient.AuthError
		if !errors.As(err, &aerr) || aerr.Status != http.StatusUnauthorized {
			t.Fatalf("%s: ping: %v, want an AuthError with status 401", name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", name, err, w)
			}
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("%s: the error shows the password: %q", name, err)
		}
	}
}

func TestAPIKeyAuth(t *testing.T) {
	t.Parallel()
	srv, ca := startTLS(t, newSecuredEngine(t))
	ctx := context.Background()
	c, err := esclient.New(esclient.Config{URL: srv.URL, CACert: ca, APIKey: testAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping with a good API key: %v", err)
	}
	roundTrip(t, c)

	c, err = esclient.New(esclient.Config{URL: srv.URL, CACert: ca, APIKey: "aW52YWxpZDprZXk="})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Ping(ctx)
	var aerr *esclient.AuthError
	if !errors.As(err, &aerr) || !strings.Contains(err.Error(), "refused the API key") || !strings.Contains(err.Error(), "check elasticsearch.api_key") {
		t.Fatalf("ping with a bad API key: %v", err)
	}
}

func TestForbiddenSaysWhichPrivileges(t *testing.T) {
	t.Parallel()
	srv, ca := startTLS(t, newSecuredEngine(t))
	c, err := esclient.New(esclient.Config{URL: srv.URL, CACert: ca, Username: "reader", Password: "r3ad"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatalf("ping as a read-only user: %v", err)
	}
	res, err := esapi.IndexRequest{Index: "books", DocumentID: "1", Body: strings.NewReader(`{}`)}.Do(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	err = c.AuthError(res.StatusCode, body)
	if err == nil || !strings.Contains(err.Error(), `grant user "reader"`) || !strings.Contains(err.Error(), "is unauthorized for user [reader]") {
		t.Fatalf("403 error: %v", err)
	}
	if c.AuthError(http.StatusOK, nil) != nil || c.AuthError(http.StatusTooManyRequests, nil) != nil {
		t.Fatal("AuthError for a status that is not about credentials")
	}
}
