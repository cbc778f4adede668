package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version and commit are stamped by release builds:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)" ./cmd/walsearch
//
// A build without them reports what Go recorded: the module version, and
// the commit of the checkout it was built from.
var version, commit string

// versionString is what `walsearch version` and `walsearch --version` print
// after the program's name.
func versionString() string {
	v, c, modified := version, commit, false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	var b strings.Builder
	b.WriteString(v)
	if c != "" {
		b.WriteString(" (commit ")
		b.WriteString(c[:min(len(c), 12)])
		if modified && commit == "" {
			b.WriteString(", with uncommitted changes")
		}
		b.WriteString(")")
	}
	return b.String()
}

func (m *Main) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(m.Stdout, "walsearch", versionString())
			return err
		},
	}
}
