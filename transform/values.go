package transform

import (
	"encoding/json"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/dop251/goja"
)

// jsReady returns a copy of v (a row value as the bus decoded it) that a
// JavaScript engine reads without loss: a number becomes a JS number only when
// float64 holds the same decimal value, otherwise it becomes its decimal
// string. Bus decoding keeps numbers as json.Number, so a bigint id such as
// 9007199254740993 or a numeric(30,10) reaches the script as a string instead
// of silently rounding.
func jsReady(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsReady(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsReady(e)
		}
		return out
	case json.Number:
		return jsNumber(string(x))
	case int64:
		if x > maxExactInt || x < -maxExactInt {
			return strconv.FormatInt(x, 10)
		}
		return x
	case int:
		return jsReady(int64(x))
	case int32:
		return x
	case uint64:
		if x > maxExactInt {
			return strconv.FormatUint(x, 10)
		}
		return x
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	}
	return v
}

// maxExactInt is the largest integer every float64 below it holds exactly (2^53).
const maxExactInt = 1 << 53

// jsNumber converts a JSON number literal: a json.Number when it is exact as
// a float64, else the literal as a string.
func jsNumber(s string) any {
	if len(s) > 0 && len(s) <= 15 && !strings.ContainsAny(s, ".eE") {
		return json.Number(s) // at most 15 digits: always exact
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return s
	}
	want, ok := new(big.Rat).SetString(s)
	if !ok {
		return s
	}
	got, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	if !ok || want.Cmp(got) != 0 {
		return s
	}
	return json.Number(s)
}

// toJS builds the JavaScript value of a row value directly in vm (cheaper
// than JSON.parse of its encoding), with jsReady's rules for numbers. Object
// keys are set in sorted order so documents serialise the same way every time.
func toJS(vm *goja.Runtime, v any) goja.Value {
	switch x := v.(type) {
	case nil:
		return goja.Null()
	case map[string]any:
		obj := vm.NewObject()
		for _, k := range slices.Sorted(maps.Keys(x)) {
			_ = obj.Set(k, toJS(vm, x[k]))
		}
		return obj
	case []any:
		vals := make([]any, len(x))
		for i, e := range x {
			vals[i] = toJS(vm, e)
		}
		return vm.NewArray(vals...)
	case json.Number:
		switch n := jsNumber(string(x)).(type) {
		case json.Number:
			if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				return vm.ToValue(i)
			}
			f, _ := strconv.ParseFloat(string(n), 64)
			return vm.ToValue(f)
		default:
			return vm.ToValue(n)
		}
	case string, bool, float64, int64, int32, int, uint64:
		return vm.ToValue(jsReady(x))
	}
	return vm.ToValue(jsReady(v))
}
