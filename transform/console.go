package transform

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// logLimiter is a token bucket shared by every runtime of one table's script:
// a script that logs on every row cannot flood the process log. Messages over
// the limit are counted and reported in one line when logging resumes.
type logLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed uint64
}

func newLogLimiter(rate float64, burst int, now func() time.Time) *logLimiter {
	if now == nil {
		now = time.Now
	}
	return &logLimiter{rate: rate, burst: float64(burst), now: now, tokens: float64(burst), last: now()}
}

// allow takes a token. It returns whether the message may be logged and how
// many messages were suppressed since the last one that was.
func (l *logLimiter) allow() (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	l.tokens = min(l.burst, l.tokens+t.Sub(l.last).Seconds()*l.rate)
	l.last = t
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// installConsole defines console.log, info, warn, error and debug on vm,
// writing to log at the matching level. Arguments are joined with spaces;
// objects are written as JSON.
func installConsole(vm *goja.Runtime, log *slog.Logger, lim *logLimiter, stringify goja.Callable) error {
	con := vm.NewObject()
	for name, level := range map[string]slog.Level{
		"log": slog.LevelInfo, "info": slog.LevelInfo, "warn": slog.LevelWarn,
		"error": slog.LevelError, "debug": slog.LevelDebug,
	} {
		fn := func(call goja.FunctionCall) goja.Value {
			ctx := context.Background()
			if !log.Enabled(ctx, level) {
				return goja.Undefined()
			}
			ok, suppressed := lim.allow()
			if !ok {
				return goja.Undefined()
			}
			if suppressed > 0 {
				log.Warn("script log messages suppressed by the rate limit", "suppressed", suppressed)
			}
			log.Log(ctx, level, consoleText(call.Arguments, stringify), "console", name)
			return goja.Undefined()
		}
		if err := con.Set(name, fn); err != nil {
			return err
		}
	}
	return vm.Set("console", con)
}

func consoleText(args []goja.Value, stringify goja.Callable) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(consoleArg(a, stringify))
	}
	return b.String()
}

func consoleArg(a goja.Value, stringify goja.Callable) string {
	if o, ok := a.(*goja.Object); ok {
		if _, isFn := goja.AssertFunction(o); !isFn && o.ClassName() != "Error" {
			if s, err := stringify(goja.Undefined(), o); err == nil && !goja.IsUndefined(s) {
				return s.String()
			}
		}
	}
	return a.String()
}
