// Package pipeline wires Walsearch's stages into one process: the bus, the
// search engine client (or the embedded engine), capture, transform, sink and
// the API, each supervised so that a failing dependency (PostgreSQL restart,
// Elasticsearch outage) is retried instead of taking the process down.
//
// It owns no business logic: every decision belongs to a stage.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/documents"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/sink"
	"github.com/walsearch/walsearch/transform"
)

// Durable consumer names.
const (
	TransformConsumer = "transform"
	SinkConsumer      = "sink"
)

// Pipeline is a running set of stages.
//
// Lifecycle: Start opens the bus and the search engine; Run runs every stage
// until ctx is done (clean stop, nil) or a stage cannot be started at all;
// Close releases the bus and the engine. In-flight batches are left
// unacknowledged on stop and are delivered again on the next start.
type Pipeline struct {
	cfg config.Config
	log *slog.Logger

	Bus    *bus.Bus
	Engine *eslite.Engine // nil with an external Elasticsearch
	ES     *esclient.Client
	API    *api.Server
	// Probes serves /health, /health/live and /metrics in a process
	// without the api role (see probes.go); nil otherwise.
	Probes  *api.Server
	Scripts *transform.Scripts

	// FaultIgnoreLeaseLoss is fault injection, for tests only: capture
	// keeps running when its lease is lost, as if it had not noticed yet,
	// so that only the publisher's fence stands between it and the bus.
	FaultIgnoreLeaseLoss bool

	// roles says which stages this process runs (all by default).
	roles config.Roles
	// lease elects the capture leader among processes sharing an external
	// NATS; nil with the embedded one or without the capture role.
	lease *bus.Lease
	// workLease lets one process at a time run this process's transform
	// and sink stages on an external NATS (see workLeaseKey); nil with the
	// embedded one or without those roles.
	workLease *bus.Lease
	// applied follows the sink's applied LSN through the state bucket, in
	// a process without the sink role, or with several partitions on an
	// external NATS; nil otherwise.
	applied *appliedWatch
	// parts holds the stages of the partitions this process works on,
	// with several partitions (see partitions.go).
	parts *partitionSet

	stages map[string]*supervised
	// searchable tells when a snapshot's rows are searchable, for /status
	// and the snapshot's log lines.
	searchable *searchable
	sink       *sink.Sink
	mu         sync.Mutex
	cap        *capture.Capture
	// docs maps changes when documents are defined (see documents.go);
	// docTables are the tables the definitions read.
	docs *documents.Assembler
	// newAssembler makes another assembler of the same definitions, and
	// partDocs holds those of partitions other than 0 (partitionMapper).
	newAssembler func() (*documents.Assembler, error)
	partDocs     map[int]*documents.Assembler
	docTables    []string
	unverifiable []string             // verify.Config.Skip: tables captured only for definitions
	rebuilder    *documents.Rebuilder // verify.Config.Documents; nil without definitions
	// docRoots and docOnly are the definitions' roots and the tables
	// captured only for them, by "schema.table" (see catalog).
	docRoots, docOnly map[string]bool
}

// Start opens the bus and the search engine client.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{cfg: cfg, log: log, roles: cfg.Roles(), stages: map[string]*supervised{}, parts: newPartitionSet()}
	// Scripts load once, here, so that a script that does not compile stops
	// the start with its file and line instead of failing every batch.
	sc := cfg.ScriptConfig()
	sc.Logger = log
	scripts, err := transform.LoadScripts(sc)
	if err != nil {
		return nil, err
	}
	p.Scripts = scripts
	bc := cfg.BusConfig()
	bc.Logger = log
	b, err := openBus(ctx, bc, log)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("open bus: %w", err)
	}
	p.Bus = b
	if err := p.agreePartitions(ctx); err != nil {
		p.Close()
		return nil, err
	}
	if p.roles.Has(config.RoleCapture) && !b.Embedded() {
		if p.lease, err = openLease(ctx, b, bus.LeaseConfig{Key: bus.CaptureLease, Holder: holderID(),
			TTL: p.captureConfig().LeaseTTL, Logger: log}, log); err != nil {
			p.Close()
			return nil, err
		}
	}
	if key := workLeaseKey(p.roles); key != "" && !b.Embedded() && !p.partitioned() {
		if p.workLease, err = b.OpenLease(ctx, bus.LeaseConfig{Key: key, Holder: holderID(),
			TTL: p.captureConfig().LeaseTTL, Logger: log}); err != nil {
			p.Close()
			return nil, err
		}
	}
	if !p.roles.Has(config.RoleSink) && !p.roles.Has(config.RoleAPI) {
		return p, nil // capture and transform never reach the search engine
	}
	ec := cfg.ESConfig()
	if ec.InsecureSkipVerify {
		log.Warn("elasticsearch.insecure_skip_verify is on: the search engine's certificate is not checked; use elasticsearch.ca_cert outside test clusters")
	}
	if cfg.Elasticsearch.URL == "" {
		eng, err := eslite.Open(eslite.Config{Dir: filepath.Join(cfg.DataDir, "eslite"), Logger: log.With("component", "eslite")})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("open embedded search engine: %w", err)
		}
		p.Engine = eng
		ec.Transport = eng.RoundTripper()
	}
	p.ES, err = esclient.New(ec)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.searchable = newSearchable(p.ES)
	return p, nil
}

