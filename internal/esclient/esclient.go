// Package esclient builds the Elasticsearch client shared by the sink and the
// search API: an elastictransport client for a real cluster (URL, TLS, basic
// or API-key auth) or for the embedded eslite engine through an in-process
// RoundTripper. It performs no retries of its own: callers decide what is
// retryable.
package esclient

import (
	"context"
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
)

// EmbeddedURL is the base URL used for the in-process engine; no request
// ever leaves the process.
const EmbeddedURL = "http://eslite.embedded"

// Config says how to reach Elasticsearch.
type Config struct {
	// URL of the cluster, e.g. https://es.example.com:9200. Empty means the
	// embedded engine, reached through Transport.
	URL      string
	Username string
	Password string
	APIKey   string
	// CACert is a path to a PEM file of CA certificates to trust.
	CACert string
	// Transport overrides the HTTP transport (the embedded engine's
	// RoundTripper, or a fault-injecting one in tests).
	Transport http.RoundTripper
	// Timeout bounds each request. Default: 30s.
	Timeout time.Duration
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("elasticsearch.url: want http(s)://host:port, got %q", redact(c.URL)))
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
	return errors.Join(errs...)
}

// Client is an Elasticsearch client.
type Client struct {
	*elastictransport.Client
	timeout time.Duration
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
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch.ca_cert: %w", err)
		}
		tc.CACert = pem
	}
	tp, err := elastictransport.New(tc)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return &Client{Client: tp, timeout: timeout}, nil
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
		return nil, fmt.Errorf("reach elasticsearch: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
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

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User("***")
	return u.String()
}
