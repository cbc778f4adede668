package bus

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	got := RedactURL("postgres://walsearch:secret@db:5432/app?sslmode=disable")
	if strings.Contains(got, "secret") || !strings.Contains(got, "walsearch@db:5432/app") {
		t.Fatalf("RedactURL = %q", got)
	}
	for raw, want := range map[string]string{
		"nats://s3cret-token@nats:4222":       "nats://***@nats:4222",
		"https://elastic:pw@es:9200":          "https://elastic@es:9200",
		"postgres://u@db/app?password=s3cret": "postgres://***@db/app",
		"host=db password=s3cret":             "(unparsable url)",
		"http://es:9200":                      "http://es:9200",
	} {
		if got := RedactURL(raw); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
