package pipeline

import (
	"context"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
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
	if p.partitioned() && w == nil && p.roles.Has(config.RoleSink) {
		// The embedded NATS: this process holds every partition.
		return p.localApplied()
	}
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
	n := p.Bus.Partitions()
	for stage, c := range map[string][2]string{"transform": {bus.ChangesStream, TransformConsumer}, "sink": {bus.DocsStream, SinkConsumer}} {
		// With several partitions: the stage's backlog over every
		// partition, and its latest acknowledgement in any.
		var st verify.StageHealth
		found := false
		for k := range n {
			cons, err := p.Bus.JetStream().Consumer(ctx, c[0], bus.PartitionName(c[1], "-", k, n))
			if err != nil {
				continue
			}
			info, err := cons.Info(ctx)
			if err != nil {
				continue
			}
			found = true
			st.Pending += info.NumPending + uint64(info.NumAckPending)
			if info.AckFloor.Last != nil && info.AckFloor.Last.After(st.LastAck) {
				st.LastAck = *info.AckFloor.Last
			}
		}
		if found {
			h.Stages[stage] = st
		}
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

// localApplied is the lowest applied LSN of every partition's sink, all
// of them in this process (0 while one is missing).
func (p *Pipeline) localApplied() bus.LSN {
	sinks := p.parts.held()
	var low bus.LSN
	for k := range p.Bus.Partitions() {
		sk := sinks[k]
		if sk == nil {
			return 0
		}
		if a := sk.Status().AppliedLSN; k == 0 || a < low {
			low = a
		}
	}
	return low
}
