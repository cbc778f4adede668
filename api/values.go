package api

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Filter values are checked against the type of their field before a query
// reaches the engine, so that a value the field cannot hold ("abc" for a
// number, true for a date) is a 400 that names the field, as Elasticsearch
// itself would refuse it, rather than an engine error.

// integerRanges are the bounds of Elasticsearch's integer field types.
var integerRanges = map[string][2]*big.Float{
	"long":          {bigInt(math.MinInt64), bigInt(math.MaxInt64)},
	"integer":       {bigInt(math.MinInt32), bigInt(math.MaxInt32)},
	"short":         {bigInt(math.MinInt16), bigInt(math.MaxInt16)},
	"byte":          {bigInt(math.MinInt8), bigInt(math.MaxInt8)},
	"unsigned_long": {bigInt(0), new(big.Float).SetUint64(math.MaxUint64)},
}

func bigInt(n int64) *big.Float { return new(big.Float).SetInt64(n) }

// floatMax are the largest finite values of the floating-point field types.
var floatMax = map[string]float64{
	"double":       math.MaxFloat64,
	"scaled_float": math.MaxFloat64,
	"float":        math.MaxFloat32,
	"half_float":   65504,
}

// checkValue reports whether v (a string, json.Number or bool) can be
// compared with a field of type fi. where names the value in the request
// ("query_fields.price.gte"). Types the API does not know are left to the
// engine.
func checkValue(where string, fi fieldInfo, v any) error {
	if r, ok := integerRanges[fi.Type]; ok {
		if !numberWithin(v, r[0], r[1]) {
			return badRequest(fmt.Sprintf("%s: want a number from %s to %s (the field is %s)",
				where, r[0].Text('f', 0), r[1].Text('f', 0), fi.Type))
		}
		return nil
	}
	if m, ok := floatMax[fi.Type]; ok {
		bound := big.NewFloat(m)
		if !numberWithin(v, new(big.Float).Neg(bound), bound) {
			return badRequest(fmt.Sprintf("%s: want a finite number (the field is %s)", where, fi.Type))
		}
		return nil
	}
	switch fi.Type {
	case "boolean":
		switch x := v.(type) {
		case bool:
		case string:
			if x != "true" && x != "false" {
				return badRequest(fmt.Sprintf("%s: want true or false (the field is boolean)", where))
			}
		default:
			return badRequest(fmt.Sprintf("%s: want true or false (the field is boolean)", where))
		}
	case "date", "date_nanos":
		ok, known := dateValue(fi.Format, v)
		if known && !ok {
			return badRequest(fmt.Sprintf("%s: want a date like 2024-01-31 or 2024-01-31T12:00:00Z, %sor date math like now-1d (the field is %s)",
				where, epochHint(fi.Format), fi.Type))
		}
	}
	return nil
}

// numberWithin reports whether v is a number, or a string holding one (the
// engine converts those), within [lo, hi].
func numberWithin(v any, lo, hi *big.Float) bool {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = strings.TrimSpace(x)
	default:
		return false
	}
	f, _, err := big.ParseFloat(s, 10, 128, big.ToNearestEven)
	if err != nil || f.IsInf() {
		return false
	}
	return f.Cmp(lo) >= 0 && f.Cmp(hi) <= 0
}

// dateFormats are the named formats whose values the API checks; a field
// with any other format is left to the engine.
var dateFormats = map[string]bool{
	"strict_date_optional_time":       true,
	"strict_date_optional_time_nanos": true, "epoch_millis": true, "epoch_second": true,
}

