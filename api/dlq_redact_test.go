package api

import "testing"

func TestConsoleRedactRemovesHiddenFieldsAtAnyDepth(t *testing.T) {
	event := `{"op":"update","row":{"id":9007199254740993,"secret":"s","profile":{"token":"t","bio":"b"},"tags":[{"secret":1,"x":2}]},` +
		`"old":{"secret":"s0","id":1},"doc":{"profile.token":"flat"}}`
	got := string(redact([]byte(event), []string{"secret", "profile.token"}))
	want := `{"doc":{},"old":{"id":1},"op":"update","row":{"id":9007199254740993,"profile":{"bio":"b"},"tags":[{"x":2}]}}`
	if got != want {
		t.Errorf("redact:\n got %s\nwant %s", got, want)
	}
	if got := string(redact([]byte(event), nil)); got != event {
		t.Errorf("no hidden fields: event changed to %s", got)
	}
	if got := redact([]byte(`{"secret":`), []string{"secret"}); got != nil {
		t.Errorf("an event that is not JSON: %s, want it left out", got)
	}
}
