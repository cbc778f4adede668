package sink

import "encoding/json"

// topLevelKeys calls fn with each key of the JSON object src, in order, until
// fn returns false. It reads only as far as it needs and does not validate
// the values it skips: a malformed source simply ends the scan (the engine
// reports it when the document is indexed). key is valid during the call
// only; passing it as m[string(key)] costs no allocation.
func topLevelKeys(src []byte, fn func(key []byte) bool) {
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
		if i = skipValue(src, skipSpace(src, i+1)); i < 0 {
			return
		}
		i = skipSpace(src, i)
		if i >= len(src) || src[i] != ',' {
			return
		}
		i++
	}
}

func skipSpace(src []byte, i int) int {
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the offset just past the JSON string starting at
// src[i] (a quote), or -1, and whether it holds escapes.
func stringEnd(src []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, false
}

// skipValue returns the offset just past the JSON value starting at src[i],
// or -1.
func skipValue(src []byte, i int) int {
	if i >= len(src) {
		return -1
	}
	switch src[i] {
	case '"':
		end, _ := stringEnd(src, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(src); j++ {
			switch src[j] {
			case '"':
				end, _ := stringEnd(src, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	for j := i; j < len(src); j++ {
		switch src[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
	}
	return len(src)
}
