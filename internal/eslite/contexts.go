package eslite

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// Limits on open search contexts (scrolls and points in time). Each holds
// the searched view of its indices open, so their number is what bounds
// the memory and disk that old views keep.
const (
	// DefaultMaxOpenScrollContexts is Elasticsearch's
	// search.max_open_scroll_context.
	DefaultMaxOpenScrollContexts = 500
	// DefaultMaxOpenPITContexts bounds open points in time; Elasticsearch
	// has no such limit.
	DefaultMaxOpenPITContexts = 500
	// maxKeepAlive is Elasticsearch's search.max_keep_alive.
	maxKeepAlive = 24 * time.Hour
	// defaultReapInterval is Elasticsearch's search.keep_alive_interval:
	// how often expired contexts are freed. A context is also treated as
	// gone as soon as its keep-alive has passed.
	defaultReapInterval = time.Minute
)

type contextKind int

const (
	kindScroll contextKind = iota
	kindPIT
)

// readerContext is one open scroll or point in time: a pinned view of each
// index it searches.
type readerContext struct {
	id      string
	num     int64 // shown in search_context_missing_exception
	kind    contextKind
	ixs     []*index
	pins    []*search.Pinned
	targets []search.Target

	mu     sync.Mutex // serialises the pages of a scroll
	req    *search.Request
	cursor *search.Cursor

	// guarded by contexts.mu
	keepAlive time.Duration
	expires   time.Time
}

func (rc *readerContext) release() {
	for _, p := range rc.pins {
		p.Release()
	}
}

// contexts is the engine's registry of open reader contexts.
type contexts struct {
	mu      sync.Mutex
	byID    map[string]*readerContext
	scrolls int
	pits    int
	next    int64
}

// Scroll and point-in-time ids: a prefix naming the kind, the context number
// and random bytes, base64url-encoded like Elasticsearch's.
var (
	scrollIDPrefix = []byte("eslite-scroll\x00")
	pitIDPrefix    = []byte("eslite-pit\x00")
)

func contextID(kind contextKind, num int64) string {
	prefix := scrollIDPrefix
	if kind == kindPIT {
		prefix = pitIDPrefix
	}
	b := append([]byte(nil), prefix...)
	b = binary.BigEndian.AppendUint64(b, uint64(num))
	var r [12]byte
	_, _ = rand.Read(r[:])
	b = append(b, r[:]...)
	return base64.URLEncoding.EncodeToString(b)
}

// parseContextID decodes an id of the given kind, returning its number.
func parseContextID(kind contextKind, id string) (int64, bool) {
	raw, err := base64.URLEncoding.DecodeString(id)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(id); err != nil {
			return 0, false
		}
	}
	prefix := scrollIDPrefix
	if kind == kindPIT {
		prefix = pitIDPrefix
	}
	if len(raw) != len(prefix)+8+12 || string(raw[:len(prefix)]) != string(prefix) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(raw[len(prefix):])), true
}

// openContextFor resolves expr and pins its indices in a new context of
// kind, kept alive for the time value in the request parameter param.
func (e *Engine) openContextFor(c *call, kind contextKind, expr, param string) (*readerContext, []*index, *search.Error) {
	keepAlive, err := parseKeepAlive(param, c.param(param))
	if err != nil {
		return nil, nil, err
	}
	_, ixs, err := e.targets(c, expr)
	if err != nil {
		return nil, nil, err
	}
	rc, err := e.openContext(kind, ixs, keepAlive)
	return rc, ixs, err
}