// Run checks the search engine and PostgreSQL (a *StartError if they are
// not fit to start), then runs every stage until ctx is done or one fails
// in a way retrying cannot fix.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.preflight(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	if err := p.loadDocuments(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	// Transform hands its documents to the sink in memory (sink.Handoff)
	// when both run here; the sink also drains the documents stream, where
	// a transform in another process publishes, dead letters are replayed
	// to and an older version left its backlog.
	if p.roles.Has(config.RoleSink) && !p.partitioned() {
		s, err := p.newSink(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped while starting: a clean stop
			}
			return err
		}
		p.mu.Lock()
		p.sink = s
		p.mu.Unlock()
	}
	runs := map[config.Role]func(context.Context) error{
		config.RoleCapture: p.runCapture, config.RoleTransform: p.runTransform, config.RoleSink: p.runSink,
	}
	g, gctx := errgroup.WithContext(ctx)
	gate := p.holdWorkLease(gctx, g)
	for role, run := range runs {
		if !p.roles.Has(role) {
			continue
		}
		if role != config.RoleCapture && p.partitioned() {
			continue // one stage per partition held, see runPartitions
		}
		if role != config.RoleCapture {
			run = whenHeld(gate, run)
		}
		p.stages[string(role)] = &supervised{name: string(role), log: p.log, run: run}
	}
	if p.partitioned() && (p.roles.Has(config.RoleTransform) || p.roles.Has(config.RoleSink)) {
		g.Go(func() error { return p.runPartitions(gctx) })
	}
	if p.roles.Has(config.RoleSink) && !p.Bus.Embedded() {
		// For API processes elsewhere on the same NATS.
		g.Go(func() error { return p.recordApplied(gctx) })
	}
	if p.roles.Has(config.RoleAPI) {
		if !p.roles.Has(config.RoleSink) || p.partitioned() && !p.Bus.Embedded() {
			w := newAppliedWatch(p.Bus.State(), p.Bus.Partitions(), p.log)
			p.mu.Lock()
			p.applied = w
			p.mu.Unlock()
			g.Go(func() error { return w.run(gctx) })
		}
		monitor, err := p.newMonitor()
		if err != nil {
			return err
		}
		srv, err := p.newAPI(api.WithChecks(monitor))
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.API = srv
		p.mu.Unlock()
		g.Go(func() error { return srv.Run(gctx) })
		g.Go(func() error { return monitor.Run(gctx) })
		if p.roles.Has(config.RoleCapture) {
			g.Go(func() error { p.watchSnapshot(gctx, capture.TerminalStderr()); return nil })
		}
	}
	if !p.roles.Has(config.RoleAPI) {
		srv, err := p.newProbes()
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.Probes = srv
		p.mu.Unlock()
		g.Go(func() error { return srv.Run(gctx) })
	}
	for _, sv := range p.stages {
		g.Go(func() error { return sv.loop(gctx) })
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// workLeaseKey names the lease that transform and sink processes of one
// kind share: a second process of the same kind stands by instead of
// consuming the same stream (two consumers would break each document's
// order). "" when roles run neither stage. With several partitions it
// prefixes the partitions' leases and names the kind of their members.
// Key-value keys allow [-/_=.a-zA-Z0-9] only.
func workLeaseKey(roles config.Roles) string {
	t, s := roles.Has(config.RoleTransform), roles.Has(config.RoleSink)
	switch {
	case t && s:
		return "transform_sink"
	case t:
		return "transform"
	case s:
		return "sink"
	}
	return ""
}

// holdWorkLease starts, in g, acquiring and holding the work lease, again
// each time it is lost, and returns the gate through which the transform
// and sink stages run only while it is held (nil without a lease: they
// just run).
func (p *Pipeline) holdWorkLease(ctx context.Context, g *errgroup.Group) *workGate {
	if p.workLease == nil {
		return nil
	}
	gate := &workGate{ready: make(chan struct{})}
	g.Go(func() error {
		for ctx.Err() == nil {
			release, err := p.acquire(ctx, p.workLease, "work")
			if release == nil {
				if err == nil {
					return nil // stopped
				}
				p.log.Warn("acquire the work lease; trying again", "error", err)
				t := time.NewTimer(time.Second)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
				continue
			}
			held, lost := context.WithCancel(ctx)
			gate.open(held)
			err = p.workLease.Hold(held)
			gate.close()
			lost() // the stages running under it stop
			release()
			if ctx.Err() == nil {
				p.log.Warn("work lease lost: transform and sink stop until it is held again", "error", err)
			}
		}
		return nil
	})
	return gate
}

// workGate hands the transform and sink stages the context of the current
// hold of the work lease.
type workGate struct {
	mu    sync.Mutex
	held  context.Context // nil while the lease is not held
	ready chan struct{}   // closed once held is set
}

func (w *workGate) open(held context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held = held
	close(w.ready)
}

func (w *workGate) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held, w.ready = nil, make(chan struct{})
}

