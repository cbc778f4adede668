package capture

import (
	"strconv"
	"strings"
	"time"
)

// The documented mapping of PostgreSQL's infinite dates and timestamps: the
// first and last instants an ISO 8601 date with a four-digit year can hold, so
// that range queries and sorting keep treating them as "before everything" and
// "after everything".
const (
	dateMinusInfinity      = "0001-01-01"
	datePlusInfinity       = "9999-12-31"
	timestampMinusInfinity = "0001-01-01T00:00:00.000000"
	timestampPlusInfinity  = "9999-12-31T23:59:59.999999"
)

// formatDate converts date output in the ISO DateStyle (2024-01-31, or
// 0044-03-15 BC) to ISO 8601 (BC years become astronomical: -0043-03-15).
func formatDate(text string) (string, bool) {
	var buf [maxTimestampLen]byte
	b, ok := appendDateText(buf[:0], text)
	return string(b), ok
}

// formatTimestamp converts timestamp (tz=false) and timestamptz (tz=true)
// output in the ISO DateStyle to ISO 8601 with exactly six fractional digits;
// timestamptz values are moved to UTC and end in Z.
func formatTimestamp(text string, tz bool) (string, bool) {
	var buf [maxTimestampLen]byte
	b, ok := appendTimestampText(buf[:0], text, tz)
	return string(b), ok
}

// maxTimestampLen is the longest timestamp appendTimestampText writes: the
// year has up to seven digits (parseDate's limit), eight once a late
// offset carries it over into the next year.
const maxTimestampLen = len("+10000000-01-01T00:00:00.000000Z")

// appendDateText appends the ISO 8601 form of date output (see formatDate).
// It returns b unchanged and false when text is not a date.
func appendDateText(b []byte, text string) ([]byte, bool) {
	switch text {
	case "infinity":
		return append(b, datePlusInfinity...), true
	case "-infinity":
		return append(b, dateMinusInfinity...), true
	}
	body, bc := strings.CutSuffix(text, " BC")
	y, m, d, ok := parseDate(body)
	if !ok {
		return b, false
	}
	if bc {
		y = 1 - y
	}
	return appendDate(b, y, m, d), true
}

// appendTimestampText appends the ISO 8601 form of timestamp or timestamptz
// output (see formatTimestamp). It returns b unchanged and false when text is
// not a timestamp.
func appendTimestampText(b []byte, text string, tz bool) ([]byte, bool) {
	if out, ok := appendCanonicalTimestamp(b, text, tz); ok {
		return out, true
	}
	return appendParsedTimestamp(b, text, tz)
}

// appendCanonicalTimestamp handles the form nearly every value has, in the
// UTC sessions capture opens: "YYYY-MM-DD HH:MM:SS[.f…]", with "+00" for a
// timestamptz, a valid date and a time before 24:00:00. The fields are
// copied in place, without being parsed. Anything else reports false, for
// appendParsedTimestamp.
func appendCanonicalTimestamp(b []byte, text string, tz bool) ([]byte, bool) {
	s := text
	if tz {
		body, ok := strings.CutSuffix(s, "+00")
		if !ok {
			return b, false
		}
		s = body
	}
	if len(s) < 19 || len(s) == 20 || len(s) > 26 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return b, false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if s[i] < '0' || s[i] > '9' {
			return b, false
		}
	}
	frac := s[19:]
	if frac != "" {
		if frac[0] != '.' {
			return b, false
		}
		frac = frac[1:]
		for i := 0; i < len(frac); i++ {
			if frac[i] < '0' || frac[i] > '9' {
				return b, false
			}
		}
	}
	two := func(i int) int { return int(s[i]-'0')*10 + int(s[i+1]-'0') }
	y, mo, d := two(0)*100+two(2), two(5), two(8)
	if y == 0 || mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || two(11) > 23 || two(14) > 59 || two(17) > 59 {
		return b, false
	}
	b = append(b, s[:10]...)
	b = append(b, 'T')
	b = append(b, s[11:19]...)
	b = append(b, '.')
	b = append(b, frac...)
	b = append(b, "000000"[len(frac):]...)
	if tz {
		b = append(b, 'Z')
	}
	return b, true
}

// appendParsedTimestamp is appendTimestampText for any form: BC years,
// offsets, 24:00:00, leap seconds and infinities.
func appendParsedTimestamp(b []byte, text string, tz bool) ([]byte, bool) {
	suffix := ""
	if tz {
		suffix = "Z"
	}
	switch text {
	case "infinity":
		return append(append(b, timestampPlusInfinity...), suffix...), true
	case "-infinity":
		return append(append(b, timestampMinusInfinity...), suffix...), true
	}
	body, bc := strings.CutSuffix(text, " BC")
	datePart, timePart, ok := strings.Cut(body, " ")
	if !ok {
		return b, false
	}
	y, mo, d, ok := parseDate(datePart)
	if !ok {
		return b, false
	}
	if bc {
		y = 1 - y
	}
	clock, offset := timePart, ""
	if tz {
		i := strings.IndexAny(timePart, "+-")
		if i < 0 {
			return b, false
		}
		clock, offset = timePart[:i], timePart[i:]
	}
	h, mi, s, micros, ok := parseClock(clock)
	if !ok {
		return b, false
	}
	if (offset == "" || offset == "+00") && h < 24 && s < 60 {
		// Nothing to move or normalise (sessions run in UTC): write the
		// fields as they are.
		if d > daysIn(mo, y) {
			return b, false
		}
		return appendTimestamp(b, y, mo, d, h, mi, s, micros, suffix), true
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, micros*1000, time.UTC)
	if t.Month() != time.Month(mo) || t.Day() != d {
		return b, false
	}
	if tz {
		off, ok := parseOffset(offset)
		if !ok {
			return b, false
		}
		t = t.Add(-time.Duration(off) * time.Second)
	}
	return appendTimestamp(b, t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1000, suffix), true
}

