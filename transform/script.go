package transform

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"

	"github.com/walsearch/walsearch/bus"
)

// maxCallStack bounds JavaScript recursion so that runaway recursion fails
// with a stack overflow instead of growing memory until the time limit.
const maxCallStack = 2000

// script is one loaded version of a table's transform.js: the compiled
// program, which is safe to share, and a pool of runtimes that ran it, each
// used by one goroutine at a time.
type script struct {
	schema, table string
	path          string
	sum           [32]byte
	prog          *goja.Program
	// indices are every index this script may write to: the table's default
	// index first, then the ones declared in `var indices = [...]`.
	indices  []string
	onDelete bool
	timeout  time.Duration
	// budgets are the time limits of a call's attempts: the first is
	// timeout, each retry after a timeout gets a larger one.
	budgets []time.Duration
	log     *slog.Logger
	lim     *logLimiter
	pool    chan *jsRuntime
}

// jsRuntime is a goja runtime with the script's functions looked up.
type jsRuntime struct {
	vm        *goja.Runtime
	transform goja.Callable
	onDelete  goja.Callable // nil when the script defines none
	stringify goja.Callable
}

// newRuntime runs the script's top-level code in a fresh runtime, under the
// time limit, and looks up its functions.
func (s *script) newRuntime() (*jsRuntime, error) {
	vm := goja.New()
	vm.SetMaxCallStackSize(maxCallStack)
	rt := &jsRuntime{vm: vm}
	// Captured before the script runs, so a script that reassigns JSON does
	// not change how documents leave it.
	js := vm.Get("JSON").ToObject(vm)
	rt.stringify, _ = goja.AssertFunction(js.Get("stringify"))
	if err := installConsole(vm, s.log, s.lim, rt.stringify); err != nil {
		return nil, fmt.Errorf("install console: %w", err)
	}
	lim := startLimit(vm, loadTimeout(s.timeout))
	_, err := vm.RunProgram(s.prog)
	if lim.stop() {
		vm.ClearInterrupt()
	}
	if err != nil {
		return nil, loadErrorFrom(s.path, err)
	}
	var ok bool
	if rt.transform, ok = goja.AssertFunction(vm.Get("transform")); !ok {
		return nil, &LoadError{Path: s.path, Err: errors.New("the script must define function transform(doc, ctx)")}
	}
	if v := vm.Get("onDelete"); v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) {
		if rt.onDelete, ok = goja.AssertFunction(v); !ok {
			return nil, &LoadError{Path: s.path, Err: errors.New("onDelete is defined but is not a function")}
		}
	}
	return rt, nil
}

// declaredIndices reads `var indices = ["a", "b"]` from a runtime that ran
// the script.
func declaredIndices(rt *jsRuntime, path string) ([]string, error) {
	v := rt.vm.Get("indices")
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, nil
	}
	var names []string
	if err := rt.vm.ExportTo(v, &names); err != nil {
		return nil, &LoadError{Path: path, Err: fmt.Errorf("indices must be an array of index names: %w", err)}
	}
	for _, n := range names {
		if n == "" {
			return nil, &LoadError{Path: path, Err: errors.New("indices must not contain an empty name")}
		}
	}
	return names, nil
}

// get takes an idle runtime from the pool or makes one.
func (s *script) get() (*jsRuntime, error) {
	select {
	case rt := <-s.pool:
		return rt, nil
	default:
		return s.newRuntime()
	}
}

// put returns a healthy runtime to the pool, dropping it when the pool is full.
func (s *script) put(rt *jsRuntime) {
	select {
	case s.pool <- rt:
	default:
	}
}

// loadTimeout bounds a script's top-level code, which runs once per runtime.
// It is looser than the per-call limit, because a fresh runtime is also made
// in the middle of a batch (after a timeout, or when all are busy), where a
// pause of the garbage collector must not fail the load.
func loadTimeout(call time.Duration) time.Duration {
	return max(10*call, time.Second)
}

// limit interrupts a runtime once its time is up.
type limit struct {
	t    *time.Timer
	done chan struct{}
}

func startLimit(vm *goja.Runtime, d time.Duration) *limit {
	l := &limit{done: make(chan struct{})}
	l.t = time.AfterFunc(d, func() {
		vm.Interrupt(ErrTimeout)
		close(l.done)
	})
	return l
}

// stop cancels the limit and reports whether it fired. When it returns, no
// Interrupt call is in flight, so ClearInterrupt is safe.
func (l *limit) stop() bool {
	if l.t.Stop() {
		return false
	}
	<-l.done
	return true
}

// outcome is what a script decided for one row.
type outcome struct {
	source    []byte // nil: the row must not be in the index
	index     string
	unchanged []string
}