// wait returns the context of the current hold once the lease is held, or
// false when ctx ends first.
func (w *workGate) wait(ctx context.Context) (context.Context, bool) {
	for {
		w.mu.Lock()
		held, ready := w.held, w.ready
		w.mu.Unlock()
		if held != nil && held.Err() == nil {
			return held, true
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// whenHeld runs run while the work lease is held: it waits for it, and
// stops run when it is lost, with an error, so that the stage's supervisor
// runs it again once the lease is held again.
func whenHeld(gate *workGate, run func(context.Context) error) func(context.Context) error {
	if gate == nil {
		return run
	}
	return func(ctx context.Context) error {
		held, ok := gate.wait(ctx)
		if !ok {
			return nil
		}
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(held, cancel)()
		err := run(rctx)
		if ctx.Err() == nil && held.Err() != nil {
			return fmt.Errorf("stopped: %w", bus.ErrLeaseLost)
		}
		return err
	}
}

// acquire waits until this process holds lease, and returns the function
// that hands it over: at once on a clean stop (after a crash it expires
// instead). It returns a nil release when ctx ended first, or with the
// error that kept it from the lease.
func (p *Pipeline) acquire(ctx context.Context, lease *bus.Lease, name string) (release func(), err error) {
	if _, err := lease.Acquire(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, err
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			p.log.Warn("release the "+name+" lease", "error", err)
		}
	}, nil
}

// runCapture runs capture; with a lease, only once this process holds it,
// and only as long as it does.
func (p *Pipeline) runCapture(ctx context.Context) error {
	if p.lease == nil {
		return p.capture(ctx, nil)
	}
	release, err := p.acquire(ctx, p.lease, "capture")
	if release == nil {
		return err
	}
	defer release()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := p.lease.Hold(gctx)
		if err != nil && p.FaultIgnoreLeaseLoss {
			p.log.Warn("FAULT INJECTION: capture goes on after losing its lease", "error", err)
			return nil
		}
		return err
	})
	g.Go(func() error { return p.capture(gctx, p.lease) })
	return g.Wait()
}

// capture runs the capture stage, every publish checked against fence
// when not nil.
func (p *Pipeline) capture(ctx context.Context, fence bus.Fence) error {
	pub, err := p.Bus.NewChangePublisher()
	if err != nil {
		return err
	}
	defer pub.Close()
	cc := p.captureConfig()
	if fence != nil {
		pub.SetFence(fence)
		cc.TakeOverSlot = true
	}
	cc.Progress = capture.TerminalStderr()
	c, err := capture.New(cc, pub, p.Bus.State())
	if err != nil {
		return err
	}
	defer c.Close()
	p.mu.Lock()
	p.cap = c
	p.mu.Unlock()
	return c.Run(ctx)
}