// dateFormatParts splits a mapping's format; "" is Elasticsearch's default.
func dateFormatParts(format string) []string {
	if format == "" {
		format = "strict_date_optional_time||epoch_millis"
	}
	parts := strings.Split(format, "||")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func epochHint(format string) string {
	for _, p := range dateFormatParts(format) {
		switch p {
		case "epoch_millis":
			return "epoch milliseconds "
		case "epoch_second":
			return "epoch seconds "
		}
	}
	return ""
}

// dateValue reports whether v is a date the field's format reads, or date
// math. known is false when the format is one the API does not check.
func dateValue(format string, v any) (ok, known bool) {
	parts := dateFormatParts(format)
	for _, p := range parts {
		if !dateFormats[p] {
			return false, false
		}
	}
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	default:
		return false, true
	}
	date, ops, hasOps := strings.Cut(s, "||")
	if strings.HasPrefix(s, "now") && validDateMath(s[3:]) {
		return true, true
	}
	if hasOps && !validDateMath(ops) {
		return false, true
	}
	for _, p := range parts {
		switch p {
		case "epoch_millis", "epoch_second":
			if isEpoch(date) {
				return true, true
			}
		default:
			if isISODate(date) {
				return true, true
			}
		}
	}
	return false, true
}

// validDateMath reports whether s is a sequence of Elasticsearch date-math
// operations: +1d, -2h, /d, ...
func validDateMath(s string) bool {
	for s != "" {
		switch s[0] {
		case '+', '-':
			i := 1
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i == len(s) || !strings.ContainsRune("yMwdhHms", rune(s[i])) {
				return false
			}
			s = s[i+1:]
		case '/':
			if len(s) < 2 || !strings.ContainsRune("yMwdhHms", rune(s[1])) {
				return false
			}
			s = s[2:]
		default:
			return false
		}
	}
	return true
}

// isEpoch reports whether s is an epoch number: digits, optionally signed,
// with an optional fraction.
func isEpoch(s string) bool {
	if strings.ContainsAny(s, "eEnNiI+ ") {
		return false
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && !math.IsInf(f, 0) && math.Abs(f) < 9.2e18
}

// isISODate reports whether s is strict_date_optional_time:
// yyyy[-MM[-dd['T'HH[:mm[:ss[.S+]]]]]][Z|±HH:mm|±HHmm].
func isISODate(s string) bool {
	p := datePos{s: s}
	if _, ok := p.num(4, 9999); !ok {
		return false
	}
	if p.eat('-') {
		if _, ok := p.numIn(2, 1, 12); !ok {
			return false
		}
		if p.eat('-') {
			if _, ok := p.numIn(2, 1, 31); !ok {
				return false
			}
			if p.eat('T') {
				if _, ok := p.numIn(2, 0, 23); !ok {
					return false
				}
				if p.eat(':') {
					if _, ok := p.numIn(2, 0, 59); !ok {
						return false
					}
					if p.eat(':') {
						if _, ok := p.numIn(2, 0, 59); !ok {
							return false
						}
						if p.eat('.') || p.eat(',') {
							n := 0
							for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
								p.i++
								n++
							}
							if n == 0 || n > 9 {
								return false
							}
						}
					}
				}
			}
		}
	}
	return p.zone() && p.i == len(p.s)
}

type datePos struct {
	s string
	i int
}

func (p *datePos) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// num reads exactly n digits no greater than max.
func (p *datePos) num(n, max int) (int, bool) {
	return p.numIn(n, 0, max)
}

func (p *datePos) numIn(n, lo, hi int) (int, bool) {
	if p.i+n > len(p.s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(p.s[p.i : p.i+n]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v < lo || v > hi {
		return 0, false
	}
	p.i += n
	return v, true
}

// zone reads an optional Z, ±HH, ±HH:mm or ±HHmm.
func (p *datePos) zone() bool {
	if p.i == len(p.s) || p.eat('Z') {
		return true
	}
	if !p.eat('+') && !p.eat('-') {
		return false
	}
	if _, ok := p.numIn(2, 0, 23); !ok {
		return false
	}
	if p.i == len(p.s) {
		return true
	}
	p.eat(':')
	_, ok := p.numIn(2, 0, 59)
	return ok
}