// appendDate appends an ISO 8601 date.
func appendDate(b []byte, y, mo, d int) []byte {
	b = appendYear(b, y)
	b = append(b, '-')
	b = append2(b, mo)
	b = append(b, '-')
	return append2(b, d)
}

// appendTimestamp appends ISO 8601 with six fractional digits.
func appendTimestamp(b []byte, y, mo, d, h, mi, s, micros int, suffix string) []byte {
	b = appendDate(b, y, mo, d)
	b = append(b, 'T')
	b = append2(b, h)
	b = append(b, ':')
	b = append2(b, mi)
	b = append(b, ':')
	b = append2(b, s)
	b = append(b, '.')
	for div := 100000; div > 0; div /= 10 {
		b = append(b, byte('0'+micros/div%10))
	}
	return append(b, suffix...)
}

// daysIn is the number of days of month m of (proleptic Gregorian) year y.
func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseDate parses Y-MM-DD where Y has four or more digits.
func parseDate(s string) (y, m, d int, ok bool) {
	parts, n := splitN(s, '-')
	if n != 3 || len(parts[0]) < 4 || len(parts[0]) > 7 || len(parts[1]) != 2 || len(parts[2]) != 2 {
		return 0, 0, 0, false
	}
	var err error
	if y, err = atoiDigits(parts[0]); err != nil {
		return 0, 0, 0, false
	}
	if m, err = atoiDigits(parts[1]); err != nil || m < 1 || m > 12 {
		return 0, 0, 0, false
	}
	if d, err = atoiDigits(parts[2]); err != nil || d < 1 || d > 31 {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// parseClock parses HH:MM:SS[.ffffff].
func parseClock(s string) (h, m, sec, micros int, ok bool) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	parts, n := splitN(whole, ':')
	if n != 3 || len(parts[0]) != 2 || len(parts[1]) != 2 || len(parts[2]) != 2 {
		return 0, 0, 0, 0, false
	}
	var err error
	if h, err = atoiDigits(parts[0]); err != nil || h > 24 {
		return 0, 0, 0, 0, false
	}
	if m, err = atoiDigits(parts[1]); err != nil || m > 59 {
		return 0, 0, 0, 0, false
	}
	if sec, err = atoiDigits(parts[2]); err != nil || sec > 60 {
		return 0, 0, 0, 0, false
	}
	if hasFrac {
		if frac == "" || len(frac) > 6 {
			return 0, 0, 0, 0, false
		}
		f, err := atoiDigits(frac)
		if err != nil {
			return 0, 0, 0, 0, false
		}
		for i := len(frac); i < 6; i++ {
			f *= 10
		}
		micros = f
	}
	return h, m, sec, micros, true
}

// parseOffset parses a UTC offset as PostgreSQL prints it: +HH, -HH:MM, +HH:MM:SS.
func parseOffset(s string) (seconds int, ok bool) {
	if len(s) < 3 {
		return 0, false
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	} else if s[0] != '+' {
		return 0, false
	}
	parts, n := splitN(s[1:], ':')
	if n > 3 {
		return 0, false
	}
	mult := 3600
	for _, p := range parts[:n] {
		if len(p) != 2 {
			return 0, false
		}
		v, err := atoiDigits(p)
		if err != nil {
			return 0, false
		}
		seconds += v * mult
		mult /= 60
	}
	return sign * seconds, true
}

// atoiDigits parses a non-empty run of ASCII digits (no sign).
func atoiDigits(s string) (int, error) {
	if s == "" {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.Atoi(s)
}

// appendYear appends y with at least four digits, a '-' before negative
// years and a '+' before years of more than four digits (ISO 8601's
// expanded years).
func appendYear(b []byte, y int) []byte {
	switch {
	case y < 0:
		b = append(b, '-')
		y = -y
	case y > 9999:
		b = append(b, '+')
	}
	var digits [20]byte
	s := strconv.AppendInt(digits[:0], int64(y), 10)
	for range 4 - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// append2 appends v (0 to 99) as two digits.
func append2(b []byte, v int) []byte {
	return append(b, byte('0'+v/10), byte('0'+v%10))
}

// splitN cuts s at sep into at most 4 parts and says how many there were
// (more than 4 is reported as 5, with the parts after the fourth dropped).
func splitN(s string, sep byte) (parts [4]string, n int) {
	for {
		i := strings.IndexByte(s, sep)
		if i < 0 {
			break
		}
		if n == len(parts) {
			return parts, n + 1
		}
		parts[n] = s[:i]
		n++
		s = s[i+1:]
	}
	if n == len(parts) {
		return parts, n + 1
	}
	parts[n] = s
	return parts, n + 1
}
