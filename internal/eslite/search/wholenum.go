package search

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// errNotNumber and errOutOfRange are why parseWhole refuses a value.
var (
	errNotNumber  = errors.New("not a number")
	errOutOfRange = errors.New("out of range")
)

// wholeNum is a decimal number read exactly as the whole number it holds.
type wholeNum struct {
	n    int64 // the integer part, truncated toward zero
	frac bool  // the number had a nonzero fractional part
	neg  bool  // the number is below zero (-0.5 is, though n is 0)
}

// parseWhole reads s, a decimal number (an optional sign, digits, an
// optional fraction and exponent, as JSON and Java's BigDecimal write them)
// exactly, without rounding it through a float64, so that every int64 keeps
// all its digits. Values not in [lo, hi] fail with errOutOfRange; with
// truncate the integer part is checked instead of the value itself, as
// Elasticsearch does for long (9223372036854775807.5 is a long,
// 2147483647.5 is not an integer).
func parseWhole(s string, lo, hi int64, truncate bool) (wholeNum, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < lo || n > hi {
			return wholeNum{}, errOutOfRange
		}
		return wholeNum{n: n, neg: n < 0}, nil
	}
	d, ok := splitDecimal(s)
	if !ok {
		return wholeNum{}, errNotNumber
	}
	// The value is 0.digits × 10^point, digits without leading zeros.
	digits := strings.TrimLeft(d.digits, "0")
	point := d.point - int64(len(d.digits)-len(digits))
	if strings.Trim(digits, "0") == "" {
		return wholeNum{}, checkWhole(0, false, false, lo, hi, truncate)
	}
	if point > 19 {
		return wholeNum{}, errOutOfRange // at least 10^19, beyond any int64
	}
	var whole uint64 // the integer part's magnitude: at most 19 digits
	fracDigits := digits
	if point > 0 {
		intDigits := digits
		if int64(len(intDigits)) > point {
			intDigits, fracDigits = digits[:point], digits[point:]
		} else {
			fracDigits = ""
		}
		for _, c := range intDigits {
			whole = whole*10 + uint64(c-'0')
		}
		for i := int64(len(intDigits)); i < point; i++ {
			whole *= 10
		}
	}
	frac := strings.Trim(fracDigits, "0") != ""
	var n int64
	switch {
	case !d.neg && whole <= math.MaxInt64:
		n = int64(whole)
	case d.neg && whole <= 1<<63:
		n = int64(-whole) // -2^63 wraps to itself
	default:
		return wholeNum{}, errOutOfRange
	}
	w := wholeNum{n: n, frac: frac, neg: d.neg}
	return w, checkWhole(n, frac, d.neg, lo, hi, truncate)
}

// checkWhole reports whether the number with integer part n (and a
// fraction beyond it when frac) is in [lo, hi]; with truncate only n must be.
func checkWhole(n int64, frac, neg bool, lo, hi int64, truncate bool) error {
	if n < lo || n > hi {
		return errOutOfRange
	}
	if frac && !truncate && (!neg && n == hi || neg && n == lo) {
		return errOutOfRange // just past the bound n is at
	}
	return nil
}

// decimal is the parts of a decimal number: its value is
// 0.digits × 10^point, negated when neg.
type decimal struct {
	neg    bool
	digits string
	point  int64
}

// maxExp bounds the exponents splitDecimal keeps: any value with a larger
// one is 0 or beyond every int64 all the same.
const maxExp = 1 << 40

// splitDecimal splits s, of the shape [+-] digits [. digits] [(e|E) [+-]
// digits] with digits on at least one side of the point, into its parts. It
// refuses anything else (hex, "_", "Inf", spaces).
func splitDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		d.neg = s[i] == '-'
		i++
	}
	digits := func() string {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return s[start:i]
	}
	intPart := digits()
	fracPart := ""
	if i < len(s) && s[i] == '.' {
		i++
		fracPart = digits()
	}
	if intPart == "" && fracPart == "" {
		return d, false
	}
	d.digits = intPart + fracPart
	d.point = int64(len(intPart))
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		e := digits()
		if e == "" {
			return d, false
		}
		var exp int64
		for _, c := range e {
			if exp < maxExp {
				exp = exp*10 + int64(c-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
		d.point += exp
	}
	return d, i == len(s)
}