func (p *Pipeline) runTransform(ctx context.Context) error {
	src, err := p.Bus.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: TransformConsumer})
	if err != nil {
		return err
	}
	tc := p.cfg.TransformConfig()
	tc.Logger = p.log
	var out transform.Publisher
	if p.roles.Has(config.RoleSink) {
		out = sink.NewHandoff(p.sink)
	} else {
		// The sink runs elsewhere: documents travel on the documents
		// stream, and a change is acked once its documents are stored there.
		pub, err := p.Bus.NewDocPublisher()
		if err != nil {
			return err
		}
		defer pub.Close()
		out = pub
	}
	st, err := transform.New(tc, src, out, p.Bus, p.mapper())
	if err != nil {
		return err
	}
	return st.Run(ctx)
}

// runSink runs the sink on a new reader of the documents stream each time,
// so that a run after a failed one gets the failed batch first, in order.
func (p *Pipeline) runSink(ctx context.Context) error {
	src, err := p.Bus.NewReader(ctx, bus.ReaderConfig{Stream: bus.DocsStream, Durable: SinkConsumer})
	if err != nil {
		return err
	}
	p.sink.UseSource(src)
	return p.sink.Run(ctx)
}

// newSink makes the sink, reading the documents stream.
func (p *Pipeline) newSink(ctx context.Context) (*sink.Sink, error) {
	src, err := p.Bus.NewReader(ctx, bus.ReaderConfig{Stream: bus.DocsStream, Durable: SinkConsumer})
	if err != nil {
		return nil, err
	}
	sc := p.cfg.SinkConfig()
	sc.Schemas, sc.Control, sc.Logger = p.Bus.State(), p.Bus.State(), p.log
	return sink.New(sc, src, p.ES, p.Bus)
}

func (p *Pipeline) newAPI(opts ...api.Option) (*api.Server, error) {
	ac := p.cfg.APIConfig()
	ac.Logger = p.log
	if p.Engine != nil {
		ac.Engine = p.Engine
	}
	dlq := p.Bus.DeadLetters()
	comps := p.stageComponents()
	// Dead letters are changes missing from the index until someone replays
	// them: health says so, and returns to ok once they are replayed or
	// purged. /health is public, so it does not say how many or of which
	// tables; /status does, to keys allowed to see them.
	comps = append(comps, api.Component{Name: "dead_letters", Check: func(ctx context.Context) error {
		n, err := dlq.Count(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: dead letters are waiting, so some changes are not indexed; /status counts them by table: "+
				"fix their cause, then replay or purge them with walsearch dlq", api.ErrNeedsAttention)
		}
		return nil
	}})
	p.mu.Lock()
	built, docOnly := p.docRoots, p.docOnly
	p.mu.Unlock()
	cat := &catalog{cfg: p.cfg, state: p.Bus.State(), scripts: p.Scripts,
		capture: func() *capture.Capture { c, _ := p.running(); return c }, built: built, docOnly: docOnly}
	status := p.newStatusAssembler()
	src := api.PipelineFuncs{
		IndicesFunc:    cat.Indices,
		AppliedLSNFunc: p.appliedLSN,
		StatusFunc:     status.Status,
	}
	opts = append(opts, api.WithDeadLetters(&deadLetterStore{dl: p.Bus.DeadLetters()}))
	if ac.Fallback == api.FallbackPostgres {
		opts = append(opts, api.WithPostgres(func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, p.cfg.Postgres.URL) }))
	}
	return api.New(ac, p.ES, src, comps, opts...)
}

// stageComponents are what /health checks of this process's own work: the
// bus, and each stage that runs here (another process's stages report
// their own health).
func (p *Pipeline) stageComponents() []api.Component {
	comps := []api.Component{{Name: "bus", Check: p.Bus.Ping}}
	for _, name := range []string{"capture", "transform", "sink"} {
		if !p.roles.Has(config.Role(name)) {
			continue
		}
		comps = append(comps, api.Component{Name: name, Check: func(context.Context) error {
			if name != "capture" && p.partitioned() {
				return p.parts.health(name)
			}
			sv := p.stages[name]
			if sv == nil {
				return errors.New("not started")
			}
			return sv.health()
		}})
	}
	return comps
}

// newStatusAssembler builds the pipeline's status for /status and
// /metrics, from what runs in this process and what the bus records.
func (p *Pipeline) newStatusAssembler() *statusAssembler {
	p.mu.Lock()
	docOnly := p.docOnly
	p.mu.Unlock()
	return &statusAssembler{bus: p.Bus, applied: p.appliedLSN, deadLetters: p.Bus.DeadLetters(), slot: p.cfg.Postgres.Slot,
		alias: p.cfg.IndexAlias, stages: p.running, sink: p.sinkStatus, searchable: p.searchable, docOnly: docOnly, log: p.log}
}