// openContext pins the current view of ixs and registers it. It fails with
// Elasticsearch's rejection once the kind's limit is reached.
func (e *Engine) openContext(kind contextKind, ixs []*index, keepAlive time.Duration) (*readerContext, *search.Error) {
	now := e.now()
	e.ctxs.mu.Lock()
	expired := e.expireLocked(now)
	defer releaseAll(expired)
	switch kind {
	case kindScroll:
		if e.ctxs.scrolls >= e.maxScrolls {
			e.ctxs.mu.Unlock()
			return nil, errTooManyScrolls(e.maxScrolls, ixs)
		}
		e.ctxs.scrolls++
	case kindPIT:
		if e.ctxs.pits >= e.maxPITs {
			e.ctxs.mu.Unlock()
			return nil, esError(http.StatusTooManyRequests, "es_rejected_execution_exception",
				"Trying to create too many point in time contexts. Must be less than or equal to: ["+strconv.Itoa(e.maxPITs)+"]. "+
					"Close the points in time you no longer need (DELETE /_pit).")
		}
		e.ctxs.pits++
	}
	e.ctxs.next++
	num := e.ctxs.next
	e.ctxs.mu.Unlock()

	rc := &readerContext{id: contextID(kind, num), num: num, kind: kind, ixs: ixs, keepAlive: keepAlive}
	for _, ix := range ixs {
		p, err := ix.search.Pin()
		if err != nil {
			rc.release()
			e.forgetCount(kind)
			return nil, errIndexNotFound(ix.name)
		}
		rc.pins = append(rc.pins, p)
		e.mu.RLock()
		t := ix.target(ix.settings.maxResultWindow())
		e.mu.RUnlock()
		t.Pin = p
		rc.targets = append(rc.targets, t)
	}
	e.ctxs.mu.Lock()
	if e.ctxs.byID == nil {
		e.ctxs.byID = map[string]*readerContext{}
	}
	rc.expires = e.now().Add(keepAlive)
	e.ctxs.byID[rc.id] = rc
	e.ctxs.mu.Unlock()
	// An index deleted while this context was being opened has already
	// freed the contexts on it; do not leave this one behind.
	for _, ix := range ixs {
		ix.mu.RLock()
		deleted := ix.deleted
		ix.mu.RUnlock()
		if deleted {
			e.freeContext(rc.id)
			return nil, errIndexNotFound(ix.name)
		}
	}
	return rc, nil
}

func (e *Engine) forgetCount(kind contextKind) {
	e.ctxs.mu.Lock()
	if kind == kindScroll {
		e.ctxs.scrolls--
	} else {
		e.ctxs.pits--
	}
	e.ctxs.mu.Unlock()
}

// useContext finds a live context and extends its life by keepAlive (0
// keeps the one it has).
func (e *Engine) useContext(id string, keepAlive time.Duration) *readerContext {
	now := e.now()
	e.ctxs.mu.Lock()
	expired := e.expireLocked(now)
	rc := e.ctxs.byID[id]
	if rc != nil {
		if keepAlive > 0 {
			rc.keepAlive = keepAlive
		}
		rc.expires = now.Add(rc.keepAlive)
	}
	e.ctxs.mu.Unlock()
	releaseAll(expired)
	return rc
}

// freeContext removes a context; it reports whether it was open.
func (e *Engine) freeContext(id string) bool {
	e.ctxs.mu.Lock()
	rc := e.ctxs.byID[id]
	if rc != nil {
		e.dropLocked(rc)
	}
	e.ctxs.mu.Unlock()
	if rc != nil {
		rc.release()
	}
	return rc != nil
}

// freeContexts removes every context of a kind (all scrolls for
// DELETE /_search/scroll/_all) and returns how many it freed.
func (e *Engine) freeContexts(match func(*readerContext) bool) int {
	e.ctxs.mu.Lock()
	var freed []*readerContext
	for _, rc := range e.ctxs.byID {
		if match(rc) {
			e.dropLocked(rc)
			freed = append(freed, rc)
		}
	}
	e.ctxs.mu.Unlock()
	for _, rc := range freed {
		rc.release()
	}
	return len(freed)
}

// freeContextsOf frees the contexts that search ix, which is being deleted.
func (e *Engine) freeContextsOf(ix *index) {
	e.freeContexts(func(rc *readerContext) bool {
		for _, x := range rc.ixs {
			if x == ix {
				return true
			}
		}
		return false
	})
}

