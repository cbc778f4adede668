package config

import (
	"fmt"
	"strconv"

	"github.com/knadh/koanf/providers/posflag"
	"github.com/spf13/pflag"
)

// flagKey maps a flag like --postgres-url to the key postgres.url. Only flags
// the user set are taken, so a flag's default never hides the file or env.
func flagKey(fs *pflag.FlagSet) func(f *pflag.Flag) (string, any) {
	return func(f *pflag.Flag) (string, any) {
		if !f.Changed {
			return "", nil
		}
		key, ok := flagKeys[f.Name]
		if !ok {
			return "", nil
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			return key, sv.GetSlice()
		}
		return key, posflag.FlagVal(fs, f)
	}
}

// flagKeys maps each flag to the key it sets.
var flagKeys = map[string]string{
	"role":              "role",
	"data-dir":          "data_dir",
	"postgres-url":      "postgres.url",
	"tables":            "postgres.tables",
	"elasticsearch-url": "elasticsearch.url",
	"nats-url":          "nats.url",
	"scripts-dir":       "scripts_dir",
	"api-listen":        "api.listen",
	"log-level":         "log.level",
}

// Flag names a configuration key that a command takes as a flag.
type Flag string

// The configuration keys with a flag of their own.
const (
	FlagRole             Flag = "role"
	FlagDataDir          Flag = "data-dir"
	FlagPostgresURL      Flag = "postgres-url"
	FlagTables           Flag = "tables"
	FlagElasticsearchURL Flag = "elasticsearch-url"
	FlagNATSURL          Flag = "nats-url"
	FlagScriptsDir       Flag = "scripts-dir"
	FlagAPIListen        Flag = "api-listen"
	FlagLogLevel         Flag = "log-level"
)

// AllFlags are the flags of every configuration key that has one, in the
// order --help lists them.
var AllFlags = []Flag{FlagRole, FlagDataDir, FlagPostgresURL, FlagTables, FlagElasticsearchURL,
	FlagNATSURL, FlagScriptsDir, FlagAPIListen, FlagLogLevel}

// AddFlags defines the given flags on fs, so that a command's --help lists
// only the settings it uses. It panics on a flag that names no key: that is
// a programming error, like defining a flag twice.
func AddFlags(fs *pflag.FlagSet, flags ...Flag) {
	settings := map[string]Setting{}
	for _, s := range Reference() {
		settings[s.Key] = s
	}
	for _, f := range flags {
		key, ok := flagKeys[string(f)]
		if !ok {
			panic(fmt.Sprintf("config.AddFlags: no flag %q", f))
		}
		s := settings[key]
		usage := s.Help + " (" + key + ")"
		if def, err := strconv.Unquote(s.Default); err == nil {
			fs.String(string(f), def, usage)
		} else {
			fs.StringSlice(string(f), nil, usage) // postgres.tables, comma-separated
		}
	}
}