// args builds the doc (when withRow), key and ctx arguments of a call in vm.
func args(vm *goja.Runtime, c *bus.Change, withRow bool) (doc, key, ctx *goja.Object) {
	key = vm.NewObject()
	for _, col := range c.Key {
		_ = key.Set(col.Name, toJS(vm, col.Value))
	}
	ctxKey := vm.NewObject()
	for _, col := range c.Key {
		_ = ctxKey.Set(col.Name, toJS(vm, col.Value))
	}
	ctx = vm.NewObject()
	_ = ctx.Set("op", string(c.Op))
	_ = ctx.Set("schema", c.Schema)
	_ = ctx.Set("table", c.Table)
	_ = ctx.Set("key", ctxKey)
	_ = ctx.Set("lsn", c.LSN.String())
	if c.CommitTime.IsZero() {
		_ = ctx.Set("commitTime", goja.Null())
	} else {
		_ = ctx.Set("commitTime", c.CommitTime.UTC().Format(time.RFC3339Nano))
	}
	_ = ctx.Set("index", bus.IndexName(c.Schema, c.Table))
	unchanged := make([]any, len(c.Unchanged))
	for i, u := range c.Unchanged {
		unchanged[i] = u
	}
	_ = ctx.Set("unchanged", vm.NewArray(unchanged...))
	if withRow {
		doc = vm.NewObject()
		for _, k := range slices.Sorted(maps.Keys(c.Row)) {
			_ = doc.Set(k, toJS(vm, c.Row[k]))
		}
	}
	return doc, key, ctx
}

// call runs fn under the time limit, and again with a larger limit each
// time it runs out of time (see ScriptConfig.TimeoutRetries): the limit is
// wall-clock time, so a call that is fast enough can still overrun it while
// the machine is busy. Only a call that runs out of time on every attempt
// fails with ErrTimeout, saying how long it ran in all. An exception, or
// any other error, is deterministic and fails at once. A fresh runtime
// whose top-level code ran out of its (longer) load limit counts as an
// attempt that ran out of time too.
//
// The attempts run one after the other on the caller's goroutine, so the
// changes of one document are still mapped one at a time, in order. fn
// must set everything it produces on each attempt: an interrupted attempt
// may have set some of it.
func (s *script) call(fn func(rt *jsRuntime) error) error {
	var total time.Duration
	for i, budget := range s.budgets {
		start := time.Now()
		err := s.attempt(fn, budget)
		var se *ScriptError
		if !errors.Is(err, ErrTimeout) || !errors.As(err, &se) {
			return err
		}
		total += time.Since(start)
		if i < len(s.budgets)-1 {
			s.log.Debug("script call ran out of time; trying again with a larger limit",
				"limit", budget, "next_limit", s.budgets[i+1])
			continue
		}
		return &ScriptError{Table: s.name(), Stack: se.Stack, Err: fmt.Errorf("%w: interrupted %s, after running %s in total (limits %s)",
			ErrTimeout, times(len(s.budgets)), total.Round(time.Millisecond), durations(s.budgets))}
	}
	panic("unreachable: a script has at least one time limit")
}

// attempt runs fn on one runtime under the time limit budget. It returns the
// runtime to the pool unless the call was interrupted or overflowed its
// stack: such a runtime may hold a pending interrupt or half-updated state,
// so it is dropped and the next call gets a fresh one. A call that ran out
// of time returns a ScriptError wrapping ErrTimeout, with the stack where
// it was stopped.
func (s *script) attempt(fn func(rt *jsRuntime) error, budget time.Duration) error {
	rt, err := s.get()
	if err != nil {
		return &ScriptError{Table: s.name(), Err: err}
	}
	lim := startLimit(rt.vm, budget)
	err = fn(rt)
	fired := lim.stop()
	var interrupted *goja.InterruptedError
	var overflow *goja.StackOverflowError
	switch {
	case errors.As(err, &interrupted):
		return &ScriptError{Table: s.name(), Err: fmt.Errorf("%w (%s)", ErrTimeout, budget), Stack: interrupted.String()}
	case errors.As(err, &overflow):
		return &ScriptError{Table: s.name(), Err: errors.New("maximum call stack size exceeded"), Stack: overflow.String()}
	}
	if fired {
		// The limit passed just as the call returned: the interrupt is
		// pending but nothing ran under it, and nothing can set it again.
		rt.vm.ClearInterrupt()
	}
	s.put(rt)
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return &ScriptError{Table: s.name(), Err: ex, Stack: ex.String()}
	}
	if err != nil {
		return &ScriptError{Table: s.name(), Err: err}
	}
	return nil
}

