package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryKeyHasAHelp: a key added without a help tag would be missing
// from docs/configuration.md, walsearch config --defaults and --help.
func TestEveryKeyHasAHelp(t *testing.T) {
	if keys := Undescribed(); len(keys) > 0 {
		t.Fatalf("keys without a help tag (say what each means where its field is declared): %s", strings.Join(keys, ", "))
	}
	if n := len(Reference()); n < 40 {
		t.Fatalf("the reference lists %d keys; the walk of Config lost some", n)
	}
}

// TestConfigurationDocIsCurrent: docs/configuration.md is what the code
// generates.
func TestConfigurationDocIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != ReferenceMarkdown() {
		t.Fatalf("%s differs from the configuration in the code: run make docs (go generate ./internal/config) and commit it", path)
	}
}

// TestDefaultsYAMLLoadsAsTheDefaults: the file walsearch config --defaults
// prints is a valid configuration that sets every key to its default.
func TestDefaultsYAMLLoadsAsTheDefaults(t *testing.T) {
	yaml := DefaultsYAML()
	c, err := Load(write(t, yaml), nil, nil)
	if err != nil {
		t.Fatalf("the defaults file does not load: %v\n%s", err, yaml)
	}
	loaded := settingsOf(c)
	for i, want := range Reference() {
		if loaded[i].Default != want.Default {
			t.Errorf("%s: the defaults file sets %s, the default is %s", want.Key, loaded[i].Default, want.Default)
		}
		if !strings.Contains(want.Key, "<") && !strings.Contains(yaml, lastPart(want.Key)+": "+want.Default+"\n") {
			t.Errorf("%s: not in the defaults file", want.Key)
		}
	}
	for _, s := range Reference() {
		for _, e := range s.Env {
			if !strings.Contains(yaml, e) {
				t.Errorf("%s: its variable %s is not named", s.Key, e)
			}
		}
	}
}

func lastPart(key string) string { return key[strings.LastIndex(key, ".")+1:] }
