package pipeline

import (
	"context"
	"net"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/config"
)

// newProbes makes the HTTP server of a process without the api role:
// GET /health (its stages, the bus and, for a sink, the search engine),
// /health/live and /metrics (the figures of its stages), so that an
// orchestrator can probe it and a scraper read it.
//
// It serves on api.listen, under api.keys' rules: such a process has no
// other use for that address, every walsearch process then answers its
// probes on the same port, and /metrics is never open off loopback
// without a key.
func (p *Pipeline) newProbes() (*api.Server, error) {
	ac := p.cfg.APIConfig()
	ac.Logger = p.log
	comps := p.stageComponents()
	if es := p.ES; es != nil {
		// The sink writes there; its stage reports a failed write only
		// once its retries give up.
		comps = append(comps, api.Component{Name: "elasticsearch", Check: func(ctx context.Context) error {
			_, err := es.Ping(ctx)
			return err
		}})
	}
	status := p.newStatusAssembler()
	stages := api.Stages{Capture: p.roles.Has(config.RoleCapture), Transform: p.roles.Has(config.RoleTransform), Sink: p.roles.Has(config.RoleSink)}
	return api.NewProbes(ac, api.PipelineFuncs{StatusFunc: status.Status, AppliedLSNFunc: p.appliedLSN}, stages, comps)
}

// ProbesAddr returns the address of the health and metrics endpoints of a
// process without the api role once they are up, or nil.
func (p *Pipeline) ProbesAddr() net.Addr {
	p.mu.Lock()
	srv := p.Probes
	p.mu.Unlock()
	return readyAddr(srv)
}
