package bus_test

import (
	"testing"

	"github.com/walsearch/walsearch/bus"
)

func BenchmarkObjectKeys(b *testing.B) {
	src := []byte(`{"id":12345,"name":"a product name of some length","price":12.5,"tags":["red","blue","green"],` +
		`"attrs":{"color":"red","sizes":[{"cm":7},{"cm":9}],"note":"a \"quoted\" note"},"created":"2024-01-31T10:11:12.123456Z","active":true}`)
	columns := map[string]bool{"id": true, "name": true, "price": true, "tags": true, "attrs": true, "created": true, "active": true}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		bus.ObjectKeys(src, func(k []byte) bool { return columns[string(k)] })
	}
}

func TestObjectKeys(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]string{
		`{}`: "",
		` { "a" : 1 , "b":"x,}\"y", "c":[1,{"d":"]"}], "e":{"f":{"g":null}}, "h":true }`: "a b c e h",
		`{"a\u0062":1,"c":-1.5e3}`: "ab c",
		`{"a":{"unterminated":`:    "a",
		`[1,2]`:                    "",
		`not json`:                 "",
	} {
		var got string
		bus.ObjectKeys([]byte(src), func(k []byte) bool {
			if got != "" {
				got += " "
			}
			got += string(k)
			return true
		})
		if got != want {
			t.Errorf("ObjectKeys(%s) = %q, want %q", src, got, want)
		}
	}
}
