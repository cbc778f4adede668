package transform

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// Defaults for ScriptConfig.
const (
	DefaultScriptTimeout  = 100 * time.Millisecond
	DefaultTimeoutRetries = 4
	DefaultMaxDocBytes    = 10 << 20
	DefaultReloadInterval = 2 * time.Second
	DefaultLogRate        = 10
	DefaultLogBurst       = 50
)

// ScriptConfig configures per-table scripts.
type ScriptConfig struct {
	// Dir holds one folder per table with a transform.js in it (see
	// ScriptPath). A missing folder means no scripts yet. Default: "./scripts".
	Dir string `koanf:"-"`
	// Timeout bounds every call into a script; a call that runs longer is
	// interrupted, and tried again (see TimeoutRetries). Default: 100ms.
	Timeout time.Duration `koanf:"timeout" help:"time limit of every call into a script; a call that runs longer is interrupted, tried again (transform.timeout_retries), then its change is dead-lettered"`
	// TimeoutRetries is how many times a call interrupted by its time limit
	// is tried again before its change is dead-lettered, each time with
	// twice the previous limit, up to MaxTimeout. The limit is wall-clock
	// time, so a fast script can overrun it while the machine is busy; a
	// script that loops forever is dead-lettered after all of them. A
	// thrown exception is never tried again. 0 turns retries off.
	// Default: 4 (limits of 100ms, 200ms, 400ms, 800ms and 1s: 2.5s in all
	// before a change that never finishes is dead-lettered).
	TimeoutRetries int `koanf:"timeout_retries" help:"how many times a call that ran out of time is tried again, each time with twice the limit up to transform.max_timeout (0 to 10; 0 turns retries off)"`
	// MaxTimeout is the largest limit a retry gets. Default: 0, meaning
	// 10 × Timeout.
	MaxTimeout time.Duration `koanf:"max_timeout" help:"largest limit a retry gets; 0 means 10 × transform.timeout"`
	// MaxDocBytes is the largest document (as JSON) a script may return; a
	// larger one is dead-lettered. Default: 10 MiB.
	MaxDocBytes int `koanf:"max_doc_bytes" help:"largest document, as JSON, a script may return; a larger one is dead-lettered"`
	// ReloadInterval is how often Dir is checked for added, changed and
	// removed scripts. Zero turns hot reload off. Default: 2s.
	ReloadInterval time.Duration `koanf:"reload_interval" help:"how often scripts_dir is checked for added, edited and removed scripts; 0 turns hot reload off"`
	// Workers is how many idle runtimes each script keeps; match it to the
	// stage's Workers. Default: 0, meaning GOMAXPROCS.
	Workers int `koanf:"workers" help:"changes mapped at once; 0 means one per CPU"`
	// LogRate and LogBurst limit console output per table (messages per
	// second, and burst). Default: 10 and 50.
	LogRate  float64 `koanf:"-"`
	LogBurst int     `koanf:"-"`
	// Logger receives console output and reload messages. Default: discard.
	Logger *slog.Logger `koanf:"-"`
}

// DefaultScriptConfig returns a ScriptConfig with every default filled in.
func DefaultScriptConfig() ScriptConfig {
	return ScriptConfig{
		Dir: "./scripts", Timeout: DefaultScriptTimeout, TimeoutRetries: DefaultTimeoutRetries, MaxDocBytes: DefaultMaxDocBytes,
		ReloadInterval: DefaultReloadInterval, LogRate: DefaultLogRate, LogBurst: DefaultLogBurst,
	}
}

// Validate reports every problem with c.
func (c ScriptConfig) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("scripts_dir: required"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("transform.timeout: want a positive duration, got %s", c.Timeout))
	}
	if c.TimeoutRetries < 0 || c.TimeoutRetries > maxTimeoutRetries {
		errs = append(errs, fmt.Errorf("transform.timeout_retries: want 0 (no retries) to %d, got %d", maxTimeoutRetries, c.TimeoutRetries))
	}
	if c.MaxTimeout != 0 && c.MaxTimeout < c.Timeout {
		errs = append(errs, fmt.Errorf("transform.max_timeout: want 0 (10 × transform.timeout) or at least transform.timeout (%s), got %s", c.Timeout, c.MaxTimeout))
	}
	if c.MaxDocBytes < 1 {
		errs = append(errs, fmt.Errorf("transform.max_doc_bytes: want at least 1, got %d", c.MaxDocBytes))
	}
	if c.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("transform.reload_interval: want 0 (off) or a positive duration, got %s", c.ReloadInterval))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("transform.workers: want 0 (GOMAXPROCS) or more, got %d", c.Workers))
	}
	if c.LogRate <= 0 || c.LogBurst < 1 {
		errs = append(errs, fmt.Errorf("transform.log_rate, log_burst: want a positive rate and a burst of at least 1, got %g and %d", c.LogRate, c.LogBurst))
	}
	return errors.Join(errs...)
}

// maxTimeoutRetries bounds TimeoutRetries: past it, the doubling limits
// reach any sensible MaxTimeout anyway, and a change that never finishes
// would hold its worker for too long.
const maxTimeoutRetries = 10

// budgets are the time limits of a call's attempts: Timeout, then twice the
// previous one for each retry, up to MaxTimeout (10 × Timeout when 0).
func (c ScriptConfig) budgets() []time.Duration {
	most := c.MaxTimeout
	if most == 0 {
		most = 10 * c.Timeout
	}
	out := []time.Duration{c.Timeout}
	for range c.TimeoutRetries {
		out = append(out, min(2*out[len(out)-1], most))
	}
	return out
}

