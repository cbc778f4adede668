package capture

import (
	"context"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressLogInterval is how often snapshot progress is logged.
const progressLogInterval = 10 * time.Second

// IsTerminal reports whether f is a terminal, where a progress bar belongs
// (see Config.Progress).
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// TerminalStderr returns os.Stderr when it is a terminal, else nil: the
// writer for Config.Progress.
func TerminalStderr() io.Writer {
	if IsTerminal(os.Stderr) {
		return os.Stderr
	}
	return nil
}

// reportProgress logs the snapshot's progress (rows done of the estimate,
// rows/s, time left) every progressLogInterval and draws a progress bar on
// Config.Progress, until the returned stop is called.
func (c *Capture) reportProgress(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var bar *progressbar.ProgressBar
		if c.cfg.Progress != nil {
			bar = newBar(c.cfg.Progress, c.Status().Snapshot.RowsTotal)
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		nextLog := time.Now().Add(progressLogInterval)
		for {
			select {
			case <-ctx.Done():
				if bar != nil {
					p := c.Status().Snapshot
					bar.ChangeMax64(int64(max(p.RowsTotal, p.RowsDone)))
					_ = bar.Set64(int64(p.RowsDone))
					_ = bar.Finish()
				}
				return
			case now := <-tick.C:
				p := c.Status().Snapshot
				if bar != nil {
					if p.RowsDone > p.RowsTotal {
						bar.ChangeMax64(int64(p.RowsDone))
					}
					_ = bar.Set64(int64(p.RowsDone))
				}
				if !now.Before(nextLog) {
					nextLog = now.Add(progressLogInterval)
					c.log.Info("snapshot progress", "rows", p.RowsDone, "estimated_total", p.RowsTotal,
						"rows_per_second", int64(p.RowsPerSecond), "eta", (time.Duration(p.ETASeconds) * time.Second).String())
				}
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		c.track.endSnapshot()
	}
}

func newBar(w io.Writer, total uint64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(int64(max(total, 1)),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("snapshot"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionThrottle(250*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
	)
}
