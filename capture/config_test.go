package capture

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.URL = "postgres://walsearch:secret@db:5432/app"
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	bad := Config{
		Slot:            "Bad-Name",
		Publication:     strings.Repeat("p", 64),
		Tables:          []string{"public.a", "a", ".x", "s.t.u"},
		StatusInterval:  -time.Second,
		SnapshotWorkers: -1, ChunkRows: -1, WatermarkInterval: -1, MaxSlotLagBytes: -1,
		SlotCheckInterval: -1, LagWarnInterval: -1,
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"postgres.url", "postgres.slot", "postgres.publication", `"a" is listed twice`,
		`".x"`, `"s.t.u"`, "capture.status_interval", "capture.snapshot_workers", "capture.chunk_rows",
		"capture.watermark_interval", "capture.max_slot_lag_bytes", "capture.slot_check_interval", "capture.lag_warn_interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestNewFillsDefaults(t *testing.T) {
	c, err := New(Config{URL: "postgres://u@h/db"}, &faultyPublisher{}, nopState{})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Slot != DefaultSlot || c.cfg.Publication != DefaultPublication || c.cfg.StatusInterval != DefaultStatusInterval {
		t.Fatalf("defaults not applied: %+v", c.cfg)
	}
	if st := c.Status(); st.Phase != PhaseIdle || st.Slot != DefaultSlot {
		t.Fatalf("status before Run = %+v", st)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := c.Run(t.Context()); err != ErrClosed {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
}