// expireLocked unregisters the contexts whose keep-alive has passed and
// returns them; the caller releases them after unlocking e.ctxs.mu.
func (e *Engine) expireLocked(now time.Time) []*readerContext {
	var expired []*readerContext
	for _, rc := range e.ctxs.byID {
		if now.After(rc.expires) {
			e.dropLocked(rc)
			expired = append(expired, rc)
		}
	}
	return expired
}

func releaseAll(rcs []*readerContext) {
	for _, rc := range rcs {
		rc.release()
	}
}

func (e *Engine) dropLocked(rc *readerContext) {
	delete(e.ctxs.byID, rc.id)
	if rc.kind == kindScroll {
		e.ctxs.scrolls--
	} else {
		e.ctxs.pits--
	}
}

// reapContexts frees expired contexts every reapInterval until the engine
// stops.
func (e *Engine) reapContexts() {
	defer e.wg.Done()
	t := time.NewTicker(e.reapInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.reapExpired()
		}
	}
}

// reapExpired frees every context whose keep-alive has passed.
func (e *Engine) reapExpired() {
	e.ctxs.mu.Lock()
	expired := e.expireLocked(e.now())
	e.ctxs.mu.Unlock()
	releaseAll(expired)
}

// openContexts returns the number of open scrolls and points in time.
func (e *Engine) openContexts() (scrolls, pits int) {
	e.ctxs.mu.Lock()
	defer e.ctxs.mu.Unlock()
	return e.ctxs.scrolls, e.ctxs.pits
}

// parseKeepAlive parses an Elasticsearch time value ("30s", "1m", "2h")
// for the named parameter and checks it against search.max_keep_alive.
func parseKeepAlive(name, v string) (time.Duration, *search.Error) {
	d, err := parseTimeValue(name, v)
	if err != nil {
		// A REST parameter's time value fails with ElasticsearchParseException.
		return 0, errParse(err.Reason)
	}
	if d > maxKeepAlive {
		return 0, shardsFailed(errIllegalArgument("Keep alive for request (%s) is too large. It must be less than (1d). "+
			"This limit can be set by changing the [search.max_keep_alive] cluster level setting.", v), 0, "")
	}
	return d, nil
}

// errTooManyScrolls is the shard failure Elasticsearch reports when
// search.max_open_scroll_context is reached.
func errTooManyScrolls(limit int, ixs []*index) *search.Error {
	cause := esError(http.StatusTooManyRequests, "too_many_scroll_contexts_exception",
		"Trying to create too many scroll contexts. Must be less than or equal to: ["+strconv.Itoa(limit)+"]. "+
			"This limit can be set by changing the [search.max_open_scroll_context] setting.")
	name := ""
	if len(ixs) > 0 {
		name = ixs[0].name
	}
	return shardsFailed(cause, 0, name)
}

// errContextMissing is the failure of a scroll or point-in-time search whose
// context has expired or been freed.
func errContextMissing(num int64) *search.Error {
	cause := esError(http.StatusNotFound, "search_context_missing_exception", "No search context found for id ["+strconv.FormatInt(num, 10)+"]")
	return shardsFailed(cause, -1, "")
}

// shardsFailed wraps a shard failure as search_phase_execution_exception
// "all shards failed".
func shardsFailed(cause *search.Error, shard int, index string) *search.Error {
	var idx any
	if index != "" {
		idx = index
	}
	return &search.Error{
		Status:     cause.Status,
		Type:       "search_phase_execution_exception",
		Reason:     "all shards failed",
		RootCauses: []*search.Error{cause},
		CausedBy:   cause,
		Extra: map[string]any{
			"phase":   "query",
			"grouped": true,
			"failed_shards": []any{map[string]any{
				"shard": shard, "index": idx, "node": "eslite", "reason": causeJSON(cause),
			}},
		},
	}
}
