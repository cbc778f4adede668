package pipeline

import (
	"context"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/verify"
)

// newMonitor makes the background checks: continuous verification
// (verify.interval) and the no-progress watch (verify.no_progress_after).
func (p *Pipeline) newMonitor() (*verify.Monitor, error) {
	vc := verify.DefaultConfig()
	vc.URL, vc.Publication, vc.Slot = p.cfg.Postgres.URL, p.cfg.Postgres.Publication, p.cfg.Postgres.Slot
	vc.Tables, vc.Scripts, vc.ES, vc.Alias = p.cfg.Postgres.Tables, p.Scripts, p.ES, p.alias
	vc.Rate, vc.Repair, vc.Settle, vc.Logger = p.cfg.Verify.Rate, p.cfg.Verify.Repair, p.cfg.Verify.Settle, p.log
	vc.Applied = func(context.Context) (bus.LSN, error) { return p.appliedLSN(), nil }
	p.mu.Lock()
	vc.Skip = p.unverifiable
	if p.rebuilder != nil {
		vc.Documents = p.rebuilder
	}
	p.mu.Unlock()
	return verify.NewMonitor(verify.MonitorConfig{Verify: vc, Interval: p.cfg.Verify.Interval,
		NoProgressAfter: p.cfg.Verify.NoProgressAfter, Health: p.health, Logger: p.log})
}

// alias maps a document's index name to the alias the sink writes to.
func (p *Pipeline) alias(docIndex string) string { return p.cfg.IndexAlias(docIndex) }

// appliedLSN is the sink's applied LSN: this process's sink's, or, in a
// process without one, the one the sink recorded in the state bucket.
func (p *Pipeline) appliedLSN() bus.LSN {
	p.mu.Lock()
	sk, w := p.sink, p.applied
	p.mu.Unlock()
	switch {
	case sk != nil:
		return sk.Status().AppliedLSN
	case w != nil:
		return w.load()
	}
	return 0
}

// health samples the pipeline for the no-progress watch.
func (p *Pipeline) health(ctx context.Context) (verify.Health, error) {
	h := verify.Health{AppliedLSN: p.appliedLSN(), SlotLagBytes: -1, Stages: map[string]verify.StageHealth{}}
	for stage, c := range map[string][2]string{"transform": {bus.ChangesStream, TransformConsumer}, "sink": {bus.DocsStream, SinkConsumer}} {
		cons, err := p.Bus.JetStream().Consumer(ctx, c[0], c[1])
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		st := verify.StageHealth{Pending: info.NumPending + uint64(info.NumAckPending)}
		if info.AckFloor.Last != nil {
			st.LastAck = *info.AckFloor.Last
		}
		h.Stages[stage] = st
	}
	// The slot's lag as capture last measured it (unknown while capture
	// is down: then only the stages are watched).
	p.mu.Lock()
	c := p.cap
	p.mu.Unlock()
	if c != nil {
		h.SlotLagBytes = c.Status().SlotLagBytes
	}
	return h, nil
}