// openBus opens the bus. An external NATS that does not answer yet (a
// cluster starting, electing its JetStream leader) is waited for, as the
// stages wait for PostgreSQL and Elasticsearch; a wrong setting is not.
func openBus(ctx context.Context, bc bus.Config, log *slog.Logger) (*bus.Bus, error) {
	backoff := time.Second
	for {
		b, err := bus.Open(ctx, bc)
		if err == nil || bc.URL == "" || ctx.Err() != nil || !bus.Transient(err) {
			return b, err
		}
		log.Warn("NATS does not answer yet; trying again", "nats", bus.RedactURL(bc.URL), "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		backoff = min(2*backoff, 15*time.Second)
	}
}

// openLease opens the capture lease. A cluster that does not answer in
// time (several capture processes creating the bucket at once while it
// elects the bucket's leader) is waited for, as openBus waits; a wrong
// setting is not.
func openLease(ctx context.Context, b *bus.Bus, lc bus.LeaseConfig, log *slog.Logger) (*bus.Lease, error) {
	backoff := time.Second
	for {
		l, err := b.OpenLease(ctx, lc)
		if err == nil || ctx.Err() != nil || !bus.Transient(err) {
			return l, err
		}
		log.Warn("NATS does not answer yet; trying again", "bucket", bus.LeaseBucket, "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		backoff = min(2*backoff, 15*time.Second)
	}
}

// running returns the running capture and sink, or nil.
func (p *Pipeline) running() (*capture.Capture, *sink.Sink) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cap, p.sink
}

// sinkStatus returns the status of the sink running here, if any: with
// several partitions, the counters of the partitions this process holds
// added up, and the applied LSN of all of them.
func (p *Pipeline) sinkStatus() (sink.Status, bool) {
	if !p.partitioned() {
		_, sk := p.running()
		if sk == nil {
			return sink.Status{}, false
		}
		return sk.Status(), true
	}
	if !p.roles.Has(config.RoleSink) {
		return sink.Status{}, false
	}
	var sum sink.Status
	for _, sk := range p.parts.held() {
		st := sk.Status()
		sum.Indexed += st.Indexed
		sum.Deleted += st.Deleted
		sum.Stale += st.Stale
		sum.DeadLetters += st.DeadLetters
		sum.Retries += st.Retries
		sum.Splits += st.Splits
		sum.LastVersion = max(sum.LastVersion, st.LastVersion)
		if st.LastCommit.After(sum.LastCommit) {
			sum.LastCommit = st.LastCommit
		}
		if st.LastError != "" {
			sum.LastError = st.LastError
		}
		sum.BatchSize = max(sum.BatchSize, st.BatchSize)
		sum.InFlight += st.InFlight
		for i := range sum.BulkDocs {
			sum.BulkDocs[i] += st.BulkDocs[i]
		}
		sum.BulkDocsSum += st.BulkDocsSum
		sum.Reindexing = append(sum.Reindexing, st.Reindexing...)
	}
	sum.AppliedLSN = p.appliedLSN()
	return sum, true
}

// APIAddr returns the API's listening address once it is up, or nil.
func (p *Pipeline) APIAddr() net.Addr {
	p.mu.Lock()
	srv := p.API
	p.mu.Unlock()
	return readyAddr(srv)
}

// readyAddr returns srv's listening address once it is up, or nil.
func readyAddr(srv *api.Server) net.Addr {
	if srv == nil {
		return nil
	}
	select {
	case <-srv.Ready():
		return srv.Addr()
	default:
		return nil
	}
}

// Close releases the engine and the bus.
func (p *Pipeline) Close() error {
	var errs []error
	if p.Engine != nil {
		errs = append(errs, p.Engine.Close())
	}
	if p.Bus != nil {
		errs = append(errs, p.Bus.Close())
	}
	if p.Scripts != nil {
		errs = append(errs, p.Scripts.Close())
	}
	errs = append(errs, p.closeDocuments())
	return errors.Join(errs...)
}

// HTTPClient is a client for the API (for tests and the CLI).
func HTTPClient() *http.Client { return &http.Client{Timeout: 30 * time.Second} }
