package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/walsearch/walsearch/internal/config"
)

// TestVersionFlagAndCommandPrintTheStampedVersion: `walsearch --version` is
// a flag (it was an unknown one) and prints what `walsearch version` prints:
// the version and commit stamped at build time.
func TestVersionFlagAndCommandPrintTheStampedVersion(t *testing.T) {
	saved, savedCommit := version, commit
	version, commit = "v1.2.3", "0123456789abcdef0123456789abcdef01234567"
	t.Cleanup(func() { version, commit = saved, savedCommit })
	const want = "walsearch v1.2.3 (commit 0123456789ab)\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := runCLI(t, nil, args...)
		if err != nil || out != want {
			t.Errorf("walsearch %s: %q, %v; want %q", strings.Join(args, " "), out, err, want)
		}
	}
}

// TestDLQRefusesAnUnknownStage: a --stage that no stage has is an error
// naming the stages, before any bus is looked for, not an empty list.
func TestDLQRefusesAnUnknownStage(t *testing.T) {
	for _, args := range [][]string{
		{"dlq", "list", "--stage", "bogus"},
		{"dlq", "purge", "--stage", "bogus"},
		{"dlq", "replay", "--all", "--stage", "bogus"},
	} {
		_, err := runCLI(t, nil, append(args, "--data-dir", t.TempDir())...)
		if err == nil || !strings.Contains(err.Error(), `--stage "bogus": no such stage`) || !strings.Contains(err.Error(), "transform and sink") {
			t.Errorf("walsearch %s: %v", strings.Join(args, " "), err)
		}
	}
}

// TestSubcommandHelpListsOnlyItsSettings: each command's --help lists the
// configuration flags it reads and no other (every command listed all of
// them: backfill offered --api-listen, dlq --postgres-url, ...).
func TestSubcommandHelpListsOnlyItsSettings(t *testing.T) {
	all := []string{"--data-dir", "--postgres-url", "--tables", "--elasticsearch-url",
		"--nats-url", "--scripts-dir", "--api-listen", "--log-level"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run"}, all},
		{[]string{"dlq", "list"}, []string{"--data-dir", "--nats-url"}},
		{[]string{"dlq", "purge"}, []string{"--data-dir", "--nats-url"}},
		{[]string{"reindex"}, []string{"--data-dir", "--nats-url"}},
		{[]string{"backfill"}, []string{"--postgres-url"}},
		{[]string{"teardown"}, []string{"--postgres-url", "--data-dir", "--nats-url"}},
		{[]string{"transform", "test"}, []string{"--postgres-url", "--scripts-dir", "--log-level"}},
	} {
		out, err := runCLI(t, nil, append(tc.args, "--help")...)
		if err != nil {
			t.Fatalf("walsearch %s --help: %v", strings.Join(tc.args, " "), err)
		}
		for _, f := range all {
			listed := strings.Contains(out, "  "+f+" ") || strings.Contains(out, ", "+f+" ")
			if want := slices.Contains(tc.want, f); listed != want {
				t.Errorf("walsearch %s --help lists %s: %v, want %v\n%s", strings.Join(tc.args, " "), f, listed, want, out)
			}
		}
	}
}

// TestConfigDefaultsPrintsTheReference: walsearch config --defaults prints
// the commented file of every key's default, and refuses to guess without
// --defaults.
func TestConfigDefaultsPrintsTheReference(t *testing.T) {
	out, err := runCLI(t, nil, "config", "--defaults")
	if err != nil || out != config.DefaultsYAML() {
		t.Fatalf("walsearch config --defaults: %v\n%s", err, out)
	}
	if _, err := runCLI(t, nil, "config"); err == nil || !strings.Contains(err.Error(), "--defaults") {
		t.Fatalf("walsearch config without --defaults: %v", err)
	}
}
