// Package esclient builds the Elasticsearch client shared by the sink and the
// search API: an elastictransport client for a real cluster (URL, TLS, basic
// or API-key auth) or for the embedded eslite engine through an in-process
// RoundTripper. It performs no retries of its own: callers decide what is
// retryable.
package esclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
)

// EmbeddedURL is the base URL used for the in-process engine; no request
// ever leaves the process.
const EmbeddedURL = "http://eslite.embedded"

// Config says how to reach Elasticsearch.
type Config struct {
	// URL of the cluster, e.g. https://es.example.com:9200. Empty means the
	// embedded engine, reached through Transport.
	URL      string `koanf:"url" help:"Elasticsearch or OpenSearch URL, http(s)://host:port; empty runs the embedded engine under data_dir"`
	Username string `koanf:"username" help:"user name for basic authentication"`
	Password string `koanf:"password" help:"password for basic authentication"`
	APIKey   string `koanf:"api_key" help:"API key, instead of a user name and password"`
	// CACert is a path to a PEM file of CA certificates to trust (for an
	// https URL), instead of the system's.
	CACert string `koanf:"ca_cert" help:"PEM file of the certificate authorities to trust for an https URL, instead of the system's"`
	// InsecureSkipVerify accepts any certificate the server presents, so
	// that anyone on the path can read and change the traffic: for test
	// clusters with self-signed certificates only. Prefer CACert.
	InsecureSkipVerify bool `koanf:"insecure_skip_verify" help:"accept any server certificate, so that anyone on the path can read the traffic: test clusters only; prefer ca_cert"`
	// Transport overrides the HTTP transport (the embedded engine's
	// RoundTripper, or a fault-injecting one in tests).
	Transport http.RoundTripper `koanf:"-"`
	// Timeout bounds each request. Default: 30s.
	Timeout time.Duration `koanf:"-"`
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("elasticsearch.url: want http(s)://host:port, got %q", bus.RedactURL(c.URL)))
		}
	}
	if c.APIKey != "" && (c.Username != "" || c.Password != "") {
		errs = append(errs, errors.New("elasticsearch.api_key: set either api_key or username/password, not both"))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, errors.New("elasticsearch.username: required when a password is set"))
	}
	if c.URL == "" && c.Transport == nil {
		errs = append(errs, errors.New("elasticsearch.url: empty means the embedded engine, but none was provided"))
	}
	if (c.CACert != "" || c.InsecureSkipVerify) && !strings.HasPrefix(c.URL, "https://") {
		errs = append(errs, fmt.Errorf("elasticsearch.ca_cert, elasticsearch.insecure_skip_verify: only used with an https:// url, got %q", bus.RedactURL(c.URL)))
	}
	if c.CACert != "" && c.InsecureSkipVerify {
		errs = append(errs, errors.New("elasticsearch.insecure_skip_verify: set either ca_cert (verify against that CA) or insecure_skip_verify (verify nothing), not both"))
	}
	return errors.Join(errs...)
}

// Client is an Elasticsearch client.
type Client struct {
	*elastictransport.Client
	timeout time.Duration
	// user is the basic-auth user name; apiKey says whether an API key is
	// sent: what a 401 or 403 must tell the operator to fix.
	user   string
	apiKey bool
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	raw := cfg.URL
	if raw == "" {
		raw = EmbeddedURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch.url: %w", err)
	}
	tc := elastictransport.Config{
		URLs: []*url.URL{u}, Username: cfg.Username, Password: cfg.Password, APIKey: cfg.APIKey,
		Transport: cfg.Transport, DisableRetry: true, UserAgent: "walsearch",
	}
	if u.User != nil {
		tc.Username = u.User.Username()
		tc.Password, _ = u.User.Password()
		u.User = nil
	}
	if tc.Transport == nil {
		t, err := pooledTransport(cfg.CACert, cfg.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		tc.Transport = t
	}
	tp, err := elastictransport.New(tc)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return &Client{Client: tp, timeout: timeout, user: tc.Username, apiKey: tc.APIKey != ""}, nil
}

// Connection pool sizes for a real cluster: the sink keeps one bulk request
// in flight per lane and the API serves concurrent searches, all to the same
// few hosts, so idle connections per host are kept well above Go's default of 2.
const (
	maxIdleConns        = 256
	maxIdleConnsPerHost = 64
	idleConnTimeout     = 90 * time.Second
)

// pooledTransport is the HTTP transport for a real cluster: pooled
// keep-alive connections, and the CAs of caCert (a PEM file) trusted when
// set, or no verification at all with insecure.
func pooledTransport(caCert string, insecure bool) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost, t.IdleConnTimeout = maxIdleConns, maxIdleConnsPerHost, idleConnTimeout
	t.ResponseHeaderTimeout = 0 // bounded per request by the caller's context
	switch {
	case caCert != "":
		pem, err := os.ReadFile(caCert)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch.ca_cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("elasticsearch.ca_cert: %s holds no PEM certificate", caCert)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	case insecure:
		// Asked for by elasticsearch.insecure_skip_verify, which is
		// documented as for test clusters only.
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	}
	return t, nil
}

// Timeout is the per-request time limit.
func (c *Client) Timeout() time.Duration { return c.timeout }

// ErrNotElasticsearch is returned by Ping when the server does not identify
// itself as Elasticsearch.
var ErrNotElasticsearch = errors.New("the server at elasticsearch.url is not Elasticsearch (no X-Elastic-Product header on GET /)")

// Info is what GET / says about the cluster.
type Info struct {
	ClusterName string `json:"cluster_name"`
	Version     struct {
		Number       string `json:"number"`
		Distribution string `json:"distribution"`
	} `json:"version"`
}

// Ping checks that the cluster answers and is Elasticsearch (or OpenSearch,
// which reports a "distribution" of "opensearch" and sends no product header).
func (c *Client) Ping(ctx context.Context) (*Info, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := esapi.InfoRequest{}.Do(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("reach elasticsearch: %w", explainConnError(err))
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err := c.AuthError(res.StatusCode, body); err != nil {
		return nil, fmt.Errorf("reach elasticsearch: %w", err)
	}
	if err := unavailable(res.StatusCode, body); err != nil {
		return nil, fmt.Errorf("reach elasticsearch: %w", err)
	}
	if res.IsError() {
		return nil, fmt.Errorf("reach elasticsearch: %s: %s", res.Status(), strings.TrimSpace(string(body)))
	}
	var info Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("reach elasticsearch: decode GET /: %w", err)
	}
	if res.Header.Get("X-Elastic-Product") != "Elasticsearch" && info.Version.Distribution != "opensearch" {
		return nil, ErrNotElasticsearch
	}
	return &info, nil
}
