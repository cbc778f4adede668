package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream and bucket names.
const (
	ChangesStream = "WALSEARCH_CHANGES"
	DocsStream    = "WALSEARCH_DOCS"
	DLQStream     = "WALSEARCH_DLQ"
	StateBucket   = "walsearch_state"
)

// ensureStreams creates or updates Walsearch's streams. Changes and documents
// are work queues: a message leaves the disk once its stage acknowledged it,
// so a backlog (an Elasticsearch outage, a huge transaction) waits on disk,
// not in memory. Dead letters stay until purged.
func (b *Bus) ensureStreams(ctx context.Context) error {
	streams := []jetstream.StreamConfig{
		{
			Name:        ChangesStream,
			Description: "row changes captured from PostgreSQL",
			Subjects:    []string{ChangePrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
		},
		{
			Name:        DocsStream,
			Description: "documents to write to the search index",
			Subjects:    []string{DocPrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
		},
		{
			Name:        DLQStream,
			Description: "events a stage could not process, with the reason",
			Subjects:    []string{DLQPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
		},
	}
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		sc.Replicas = b.replicas
		sc.Duplicates = b.cfg.DuplicateWindow
		sc.Discard = jetstream.DiscardOld
		if err := b.ensureStream(ctx, sc); err != nil {
			return err
		}
	}
	return nil
}

// ensureStream creates sc, or checks an existing stream of that name
// against it: settings walsearch's guarantees rest on (subjects, retention,
// storage, discard, limits) must match, and a stream where they differ is
// an error naming the setting and the fix; a different replica count or
// duplicate window is logged as a warning and the stream used as it is.
// Existing streams are never changed, so that an operator's choices are
// not overwritten and processes starting at once do not race to update.
func (b *Bus) ensureStream(ctx context.Context, sc jetstream.StreamConfig) error {
	var st jetstream.Stream
	created := false
	err := b.retrySetup(ctx, "open stream "+sc.Name, func(ctx context.Context) error {
		var err error
		st, err = b.js.Stream(ctx, sc.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = b.js.CreateStream(ctx, sc)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				err = nil // another process created it first
			}
			created = err == nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", sc.Name, err)
	}
	if created {
		return nil
	}
	return b.report("stream", sc.Name, streamDiffs(st.CachedInfo().Config, sc))
}

// A settingDiff is one setting of an existing stream or bucket that differs
// from what walsearch creates.
type settingDiff struct {
	setting  string
	have     string
	want     string
	fatal    bool   // walsearch's guarantees do not hold with it
	editFlag string // the nats CLI's flag to change it, when it can be changed
}

// streamDiffs lists the settings of cur that differ from want.
func streamDiffs(cur, want jetstream.StreamConfig) []settingDiff {
	var out []settingDiff
	add := func(setting string, have, w any, fatal bool, flag string) {
		out = append(out, settingDiff{setting: setting, have: fmt.Sprint(have), want: fmt.Sprint(w), fatal: fatal, editFlag: flag})
	}
	if !slices.Equal(cur.Subjects, want.Subjects) {
		add("subjects", cur.Subjects, want.Subjects, true, "--subjects")
	}
	if cur.Retention != want.Retention {
		add("retention", cur.Retention, want.Retention, true, "")
	}
	if cur.Storage != want.Storage {
		add("storage", cur.Storage, want.Storage, true, "")
	}
	if cur.Discard != want.Discard {
		add("discard", cur.Discard, want.Discard, true, "--discard")
	}
	if cur.MaxMsgs > 0 {
		add("max_msgs", cur.MaxMsgs, "unlimited (-1)", true, "--max-msgs")
	}
	if cur.MaxBytes > 0 {
		add("max_bytes", cur.MaxBytes, "unlimited (-1)", true, "--max-bytes")
	}
	if cur.MaxAge > 0 {
		add("max_age", cur.MaxAge, "unlimited (0)", true, "--max-age")
	}
	if cur.MaxMsgsPerSubject > 0 {
		add("max_msgs_per_subject", cur.MaxMsgsPerSubject, "unlimited (-1)", true, "--max-msgs-per-subject")
	}
	if cur.Replicas != want.Replicas {
		add("replicas", cur.Replicas, want.Replicas, false, "--replicas")
	}
	if cur.Duplicates < want.Duplicates {
		add("duplicate_window", cur.Duplicates, want.Duplicates, false, "--dupe-window")
	}
	return out
}

// checkBucket checks an existing key-value bucket against want, like
// ensureStream does streams.
//
// A bucket another process has just created may not be found yet by the
// server that answers (a cluster applies the creation on every server in
// turn): its status is asked again, as retrySetup does.
func (b *Bus) checkBucket(ctx context.Context, kv jetstream.KeyValue, want jetstream.KeyValueConfig) error {
	var st jetstream.KeyValueStatus
	err := b.retrySetup(ctx, "read bucket "+want.Bucket, func(ctx context.Context) error {
		var err error
		st, err = kv.Status(ctx)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			// Created by another process a moment ago, and not yet
			// applied by the server that answered.
			err = fmt.Errorf("%w: %w", errNotYet, err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("read bucket %s: %w", want.Bucket, err)
	}
	var diffs []settingDiff
	if h := st.History(); h != int64(want.History) {
		diffs = append(diffs, settingDiff{setting: "history", have: fmt.Sprint(h), want: fmt.Sprint(want.History), fatal: true, editFlag: "--history"})
	}
	if ttl := st.TTL(); ttl != want.TTL {
		diffs = append(diffs, settingDiff{setting: "ttl", have: ttl.String(), want: want.TTL.String(), fatal: true, editFlag: "--ttl"})
	}
	if si, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		cfg := si.StreamInfo().Config
		if r := cfg.Replicas; want.Replicas != 0 && r != want.Replicas {
			diffs = append(diffs, settingDiff{setting: "replicas", have: fmt.Sprint(r), want: fmt.Sprint(want.Replicas), editFlag: "--replicas"})
		}
		if cfg.Storage != want.Storage {
			diffs = append(diffs, settingDiff{setting: "storage", have: cfg.Storage.String(), want: want.Storage.String(), fatal: true})
		}
		if cfg.MaxBytes > 0 {
			diffs = append(diffs, settingDiff{setting: "max_bytes", have: fmt.Sprint(cfg.MaxBytes), want: "unlimited (-1)", fatal: true, editFlag: "--max-bytes"})
		}
	}
	return b.report("bucket", want.Bucket, diffs)
}

// report logs the non-fatal differences and returns a SettingsError for
// the fatal ones.
func (b *Bus) report(kind, name string, diffs []settingDiff) error {
	var fatal []settingDiff
	for _, d := range diffs {
		if d.fatal {
			fatal = append(fatal, d)
			continue
		}
		fix := "set nats.replicas to match it"
		if d.setting == "duplicate_window" {
			fix = "a republished change older than the window is stored twice (harmless, by versions, but extra work)"
		}
		b.log.Warn(fmt.Sprintf("existing %s %s: %s is %s, walsearch creates it with %s; using it as it is", kind, name, d.setting, d.have, d.want),
			"fix", editHint(kind, name, d)+" or "+fix)
	}
	if len(fatal) == 0 {
		return nil
	}
	return &SettingsError{Kind: kind, Name: name, diffs: fatal}
}

func editHint(kind, name string, d settingDiff) string {
	cmd := "nats stream edit " + name
	if kind == "bucket" {
		cmd = "nats kv edit " + name
	}
	if d.editFlag == "" {
		return "it cannot be changed in place"
	}
	return fmt.Sprintf("change it with `%s %s=...`", cmd, d.editFlag)
}

// SettingsError reports an existing stream or bucket whose settings break
// what walsearch relies on. Walsearch does not change or use it.
type SettingsError struct {
	Kind, Name string
	diffs      []settingDiff
}

// Settings names the settings that differ.
func (e *SettingsError) Settings() []string {
	out := make([]string, len(e.diffs))
	for i, d := range e.diffs {
		out[i] = d.setting
	}
	return out
}

func (e *SettingsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "existing %s %s does not have the settings walsearch needs, so it is not used:", e.Kind, e.Name)
	for _, d := range e.diffs {
		fmt.Fprintf(&b, " %s is %s, walsearch needs %s (%s);", d.setting, d.have, d.want, editHint(e.Kind, e.Name, d))
	}
	rm := "nats stream rm " + e.Name
	if e.Kind == "bucket" {
		rm = "nats kv rm " + e.Name
	}
	fmt.Fprintf(&b, " if it holds nothing walsearch still needs (no backlog), you may instead delete it (%s) and walsearch creates it again; see docs/scale-out.md", rm)
	return b.String()
}

// Fatal reports that retrying cannot fix this.
func (e *SettingsError) Fatal() bool { return true }
