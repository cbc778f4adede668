package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/internal/esclient"
)

// StartError is a problem found at start, before anything was created in
// PostgreSQL or the search engine: the process stops with it instead of
// retrying, since only the operator can fix it.
type StartError struct{ Err error }

func (e *StartError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *StartError) Unwrap() error { return e.Err }

// preflight checks the search engine and PostgreSQL before any stage runs,
// so that a wrong URL, credential, setting or privilege stops the start at
// once with what to fix, and leaves no slot or publication behind.
// A stop asked for meanwhile (ctx done) is not an error.
func (p *Pipeline) preflight(ctx context.Context) error {
	if p.ES != nil {
		if err := p.checkEngine(ctx); err != nil || ctx.Err() != nil {
			return err
		}
	}
	if !p.roles.Has(config.RoleCapture) {
		return nil // only capture needs PostgreSQL's logical replication
	}
	if err := capture.Preflight(ctx, p.captureConfig(), p.Bus.State()); err != nil && ctx.Err() == nil {
		return &StartError{Err: fmt.Errorf("check postgresql: %w", err)}
	}
	return nil
}

// checkEngine checks that the search engine answers as Elasticsearch does.
func (p *Pipeline) checkEngine(ctx context.Context) error {
	info, err := p.ES.Ping(ctx)
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil && p.Engine != nil:
		return &StartError{Err: fmt.Errorf("check the embedded search engine: %w", err)}
	case err != nil:
		return &StartError{Err: fmt.Errorf("check elasticsearch.url %s: %w (fix elasticsearch.url and its credentials, start the cluster before walsearch, or leave elasticsearch.url empty for the embedded engine)",
			bus.RedactURL(p.cfg.Elasticsearch.URL), notElasticsearch(err))}
	}
	p.log.Info("search engine", "version", info.Version.Number, "embedded", p.Engine != nil)
	return nil
}

// captureConfig is the capture stage's configuration.
func (p *Pipeline) captureConfig() capture.Config {
	cc := p.cfg.CaptureConfig()
	cc.Logger, cc.Instance = p.log, instanceName(p.cfg)
	cc.Tables = p.withDocumentTables(cc.Tables)
	cc.Partitions = max(1, p.cfg.NATS.Partitions)
	return cc
}

// instanceName describes this process in PostgreSQL's owners table: host
// and data dir, or host and NATS URL with an external bus.
func instanceName(cfg config.Config) string {
	host, _ := os.Hostname()
	if cfg.NATS.URL != "" {
		return host + " nats " + bus.RedactURL(cfg.NATS.URL)
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dir = cfg.DataDir
	}
	return host + ":" + dir
}

// notElasticsearch says so when err shows that a server answered GET /,
// but not the way Elasticsearch or OpenSearch do.
func notElasticsearch(err error) error {
	var auth *esclient.AuthError
	var down *esclient.UnavailableError
	var netErr net.Error
	var urlErr *url.Error
	if errors.Is(err, esclient.ErrNotElasticsearch) || errors.As(err, &auth) || errors.As(err, &down) || errors.As(err, &netErr) || errors.As(err, &urlErr) {
		return err
	}
	return fmt.Errorf("the server at elasticsearch.url is not Elasticsearch or OpenSearch: %w", err)
}
