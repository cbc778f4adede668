package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:generate go run ./gendocs ../../docs/configuration.md

// Setting is one configuration key as the reference lists it, read from
// the same structs, defaults and tags that Load fills and Validate checks.
type Setting struct {
	// Key is the key in the file, e.g. "sink.max_batch_size", or
	// "indices.<name>.index" under a map.
	Key string
	// Env are the environment variables that set it: the generic one
	// first, then those of the original design.
	Env []string
	// Flag is the command-line flag that sets it, if any ("--data-dir").
	Flag string
	// Default is the default as YAML.
	Default string
	// Help says what the key means (its help tag).
	Help string
}

// Reference returns every configuration key in the order of the file's
// sections.
func Reference() []Setting { return settingsOf(Default()) }

// settingsOf lists the keys with their values in c.
func settingsOf(c Config) []Setting {
	var out []Setting
	walkSettings(reflect.ValueOf(c), "", &out)
	return out
}

func walkSettings(v reflect.Value, prefix string, out *[]Setting) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if name == "-" || (name == "" && opts != "squash") {
			continue
		}
		fv := v.Field(i)
		if opts == "squash" {
			walkSettings(fv, prefix, out)
			continue
		}
		key := prefix + name
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)):
			walkSettings(fv, key+".", out)
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
			*out = append(*out, Setting{Key: key, Default: "{}", Help: f.Tag.Get("help")})
			walkSettings(reflect.New(f.Type.Elem()).Elem(), key+".<name>.", out)
		default:
			*out = append(*out, Setting{Key: key, Env: envNames(key, f.Type), Flag: flagOf(key),
				Default: yamlValue(fv), Help: f.Tag.Get("help")})
		}
	}
}

// envNames are the variables that set key: the generic WALSEARCH_ name
// (none under a map), then the legacy ones.
func envNames(key string, t reflect.Type) []string {
	var out []string
	if !strings.Contains(key, "<") {
		out = append(out, EnvPrefix+strings.ToUpper(strings.ReplaceAll(key, ".", "_")))
	}
	for _, l := range legacyEnv {
		if l.key == key {
			out = append(out, l.name)
		}
	}
	return out
}

func flagOf(key string) string {
	for flag, k := range flagKeys {
		if k == key {
			return "--" + flag
		}
	}
	return ""
}

// yamlValue writes v as a YAML value that Load reads back as v.
func yamlValue(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Map:
		if v.Len() == 0 {
			return "{}"
		}
	case reflect.Slice:
		if v.Len() == 0 {
			return "[]"
		}
		items := make([]string, v.Len())
		for i := range items {
			items[i] = yamlValue(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// DefaultsYAML is a complete configuration file of the defaults, each key
// under a comment saying what it means and which variable and flag set it.
func DefaultsYAML() string {
	var b strings.Builder
	b.WriteString("# walsearch configuration: every key with its default.\n" +
		"# Environment variables override this file, and flags override both.\n")
	var section []string // the sections open above the key
	for _, s := range Reference() {
		if strings.Contains(s.Key, "<name>") {
			continue // a map's keys are shown in its comment
		}
		parts := strings.Split(s.Key, ".")
		parents := parts[:len(parts)-1]
		common := 0
		for common < len(parents) && common < len(section) && parents[common] == section[common] {
			common++
		}
		for i := common; i < len(parents); i++ {
			fmt.Fprintf(&b, "\n%s%s:\n", strings.Repeat("  ", i), parents[i])
		}
		section = parents
		indent := strings.Repeat("  ", len(parents))
		b.WriteString("\n")
		help := s.Help
		if sub := mapKeys(s.Key); sub != "" {
			help += ". Each entry may set " + sub
		}
		for _, line := range wrap(help, 76-len(indent)) {
			fmt.Fprintf(&b, "%s# %s\n", indent, line)
		}
		if where := setBy(s); where != "" {
			fmt.Fprintf(&b, "%s# (%s)\n", indent, where)
		}
		fmt.Fprintf(&b, "%s%s: %s\n", indent, parts[len(parts)-1], s.Default)
	}
	return b.String()
}

// mapKeys lists the keys each entry of the map at key may set.
func mapKeys(key string) string {
	var keys []string
	for _, s := range Reference() {
		if rest, ok := strings.CutPrefix(s.Key, key+".<name>."); ok {
			keys = append(keys, rest)
		}
	}
	return strings.Join(keys, ", ")
}

func setBy(s Setting) string {
	var parts []string
	if len(s.Env) > 0 {
		parts = append(parts, "env "+strings.Join(s.Env, ", "))
	}
	if s.Flag != "" {
		parts = append(parts, "flag "+s.Flag)
	}
	return strings.Join(parts, "; ")
}

func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// ReferenceMarkdown is docs/configuration.md.
func ReferenceMarkdown() string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated from the code by ` + "`go generate ./internal/config`" + ` (or ` + "`make docs`" + `); do not edit. -->

Walsearch reads its configuration in layers, each overriding the one before:
the defaults below, then the YAML file given with ` + "`--config`" + `, then
environment variables, then command-line flags. ` + "`walsearch config --defaults`" + `
prints a complete file of the defaults, with these descriptions as comments.

Every key has an environment variable: ` + "`WALSEARCH_`" + ` and the key in upper
case with dots as underscores (` + "`sink.max_batch_size`" + ` is
` + "`WALSEARCH_SINK_MAX_BATCH_SIZE`" + `). A few keys also take the variables of
the original design, listed after it; a generic variable wins over a legacy
one. ` + "`PG_HOST`, `PG_PORT`, `PG_DATABASE`, `PG_USER` and `PG_PASSWORD`" + ` set
parts of ` + "`postgres.url`" + `, and ` + "`ES_HOST`, `ES_PORT` and `ES_USE_SSL`" + ` parts of
` + "`elasticsearch.url`" + `; ` + "`SYNC_INTERVAL`" + ` is in seconds. Durations are
written like ` + "`250ms`, `10s` or `1m`" + `.

Each command's ` + "`--help`" + ` lists the flags it takes.
`)
	// The top-level keys first, then each section's.
	settings := Reference()
	slices.SortStableFunc(settings, func(a, b Setting) int { return cmpBool(sectionOf(b) == "", sectionOf(a) == "") })
	section := "-"
	for _, s := range settings {
		if top := sectionOf(s); top != section {
			section = top
			if top == "" {
				top = "top level"
			}
			fmt.Fprintf(&b, "\n## %s\n\n| key | environment | flag | default | meaning |\n|---|---|---|---|---|\n", top)
		}
		env := make([]string, len(s.Env))
		for i, e := range s.Env {
			env[i] = "`" + e + "`"
		}
		flag := ""
		if s.Flag != "" {
			flag = "`" + s.Flag + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", s.Key, strings.Join(env, "<br>"), flag,
			s.Default, mdEscape.Replace(s.Help))
	}
	return b.String()
}

var mdEscape = strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;")

// sectionOf is the section a setting is listed under: its first part, or
// "" for a top-level key that holds a value.
func sectionOf(s Setting) string {
	top, _, nested := strings.Cut(s.Key, ".")
	if !nested && s.Default != "{}" {
		return ""
	}
	return top
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// Undescribed lists the keys without a help tag.
func Undescribed() []string {
	var out []string
	for _, s := range Reference() {
		if strings.TrimSpace(s.Help) == "" {
			out = append(out, s.Key)
		}
	}
	return slices.Clip(out)
}