// Scripts is the Mapper that runs per-table transform.js scripts; a table
// without a script is mapped by Identity. It is safe for concurrent use.
//
// Lifecycle: LoadScripts loads every script (failing on the first that does
// not load) and, when ReloadInterval is set, starts one goroutine that picks
// up edits; Close stops it and waits. Map keeps working after Close with the
// scripts last loaded.
type Scripts struct {
	cfg ScriptConfig
	log *slog.Logger
	now func() time.Time

	current atomic.Pointer[map[string]*script] // by "schema.table"

	reloadMu sync.Mutex             // serializes Reload
	rejected map[string][32]byte    // scripts whose failure was logged, by table
	limMu    sync.Mutex             // guards lims
	lims     map[string]*logLimiter // one per table, kept across reloads

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// LoadScripts loads the scripts under cfg.Dir and starts watching it.
func LoadScripts(cfg ScriptConfig) (*Scripts, error) {
	return loadScripts(cfg, "")
}

// LoadTableScript loads only the script of schema.table, if there is one,
// without hot reload: for trying a script out (walsearch transform test)
// while other tables' scripts are being edited.
func LoadTableScript(cfg ScriptConfig, schema, table string) (*Scripts, error) {
	cfg.ReloadInterval = 0
	return loadScripts(cfg, schema+"."+table)
}

func loadScripts(cfg ScriptConfig, only string) (*Scripts, error) {
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scripts{
		cfg: cfg, log: log.With("component", "transform"), now: time.Now,
		rejected: map[string][32]byte{}, lims: map[string]*logLimiter{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	files, err := discover(cfg.Dir)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*script, len(files))
	for _, f := range files {
		if only != "" && f.schema+"."+f.table != only {
			continue
		}
		src, sum, err := readScript(f.path)
		if err != nil {
			return nil, err
		}
		sc, err := s.compile(f, src, sum)
		if err != nil {
			return nil, err
		}
		m[sc.name()] = sc
		s.log.Info("script loaded", "table", sc.name(), "script", f.path)
	}
	s.current.Store(&m)
	if cfg.ReloadInterval > 0 {
		go s.watch()
	} else {
		close(s.done)
	}
	return s, nil
}

// Tables lists the tables that have a script, as "schema.table", sorted.
func (s *Scripts) Tables() []string {
	m := *s.current.Load()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Indices lists every index the script of schema.table may write to: the
// table's own index first, then those the script declares in
// `var indices = [...]`. It is nil for a table without a script.
func (s *Scripts) Indices(schema, table string) []string {
	sc := (*s.current.Load())[schema+"."+table]
	if sc == nil {
		return nil
	}
	return slices.Clone(sc.indices)
}

// Close stops watching for edits and waits. It is idempotent.
func (s *Scripts) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}

func (s *Scripts) limiter(table string) *logLimiter {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	l, ok := s.lims[table]
	if !ok {
		l = newLogLimiter(s.cfg.LogRate, s.cfg.LogBurst, s.now)
		s.lims[table] = l
	}
	return l
}

// Map implements Mapper.
//
// For a table with a script: insert, update and read rows go through
// transform(doc, ctx). A returned object is indexed in ctx.index and deleted
// from every other index the script declares, so a row whose routing column
// changed leaves its old index; null or undefined deletes the row's document
// from every one of them. A delete deletes from all of them unless
// onDelete(key, ctx) returns false. A truncate truncates all of them.
func (s *Scripts) Map(c *bus.Change) ([]*bus.Doc, error) {
	sc := (*s.current.Load())[c.Schema+"."+c.Table]
	if sc == nil {
		return Identity{}.Map(c)
	}
	switch c.Op {
	case bus.OpInsert, bus.OpUpdate, bus.OpRead:
		if err := c.DecodeRow(); err != nil { // a script sees the row as values
			return nil, err
		}
		out, err := sc.transform(c, s.cfg.MaxDocBytes)
		if err != nil {
			return nil, err
		}
		docs := make([]*bus.Doc, 0, len(sc.indices))
		if out.source != nil {
			d := BaseDoc(c)
			d.Op, d.Index, d.Source, d.Unchanged = bus.DocIndex, out.index, out.source, out.unchanged
			d.From = movedFrom(c, d.Unchanged)
			docs = append(docs, d)
		}
		return append(docs, deletesExcept(c, sc.indices, out)...), nil
	case bus.OpDelete:
		ok, err := sc.deleteAllowed(c)
		if err != nil || !ok {
			return nil, err
		}
		return deletesExcept(c, sc.indices, outcome{}), nil
	case bus.OpTruncate:
		docs := make([]*bus.Doc, 0, len(sc.indices))
		for _, idx := range sc.indices {
			d := BaseDoc(c)
			d.Op, d.Index, d.ID = bus.DocTruncate, idx, ""
			docs = append(docs, d)
		}
		return docs, nil
	}
	return Identity{}.Map(c)
}

// deletesExcept deletes the row's document from every index but the one it
// was just indexed in.
func deletesExcept(c *bus.Change, indices []string, out outcome) []*bus.Doc {
	var docs []*bus.Doc
	for _, idx := range indices {
		if out.source != nil && idx == out.index {
			continue
		}
		d := BaseDoc(c)
		d.Op, d.Index = bus.DocDelete, idx
		docs = append(docs, d)
	}
	return docs
}
