// Package pipeline wires Walsearch's stages into one process: the bus, the
// search engine client (or the embedded engine), capture, transform, sink and
// the API, each supervised so that a failing dependency (PostgreSQL restart,
// Elasticsearch outage) is retried instead of taking the process down.
//
// It owns no business logic: every decision belongs to a stage.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
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

	Bus     *bus.Bus
	Engine  *eslite.Engine // nil with an external Elasticsearch
	ES      *esclient.Client
	API     *api.Server
	Scripts *transform.Scripts

	stages map[string]*supervised
	sink   *sink.Sink
	mu     sync.Mutex
	cap    *capture.Capture
}

// Start opens the bus and the search engine client.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{cfg: cfg, log: log, stages: map[string]*supervised{}}
	// Scripts load once, here, so that a script that does not compile stops
	// the start with its file and line instead of failing every batch.
	sc := transform.DefaultScriptConfig()
	sc.Dir, sc.Logger = cfg.ScriptsDir, log
	sc.Timeout, sc.MaxDocBytes, sc.ReloadInterval, sc.Workers = cfg.Transform.Timeout, cfg.Transform.MaxDocBytes, cfg.Transform.ReloadInterval, cfg.Transform.Workers
	sc.TimeoutRetries, sc.MaxTimeout = cfg.Transform.TimeoutRetries, cfg.Transform.MaxTimeout
	scripts, err := transform.LoadScripts(sc)
	if err != nil {
		return nil, err
	}
	p.Scripts = scripts
	bc := bus.DefaultConfig()
	bc.URL, bc.DataDir, bc.Listen, bc.Replicas, bc.Logger = cfg.NATS.URL, cfg.DataDir, cfg.NATS.Listen, cfg.NATS.Replicas, log
	b, err := bus.Open(ctx, bc)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("open bus: %w", err)
	}
	p.Bus = b
	ec := esclient.Config{URL: cfg.Elasticsearch.URL, Username: cfg.Elasticsearch.Username,
		Password: cfg.Elasticsearch.Password, APIKey: cfg.Elasticsearch.APIKey, CACert: cfg.Elasticsearch.CACert,
		InsecureSkipVerify: cfg.Elasticsearch.InsecureSkipVerify}
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
	return p, nil
}

