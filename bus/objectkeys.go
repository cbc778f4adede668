package bus

import "encoding/json"

// ObjectKeys calls fn with each key of the JSON object src, in order, until
// fn returns false. It reads only as far as it needs and does not validate
// the values it skips: a malformed source simply ends the scan (whoever
// decodes it reports it). key is valid during the call
// only; passing it as m[string(key)] costs no allocation.
func ObjectKeys(src []byte, fn func(key []byte) bool) {
	i := skipSpace(src, 0)
	if i >= len(src) || src[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(src, i)
		if i >= len(src) || src[i] != '"' {
			return
		}
		end, escaped := stringEnd(src, i)
		if end < 0 {
			return
		}
		key := src[i+1 : end-1]
		if escaped {
			var s string
			if err := json.Unmarshal(src[i:end], &s); err != nil {
				return
			}
			key = []byte(s)
		}
		if !fn(key) {
			return
		}
		i = skipSpace(src, end)
		if i >= len(src) || src[i] != ':' {
			return
		}
		if i = valueEnd(src, skipSpace(src, i+1)); i < 0 {
			return
		}
		i = skipSpace(src, i)
		if i >= len(src) || src[i] != ',' {
			return
		}
		i++
	}
}