// times says "once", "twice" or "N times".
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// durations lists ds as "100ms, 200ms, 400ms".
func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ", ")
}

func (s *script) name() string { return s.schema + "." + s.table }

// transform runs transform(doc, ctx) for an insert, update or read.
func (s *script) transform(c *bus.Change, maxBytes int) (outcome, error) {
	var out outcome
	err := s.call(func(rt *jsRuntime) error {
		out = outcome{}
		doc, _, ctx := args(rt.vm, c, true)
		res, err := rt.transform(goja.Undefined(), doc, ctx)
		if err != nil {
			return err
		}
		if out.index, out.unchanged, err = readCtx(rt.vm, ctx); err != nil {
			return err
		}
		if res == nil || goja.IsUndefined(res) || goja.IsNull(res) {
			return nil
		}
		ro, ok := res.(*goja.Object)
		if !ok || ro.ClassName() != "Object" {
			return fmt.Errorf("%w: transform must return an object, null or undefined, got %s", ErrBadResult, describe(res))
		}
		js, err := rt.stringify(goja.Undefined(), ro)
		if err != nil {
			return err
		}
		out.source = []byte(js.String())
		return nil
	})
	if err != nil {
		return outcome{}, err
	}
	if out.source != nil && len(out.source) > maxBytes {
		return outcome{}, fmt.Errorf("%w: script for %s returned %d bytes, over the %d-byte limit (transform.max_doc_bytes)",
			ErrDocTooLarge, s.name(), len(out.source), maxBytes)
	}
	if out.source != nil && !slices.Contains(s.indices, out.index) {
		return outcome{}, &ScriptError{Table: s.name(), Err: fmt.Errorf(
			"%w: ctx.index %q is not declared; list every index the script routes to in `var indices = [...]` "+
				"so that rows which move or disappear are deleted from the others", ErrBadResult, out.index)}
	}
	return out, nil
}

// readCtx reads back the fields a script may change: index and unchanged.
func readCtx(vm *goja.Runtime, ctx *goja.Object) (string, []string, error) {
	iv := ctx.Get("index")
	idx, ok := iv.Export().(string)
	if !ok || idx == "" {
		return "", nil, fmt.Errorf("%w: ctx.index must be a non-empty string, got %s", ErrBadResult, describe(iv))
	}
	var unchanged []string
	if uv := ctx.Get("unchanged"); uv != nil && !goja.IsUndefined(uv) && !goja.IsNull(uv) {
		if err := vm.ExportTo(uv, &unchanged); err != nil {
			return "", nil, fmt.Errorf("%w: ctx.unchanged must be an array of column names: %w", ErrBadResult, err)
		}
	}
	return idx, unchanged, nil
}

// deleteAllowed runs onDelete(key, ctx) when the script defines it; only an
// explicit false keeps the document.
func (s *script) deleteAllowed(c *bus.Change) (bool, error) {
	if !s.onDelete {
		return true, nil
	}
	keep := false
	err := s.call(func(rt *jsRuntime) error {
		_, key, ctx := args(rt.vm, c, false)
		res, err := rt.onDelete(goja.Undefined(), key, ctx)
		if err != nil {
			return err
		}
		keep = res != nil && res.StrictEquals(rt.vm.ToValue(false))
		return nil
	})
	return !keep, err
}

func describe(v goja.Value) string {
	switch {
	case v == nil || goja.IsUndefined(v):
		return "undefined"
	case goja.IsNull(v):
		return "null"
	}
	if o, ok := v.(*goja.Object); ok {
		return "a value of class " + o.ClassName()
	}
	return fmt.Sprintf("%s %s", v.ExportType(), v.String())
}

// loadErrorFrom turns a parse or top-level error into a LoadError with the
// script's position.
func loadErrorFrom(path string, err error) error {
	le := &LoadError{Path: path, Err: err}
	var list parser.ErrorList
	var one *parser.Error
	var st interface{ Stack() []goja.StackFrame }
	switch {
	case errors.As(err, &list) && len(list) > 0:
		first := list[0]
		le.Line, le.Column = first.Position.Line, first.Position.Column
		msg := "SyntaxError: " + first.Message
		if len(list) > 1 {
			msg += fmt.Sprintf(" (and %d more errors)", len(list)-1)
		}
		le.Err = errors.New(msg)
	case errors.As(err, &one):
		le.Line, le.Column = one.Position.Line, one.Position.Column
		le.Err = errors.New("SyntaxError: " + one.Message)
	case errors.As(err, &st):
		for _, f := range st.Stack() {
			if p := f.Position(); p.Line > 0 {
				le.Line, le.Column = p.Line, p.Column
				break
			}
		}
	}
	return le
}
