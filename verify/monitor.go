package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walsearch/walsearch/bus"
)

// Defaults for MonitorConfig.
const (
	DefaultNoProgressAfter = 5 * time.Minute
	DefaultRate            = 1000.0
)

// Health is a sample of the pipeline's progress, for the no-progress watch.
type Health struct {
	// AppliedLSN is the sink's applied watermark.
	AppliedLSN bus.LSN
	// SlotLagBytes is the WAL the replication slot holds back (-1: unknown).
	SlotLagBytes int64
	// Stages are the bus consumers by stage name.
	Stages map[string]StageHealth
}

// StageHealth is one stage's bus consumer.
type StageHealth struct {
	// Pending is the number of messages delivered or waiting and not acked.
	Pending uint64
	// LastAck is when the stage last acknowledged a message (zero: never).
	LastAck time.Time
}

// MonitorConfig configures the background checks of walsearch run.
type MonitorConfig struct {
	// Verify is the verification repeated every Interval (Rate throttles
	// it, Repair repairs what it finds).
	Verify Config
	// Interval between verifications; 0 turns them off. Default: 0.
	Interval time.Duration
	// NoProgressAfter is how long the applied watermark may stand still
	// while the slot has lag, or a stage leave messages unacknowledged,
	// before it is reported; 0 turns the watch off. Default: 5m.
	NoProgressAfter time.Duration
	// Health samples the pipeline; required for the no-progress watch.
	Health func(ctx context.Context) (Health, error)
	Logger *slog.Logger
}

// Monitor runs continuous verification and the no-progress watch, and
// reports them as Prometheus metrics and a status (api.Checks).
type Monitor struct {
	cfg MonitorConfig
	log *slog.Logger

	mu      sync.Mutex
	tables  map[string]*TableCheck
	stalls  map[string]*Stall
	applied bus.LSN
	moved   time.Time // when the applied watermark last moved
	started time.Time
}

// TableCheck is the continuous verification of one table.
type TableCheck struct {
	Table        string    `json:"table"`
	Index        string    `json:"index"`
	Drift        int       `json:"drift"`
	Missing      Keys      `json:"missing"`
	Extra        Keys      `json:"extra"`
	Stale        Keys      `json:"stale"`
	Rows         uint64    `json:"rows"`
	LastVerified time.Time `json:"last_verified,omitzero"`
	Repaired     uint64    `json:"repaired_total"`
	Error        string    `json:"error,omitempty"`
}

// Stall is a check of the no-progress watch that is failing.
type Stall struct {
	Check   string    `json:"check"`
	Since   time.Time `json:"since"`
	Message string    `json:"message"`
}

// MonitorStatus is the "checks" section of GET /status.
type MonitorStatus struct {
	Verify     []TableCheck `json:"verify"`
	NoProgress []Stall      `json:"no_progress"`
}

