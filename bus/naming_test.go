package bus

import (
	"strings"
	"testing"
)

func TestUnescapeToken(t *testing.T) {
	for _, s := range []string{"", "~", "plain", "with space", "dots.and~tildes", "ünïcode"} {
		if got, ok := UnescapeToken(EscapeToken(s)); !ok || got != s {
			t.Errorf("UnescapeToken(EscapeToken(%q)) = %q, %v", s, got, ok)
		}
	}
	for _, bad := range []string{"~4", "a~zz", "x~"} {
		if _, ok := UnescapeToken(bad); ok {
			t.Errorf("UnescapeToken(%q) accepted", bad)
		}
	}
}

func TestParseTable(t *testing.T) {
	for in, want := range map[string][2]string{"users": {"public", "users"}, "shop.orders": {"shop", "orders"}, "Odd Schema.t": {"Odd Schema", "t"}} {
		if s, tb, err := ParseTable(in); err != nil || s != want[0] || tb != want[1] {
			t.Errorf("ParseTable(%q) = %q, %q, %v", in, s, tb, err)
		}
	}
	for _, bad := range []string{"", ".x", "x.", "s.t.u"} {
		if _, _, err := ParseTable(bad); err == nil || !strings.Contains(err.Error(), "want schema.table or table") {
			t.Errorf("ParseTable(%q) accepted: %v", bad, err)
		}
	}
	if s, tb, ok := ParseChangeSubject(ChangeSubject("Odd Schema", "t.a~b")); !ok || s != "Odd Schema" || tb != "t.a~b" {
		t.Errorf("ParseChangeSubject = %q, %q, %v", s, tb, ok)
	}
	if _, _, ok := ParseChangeSubject(DocSubject("x")); ok {
		t.Error("ParseChangeSubject took a document subject")
	}
}

// FuzzUnescapeToken: every subject token EscapeToken makes reads back
// as the name it was made from, and no token makes UnescapeToken fail badly.
func FuzzUnescapeToken(f *testing.F) {
	for _, s := range []string{"", "users", "Odd Schema", "t.a~b", "ünï", "~", "~4", "a~zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, ok := UnescapeToken(EscapeToken(s)); !ok || got != s {
			t.Fatalf("UnescapeToken(EscapeToken(%q)) = %q, %v", s, got, ok)
		}
		if got, ok := UnescapeToken(s); ok && strings.Contains(s, "~") == (got == s) && s != "~" {
			t.Fatalf("UnescapeToken(%q) = %q: a token with escapes must change, one without must not", s, got)
		}
	})
}