// Run checks the search engine and PostgreSQL (a *StartError if they are
// not fit to start), then runs every stage until ctx is done or one fails
// in a way retrying cannot fix.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.preflight(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	// Transform hands its documents to the sink in memory (sink.Handoff);
	// the sink also drains the documents stream, where dead letters are
	// replayed to and where an older version left its backlog.
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
	for name, run := range map[string]func(context.Context) error{
		"capture": p.runCapture, "transform": p.runTransform, "sink": p.runSink,
	} {
		p.stages[name] = &supervised{name: name, log: p.log, run: run}
	}
	srv, err := p.newAPI()
	if err != nil {
		return err
	}
	p.API = srv
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	for _, sv := range p.stages {
		g.Go(func() error { return sv.loop(gctx) })
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (p *Pipeline) runCapture(ctx context.Context) error {
	pub, err := p.Bus.NewChangePublisher()
	if err != nil {
		return err
	}
	defer pub.Close()
	cc := p.captureConfig()
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
	tc := transform.DefaultConfig()
	tc.Logger, tc.Workers = p.log, p.cfg.Transform.Workers
	st, err := transform.New(tc, src, sink.NewHandoff(p.sink), p.Bus, p.Scripts)
	if err != nil {
		return err
	}
	return st.Run(ctx)
}

func (p *Pipeline) runSink(ctx context.Context) error { return p.sink.Run(ctx) }

// newSink makes the sink, reading the documents stream.
func (p *Pipeline) newSink(ctx context.Context) (*sink.Sink, error) {
	src, err := p.Bus.NewReader(ctx, bus.ReaderConfig{Stream: bus.DocsStream, Durable: SinkConsumer})
	if err != nil {
		return nil, err
	}
	sc := sink.DefaultConfig()
	sc.MinBatchSize, sc.MaxBatchSize, sc.SyncInterval, sc.RateLimit = p.cfg.Sink.MinBatchSize, p.cfg.Sink.MaxBatchSize, p.cfg.Sink.SyncInterval, p.cfg.Sink.RateLimit
	sc.Concurrency, sc.ReindexGrace, sc.MaxContentLength = p.cfg.Sink.Concurrency, p.cfg.Sink.ReindexGrace, p.cfg.Sink.MaxContentLength
	sc.Schemas, sc.Control = p.Bus.State(), p.Bus.State()
	sc.Indices = map[string]sink.IndexConfig{}
	for name, ic := range p.cfg.Indices {
		sc.Indices[name] = sink.IndexConfig{Index: ic.Index, Settings: ic.Settings, Mappings: ic.Mappings}
	}
	sc.Logger = p.log
	return sink.New(sc, src, p.ES, p.Bus)
}

func (p *Pipeline) newAPI() (*api.Server, error) {
	ac := api.DefaultConfig()
	a := p.cfg.API
	ac.Listen, ac.Logger = a.Listen, p.log
	ac.RateLimit, ac.RateBurst, ac.CursorSecret, ac.Fallback = a.RateLimit, a.RateBurst, a.CursorSecret, a.Fallback
	if a.RequestTimeout > 0 {
		ac.RequestTimeout = a.RequestTimeout
	}
	if a.BodyLimit > 0 {
		ac.BodyLimit = a.BodyLimit
	}
	if a.MinLSNTimeout > 0 {
		ac.MinLSNTimeout = a.MinLSNTimeout
	}
	if a.BreakerCooldown > 0 {
		ac.BreakerCooldown = a.BreakerCooldown
	}
	for _, k := range a.Keys {
		ac.Keys = append(ac.Keys, api.Key{Key: k.Key, Indices: k.Indices})
	}
	// The API knows indices by the name clients use: the alias.
	alias := func(docIndex string) string {
		if ic, ok := p.cfg.Indices[docIndex]; ok && ic.Index != "" {
			return ic.Index
		}
		return sink.AliasName(docIndex)
	}
	ac.Indices = map[string]api.IndexConfig{}
	for name, ic := range p.cfg.Indices {
		ac.Indices[alias(name)] = api.IndexConfig{HiddenFields: ic.HiddenFields, SearchFields: ic.SearchFields}
	}
	comps := []api.Component{{Name: "bus", Check: p.Bus.Ping}}
	for _, name := range []string{"capture", "transform", "sink"} {
		comps = append(comps, api.Component{Name: name, Check: func(context.Context) error {
			sv := p.stages[name]
			if sv == nil {
				return errors.New("not started")
			}
			return sv.health()
		}})
	}
	// Dead letters are changes missing from the index until someone replays
	// them: health says so, and returns to ok once they are replayed or
	// purged. /health is public, so it does not say how many or of which
	// tables; /status does, to keys allowed to see them.
	comps = append(comps, api.Component{Name: "dead_letters", Check: func(ctx context.Context) error {
		n, err := p.Bus.DLQCount(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: dead letters are waiting, so some changes are not indexed; /status counts them by table: "+
				"fix their cause, then replay or purge them with walsearch dlq", api.ErrNeedsAttention)
		}
		return nil
	}})
	current := func() (*capture.Capture, *sink.Sink) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.cap, p.sink
	}
	// Managed indices: every table whose schema capture stored, every
	// configured table and index, every table capture is snapshotting, and
	// every index a table's script may route documents to.
	indices := func(ctx context.Context) ([]api.ManagedIndex, error) {
		byName := map[string]api.ManagedIndex{}
		// A table with a script may reshape, filter or route its rows, so
		// its indices do not hold the rows as they are: the PostgreSQL
		// fallback must not answer for them (no Columns).
		scripted := map[string]bool{}
		for _, t := range p.Scripts.Tables() {
			scripted[t] = true
		}
		rowKeys := map[string][]string{} // row keys by "schema.table"
		add := func(schema, table string, ts *bus.TableSchema) {
			mi := api.ManagedIndex{Name: alias(bus.IndexName(schema, table)), Schema: schema, Table: table}
			if ts != nil {
				mi.Key = ts.Key
				rowKeys[schema+"."+table] = ts.Key
				if !scripted[schema+"."+table] {
					for _, c := range ts.Columns {
						mi.Columns = append(mi.Columns, c.Name)
					}
				}
			}
			if old, ok := byName[mi.Name]; !ok || len(old.Key) == 0 {
				byName[mi.Name] = mi
			}
		}
		kv, err := p.Bus.JetStream().KeyValue(ctx, bus.StateBucket)
		if err != nil {
			return nil, fmt.Errorf("open state: %w", err)
		}
		lister, err := kv.ListKeysFiltered(ctx, "schema.>")
		if err != nil {
			return nil, fmt.Errorf("list table schemas: %w", err)
		}
		var keys []string
		for k := range lister.Keys() { // closed once every key was listed
			keys = append(keys, k)
		}
		for _, k := range keys {
			raw, ok, err := p.Bus.State().Get(ctx, k)
			if err != nil || !ok {
				continue
			}
			var ts bus.TableSchema
			if json.Unmarshal(raw, &ts) == nil && ts.Table != "" {
				add(ts.Schema, ts.Table, &ts)
			}
		}
		for _, t := range p.cfg.Postgres.Tables {
			schema, table, ok := strings.Cut(t, ".")
			if !ok {
				schema, table = "public", t
			}
			add(schema, table, nil)
		}
		if c, _ := current(); c != nil {
			for _, t := range c.Status().Tables {
				add(t.Schema, t.Table, nil)
			}
		}
		// A truncate reaches every index a table's documents can be in: its
		// own and every index its script declares (routing anywhere else is
		// refused), so mapping one, which has no other effect, lists them.
		routedFrom := map[string][]string{} // tables by routed index
		for t := range scripted {
			schema, table, _ := strings.Cut(t, ".")
			docs, err := p.Scripts.Map(&bus.Change{Op: bus.OpTruncate, Schema: schema, Table: table})
			if err != nil {
				continue
			}
			for _, d := range docs {
				if name := alias(d.Index); name != alias(bus.IndexName(schema, table)) {
					routedFrom[name] = append(routedFrom[name], t)
				}
			}
		}
		for name, tables := range routedFrom {
			if _, ok := byName[name]; ok {
				continue
			}
			mi := api.ManagedIndex{Name: name}
			if len(tables) == 1 { // an index fed by several tables has no one table or key
				mi.Schema, mi.Table, _ = strings.Cut(tables[0], ".")
				mi.Key = rowKeys[tables[0]]
			}
			byName[name] = mi
		}
		for name := range p.cfg.Indices {
			if _, ok := byName[alias(name)]; !ok {
				byName[alias(name)] = api.ManagedIndex{Name: alias(name)}
			}
		}
		out := make([]api.ManagedIndex, 0, len(byName))
		for _, mi := range byName {
			out = append(out, mi)
		}
		return out, nil
	}
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, p.cfg.Postgres.URL) }
	dlq := newDLQTally(p.Bus.JetStream())
	searchable := newSearchable(p.ES)
	status := func(ctx context.Context) (api.PipelineStatus, error) {
		st := api.PipelineStatus{SlotLagBytes: -1, Backlog: map[string]uint64{}}
		c, sk := current()
		if c != nil {
			cs := c.Status()
			st.Capture = api.CaptureStatus{Phase: string(cs.Phase), Slot: cs.Slot, ReceivedLSN: cs.ReceivedLSN, ConfirmedLSN: cs.ConfirmedLSN}
			for _, t := range cs.Tables {
				st.Tables = append(st.Tables, api.TableProgress{Schema: t.Schema, Table: t.Table,
					Index: alias(bus.IndexName(t.Schema, t.Table)), Snapshot: t.State, SnapshotRows: t.Rows, SnapshotLSN: cs.SnapshotLSN})
			}
		} else {
			st.Capture.Phase = string(capture.PhaseIdle)
		}
		st.Tables = p.withRecordedSnapshots(ctx, st.Tables, alias)
		var applied bus.LSN
		if sk != nil {
			applied = sk.Status().AppliedLSN
		}
		searchable.apply(ctx, st.Tables, applied)
		if sk != nil {
			ss := sk.Status()
			st.Sink = api.SinkStatus{Indexed: ss.Indexed, Deleted: ss.Deleted, Stale: ss.Stale, DeadLetters: ss.DeadLetters,
				Retries: ss.Retries, AppliedLSN: ss.AppliedLSN, LastCommit: ss.LastCommit, LastError: ss.LastError,
				BatchSize: ss.BatchSize, InFlight: ss.InFlight, BulkDocs: ss.BulkDocs[:], BulkDocsSum: ss.BulkDocsSum}
			bounds := sink.BulkDocBuckets()
			st.Sink.BulkDocBounds = bounds[:]
		}
		n, byTable, err := dlq.count(ctx)
		st.DeadLetters, st.DeadLettersByTable = n, byTable
		if err != nil {
			p.log.Warn("count dead letters", "error", err)
		}
		for stream, consumer := range map[string]string{bus.ChangesStream: TransformConsumer, bus.DocsStream: SinkConsumer} {
			if cons, err := p.Bus.JetStream().Consumer(ctx, stream, consumer); err == nil {
				if info, err := cons.Info(ctx); err == nil {
					st.Backlog[consumer] = info.NumPending + uint64(info.NumAckPending)
				}
			}
		}
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if conn, err := connect(qctx); err == nil {
			var wal string
			var slotLag *int64
			if conn.QueryRow(qctx, `SELECT pg_current_wal_lsn()::text, (SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1)`,
				p.cfg.Postgres.Slot).Scan(&wal, &slotLag) == nil {
				st.WALLSN, _ = bus.ParseLSN(wal)
				if slotLag != nil {
					st.SlotLagBytes = *slotLag
				}
			}
			_ = conn.Close(qctx)
		}
		return st, nil
	}
	src := api.PipelineFuncs{
		IndicesFunc: indices,
		AppliedLSNFunc: func() bus.LSN {
			if _, sk := current(); sk != nil {
				return sk.Status().AppliedLSN
			}
			return 0
		},
		StatusFunc: status,
	}
	opts := []api.Option{api.WithDeadLetters(&deadLetterStore{js: p.Bus.JetStream()})}
	if a.Fallback == api.FallbackPostgres {
		opts = append(opts, api.WithPostgres(connect))
	}
	return api.New(ac, p.ES, src, comps, opts...)
}

// APIAddr returns the API's listening address once it is up, or nil.
func (p *Pipeline) APIAddr() net.Addr {
	if p.API == nil {
		return nil
	}
	select {
	case <-p.API.Ready():
		return p.API.Addr()
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
	return errors.Join(errs...)
}

// HTTPClient is a client for the API (for tests and the CLI).
func HTTPClient() *http.Client { return &http.Client{Timeout: 30 * time.Second} }