// NewMonitor returns a Monitor for cfg.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	var errs []error
	if cfg.Interval < 0 {
		errs = append(errs, fmt.Errorf("verify.interval: want 0 (off) or a positive duration, got %s", cfg.Interval))
	}
	if cfg.NoProgressAfter < 0 {
		errs = append(errs, fmt.Errorf("verify.no_progress_after: want 0 (off) or a positive duration, got %s", cfg.NoProgressAfter))
	}
	if cfg.Interval > 0 {
		cfg.Verify = cfg.Verify.withDefaults()
		if err := cfg.Verify.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.NoProgressAfter > 0 && cfg.Health == nil {
		errs = append(errs, errors.New("verify: the no-progress watch needs a Health function"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{cfg: cfg, log: log.With("component", "verify"), tables: map[string]*TableCheck{},
		stalls: map[string]*Stall{}}, nil
}

// Run runs the checks until ctx is done; it returns nil then. The watch
// has its own goroutine so that a long verification never delays it.
func (m *Monitor) Run(ctx context.Context) error {
	now := time.Now()
	m.mu.Lock()
	m.started, m.moved = now, now
	m.mu.Unlock()
	var wg sync.WaitGroup
	if m.cfg.NoProgressAfter > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every(ctx, min(max(m.cfg.NoProgressAfter/10, 100*time.Millisecond), 30*time.Second), func(now time.Time) { m.watch(ctx, now) })
		}()
	}
	if m.cfg.Interval > 0 {
		every(ctx, m.cfg.Interval, func(time.Time) { m.verify(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// every calls fn every d until ctx is done.
func every(ctx context.Context, d time.Duration, fn func(time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			fn(now)
		}
	}
}

// verify runs one verification and records it.
func (m *Monitor) verify(ctx context.Context) {
	rep, err := Run(ctx, m.cfg.Verify)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("continuous verification could not run", "error", err)
		}
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tr := range rep.Tables {
		tc := m.tables[tr.Table]
		if tc == nil {
			tc = &TableCheck{Table: tr.Table}
			m.tables[tr.Table] = tc
		}
		tc.Index, tc.Error, tc.Repaired = tr.Index, tr.Error, tc.Repaired+tr.Repaired
		if tr.Error != "" {
			m.log.Error("continuous verification could not check a table", "table", tr.Table, "error", tr.Error)
			continue
		}
		tc.Drift, tc.Missing, tc.Extra, tc.Stale, tc.Rows, tc.LastVerified = tr.Drift(), tr.Missing, tr.Extra, tr.Stale, tr.Rows, rep.Finished
		if tr.Repaired > 0 {
			m.log.Warn("the index had drifted from its table: repaired", "table", tr.Table, "index", tr.Index, "repaired", tr.Repaired)
		}
		if tr.Drift() > 0 {
			m.log.Error("the index has drifted from its table; run walsearch verify --repair, or set verify.repair",
				"table", tr.Table, "index", tr.Index, "missing", tr.Missing.Count, "extra", tr.Extra.Count, "stale", tr.Stale.Count,
				"missing_ids", tr.Missing.IDs, "extra_ids", tr.Extra.IDs, "stale_ids", tr.Stale.IDs)
		}
	}
}

// watch samples the pipeline's health and updates the stalls.
func (m *Monitor) watch(ctx context.Context, now time.Time) {
	h, err := m.cfg.Health(ctx)
	if err != nil {
		m.log.Debug("cannot sample the pipeline's progress", "error", err)
		return
	}
	after := m.cfg.NoProgressAfter
	m.mu.Lock()
	defer m.mu.Unlock()
	if h.AppliedLSN != m.applied {
		m.applied, m.moved = h.AppliedLSN, now
	}
	failing := map[string]string{}
	if h.SlotLagBytes > 0 && now.Sub(m.moved) >= after {
		failing["applied"] = fmt.Sprintf("the applied watermark stayed at %s for %s while the replication slot holds %d bytes of WAL: "+
			"changes are not reaching the index; check the sink's last_error and the search engine", h.AppliedLSN,
			now.Sub(m.moved).Round(time.Second), h.SlotLagBytes)
	}
	for name, st := range h.Stages {
		last := st.LastAck
		if last.Before(m.started) {
			last = m.started
		}
		if st.Pending > 0 && now.Sub(last) >= after {
			failing["stage:"+name] = fmt.Sprintf("stage %s has %d messages waiting and acknowledged none for %s: "+
				"it is stuck or failing; see its errors in the log and GET /health", name, st.Pending, now.Sub(last).Round(time.Second))
		}
	}
	for check, msg := range failing {
		s := m.stalls[check]
		if s == nil {
			s = &Stall{Check: check, Since: now}
			m.stalls[check] = s
			m.log.Error("no progress: "+msg, "check", check)
		}
		s.Message = msg
	}
	for check := range m.stalls {
		if _, ok := failing[check]; !ok {
			delete(m.stalls, check)
			m.log.Info("progress again", "check", check)
		}
	}
}

// Status implements api.Checks.
func (m *Monitor) Status() any {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := MonitorStatus{Verify: []TableCheck{}, NoProgress: []Stall{}}
	for _, tc := range m.tables {
		st.Verify = append(st.Verify, *tc)
	}
	sort.Slice(st.Verify, func(i, j int) bool { return st.Verify[i].Table < st.Verify[j].Table })
	for _, s := range m.stalls {
		st.NoProgress = append(st.NoProgress, *s)
	}
	sort.Slice(st.NoProgress, func(i, j int) bool { return st.NoProgress[i].Check < st.NoProgress[j].Check })
	return st
}

var (
	descDrift = prometheus.NewDesc("walsearch_verify_drift_documents",
		"Documents that differ from their table at the last verification, by table and kind (missing, extra, stale).", []string{"table", "kind"}, nil)
	descVerified = prometheus.NewDesc("walsearch_verify_last_verified_timestamp_seconds",
		"When the table was last verified completely (Unix time).", []string{"table"}, nil)
	descRepaired = prometheus.NewDesc("walsearch_verify_repaired_documents_total",
		"Drifted documents continuous verification repaired.", []string{"table"}, nil)
	descVerifyErr = prometheus.NewDesc("walsearch_verify_failed",
		"1 when the last verification of the table could not check it.", []string{"table"}, nil)
	descNoProgress = prometheus.NewDesc("walsearch_no_progress",
		"1 while a check of the no-progress watch fails: applied (the applied watermark stands still while the slot has lag) or stage:<name> (a stage acknowledges nothing).",
		[]string{"check"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDrift, descVerified, descRepaired, descVerifyErr, descNoProgress} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tc := range m.tables {
		for kind, k := range map[string]Keys{"missing": tc.Missing, "extra": tc.Extra, "stale": tc.Stale} {
			ch <- prometheus.MustNewConstMetric(descDrift, prometheus.GaugeValue, float64(k.Count), tc.Table, kind)
		}
		if !tc.LastVerified.IsZero() {
			ch <- prometheus.MustNewConstMetric(descVerified, prometheus.GaugeValue, float64(tc.LastVerified.UnixMilli())/1000, tc.Table)
		}
		ch <- prometheus.MustNewConstMetric(descRepaired, prometheus.CounterValue, float64(tc.Repaired), tc.Table)
		failed := 0.0
		if tc.Error != "" {
			failed = 1
		}
		ch <- prometheus.MustNewConstMetric(descVerifyErr, prometheus.GaugeValue, failed, tc.Table)
	}
	checks := []string{"applied"}
	for name := range m.stalls {
		if name != "applied" {
			checks = append(checks, name)
		}
	}
	for _, c := range checks {
		v := 0.0
		if m.stalls[c] != nil {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descNoProgress, prometheus.GaugeValue, v, c)
	}
}
