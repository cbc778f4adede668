package transform_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/transform"
)

// spinScript busies the CPU for doc.spin milliseconds of wall-clock time,
// as a script does whose work takes that long, and logs each call.
const spinScript = `
function transform(doc) {
  console.log("call", doc.id);
  if (doc.spin) {
    var end = Date.now() + doc.spin;
    while (Date.now() < end) {}
  }
  if (doc.throw) { throw new Error("refused row " + doc.id); }
  return {id: doc.id, v: doc.v};
}`

// TestScriptTimeoutIsRetriedWithMoreTime: a call that needs three times the
// time limit overruns the first limits and is tried again with twice the
// limit each time until it finishes, instead of dead-lettering its change;
// an exception is not tried again.
func TestScriptTimeoutIsRetriedWithMoreTime(t *testing.T) {
	t.Parallel()
	const limit = 50 * time.Millisecond
	dir := t.TempDir()
	writeScript(t, dir, "users", spinScript)
	log, rec := newLogRecorder()
	s := loadScripts(t, dir, func(c *transform.ScriptConfig) { c.Timeout, c.Logger = limit, log })
	docs, err := s.Map(change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1, "v": 1, "spin": 3 * limit.Milliseconds()}))
	if err != nil {
		t.Fatalf("a call needing 3 × the limit: %v, want it retried until it finishes", err)
	}
	if got := summaries(docs); !slices.Equal(got, []string{`index users/1 {"id":1,"v":1}`}) {
		t.Fatalf("docs = %v", got)
	}
	// The limit is wall-clock time, so a busy machine can make more
	// attempts run out; never fewer than two, as the first cannot finish.
	if calls := rec.find("call 1"); len(calls) < 2 {
		t.Errorf("calls %v, want the first interrupted and at least one more", calls)
	}

	_, err = s.Map(change(bus.OpInsert, "users", 2, 10, map[string]any{"id": 2, "throw": true}))
	if err == nil || !strings.Contains(err.Error(), "refused row 2") || errors.Is(err, transform.ErrTimeout) {
		t.Fatalf("a throwing call: %v", err)
	}
	if calls := rec.find("call 2"); len(calls) != 1 {
		t.Errorf("a throwing call ran %d times (%v), want once: an exception is not retried", len(calls), calls)
	}
}

// TestScriptThatNeverFinishesFailsAfterEveryRetry: a call that loops
// forever is interrupted at every limit, 20, 40, 80, 160 and 200 ms (the
// cap, 10 × the limit), and fails saying how long it ran in all.
func TestScriptThatNeverFinishesFailsAfterEveryRetry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeScript(t, dir, "users", `function transform(doc) {
  while (true) {}
}`)
	s := loadScripts(t, dir, func(c *transform.ScriptConfig) { c.Timeout = 20 * time.Millisecond })
	start := time.Now()
	_, err := s.Map(change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1}))
	took := time.Since(start)
	var se *transform.ScriptError
	if !errors.As(err, &se) || !errors.Is(err, transform.ErrTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	m := regexp.MustCompile(`interrupted 5 times, after running (\S+) in total \(limits 20ms, 40ms, 80ms, 160ms, 200ms\)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error %q does not say the attempts, their limits and the time in all", err)
	}
	total, perr := time.ParseDuration(m[1])
	if perr != nil || total < 500*time.Millisecond || total > took.Round(time.Millisecond) {
		t.Errorf("reported %s in total (%v); the limits add up to 500ms and the call took %s", m[1], perr, took)
	}
	if !strings.Contains(se.Stack, "at transform (") {
		t.Errorf("stack does not point at the loop:\n%s", se.Stack)
	}

	// Without retries, the first limit is the last.
	once := loadScripts(t, dir, func(c *transform.ScriptConfig) { c.Timeout, c.TimeoutRetries = 20*time.Millisecond, 0 })
	if _, err := once.Map(change(bus.OpInsert, "users", 1, 10, map[string]any{"id": 1})); err == nil ||
		!strings.Contains(err.Error(), "interrupted once") || !strings.Contains(err.Error(), "(limits 20ms)") {
		t.Errorf("without retries: %v", err)
	}
}

func TestScriptTimeoutRetriesAreValidated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		edit func(*transform.ScriptConfig)
		want string
	}{
		{func(c *transform.ScriptConfig) { c.TimeoutRetries = -1 }, "transform.timeout_retries"},
		{func(c *transform.ScriptConfig) { c.TimeoutRetries = 11 }, "transform.timeout_retries"},
		{func(c *transform.ScriptConfig) { c.MaxTimeout = c.Timeout - 1 }, "transform.max_timeout"},
	} {
		c := transform.DefaultScriptConfig()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
		}
	}
	c := transform.DefaultScriptConfig()
	if c.TimeoutRetries != transform.DefaultTimeoutRetries || c.MaxTimeout != 0 || c.Validate() != nil {
		t.Errorf("defaults: retries %d, max %s, %v", c.TimeoutRetries, c.MaxTimeout, c.Validate())
	}
}

// TestStageRetriesATimeoutInOrder: in the stage, a row whose call overruns
// its first limits is retried where it stands: it is indexed, nothing is
// dead-lettered, and the later changes of the same document come after it.
func TestStageRetriesATimeoutInOrder(t *testing.T) {
	t.Parallel()
	const limit = 50 * time.Millisecond
	b := bustest.Open(t)
	dir := t.TempDir()
	writeScript(t, dir, "users", spinScript)
	s := loadScripts(t, dir, func(c *transform.ScriptConfig) { c.Timeout = limit })
	docs := newDocReader(t, b)

	var changes []*bus.Change
	for i := 1; i <= 12; i++ {
		id, row := i, map[string]any{"v": i}
		if i%3 == 0 { // 3, 6, 9, 12: later versions of document 1 and 2
			id = 1 + (i/3)%2
		}
		row["id"] = id
		if i == 1 {
			row["spin"] = 3 * limit.Milliseconds()
		}
		changes = append(changes, change(bus.OpUpdate, "users", id, bus.LSN(100+i), row))
	}
	publish(t, b, changes...)
	runStage(t, b, s, 4)
	got := docs.read(len(changes))
	var order []string
	for _, d := range got {
		order = append(order, fmt.Sprintf("%s@%d", d.ID, d.Version))
	}
	want := []string{"1@101", "2@102", "2@103", "4@104", "5@105", "1@106", "7@107", "8@108", "2@109", "10@110", "11@111", "1@112"}
	if !slices.Equal(order, want) {
		t.Fatalf("documents %v, want %v", order, want)
	}
	if dls := deadLetters(t, b); len(dls) != 0 {
		t.Fatalf("dead letters: %v", dls)
	}
}
