package emulator

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// phpVal is a value of PHP's $_GET: a string or an array (ordered map).
// The emulators parse their query strings as PHP does, so that a proxy
// rewrite that PHP would read differently from crmgate shows up in tests.
// This is deliberately not the proxy's parser (proxy/profile): the test
// double must not share the code it checks.
type phpVal struct {
	str   string
	isArr bool
	keys  []string
	kids  map[string]*phpVal
	next  int
}

// PHP's defaults: max_input_vars and max_input_nesting_level.
const (
	phpMaxInputVars = 1000
	phpMaxNesting   = 64
)

// parsePHPQuery reads a raw query as PHP's parse_str does: names decoded,
// leading spaces dropped, cut at NUL, "." and " " in the base name as "_",
// a later duplicate replacing an earlier one (a scalar replacing an
// array), "[]" appending, and variables past max_input_vars ignored.
func parsePHPQuery(raw string) *phpVal {
	root := &phpVal{isArr: true}
	n := 0
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		if n++; n > phpMaxInputVars {
			break
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			continue
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			continue
		}
		name = strings.TrimLeft(name, " ")
		if i := strings.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		base, keys := name, []string(nil)
		if open := strings.IndexByte(name, '['); open > 0 && strings.Contains(name[open:], "]") {
			base = name[:open]
			rest := name[open:]
			for len(rest) > 0 && rest[0] == '[' {
				end := strings.IndexByte(rest, ']')
				if end < 0 {
					break
				}
				keys = append(keys, rest[1:end])
				rest = rest[end+1:]
			}
		}
		base = strings.Map(func(r rune) rune {
			if r == '.' || r == ' ' || r == '[' {
				return '_'
			}
			return r
		}, base)
		if base == "" || len(keys) >= phpMaxNesting {
			continue
		}
		root.set(append([]string{base}, keys...), value)
	}
	return root
}

func (v *phpVal) set(keys []string, value string) {
	k := keys[0]
	if k == "" {
		k = strconv.Itoa(v.next)
	}
	if i, err := strconv.Atoi(k); err == nil && i >= v.next {
		v.next = i + 1
	}
	if v.kids == nil {
		v.kids = map[string]*phpVal{}
	}
	kid, ok := v.kids[k]
	if !ok {
		kid = &phpVal{}
		v.kids[k] = kid
		v.keys = append(v.keys, k)
	}
	if len(keys) == 1 {
		*kid = phpVal{str: value}
		return
	}
	if !kid.isArr {
		*kid = phpVal{isArr: true}
	}
	kid.set(keys[1:], value)
}

// get returns the member at key, or nil.
func (v *phpVal) get(key string) *phpVal {
	if v == nil || !v.isArr {
		return nil
	}
	return v.kids[key]
}

// items are an array's values in PHP order (insertion order).
func (v *phpVal) items() []*phpVal {
	if v == nil || !v.isArr {
		return nil
	}
	out := make([]*phpVal, 0, len(v.keys))
	for _, k := range v.keys {
		out = append(out, v.kids[k])
	}
	return out
}

// sortedKeys is for deterministic iteration where PHP order does not matter.
func (v *phpVal) sortedKeys() []string {
	keys := append([]string(nil), v.keys...)
	sort.Strings(keys)
	return keys
}
