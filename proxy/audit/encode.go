package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"weak"

	"github.com/crmgate/crmgate/policy"
)

// The appenders in this file write the decision log's JSON by hand, without
// reflection: on a two-core box the writer goroutine competes with request
// handling, and reflected encoding was most of its cost. Their output is
// byte for byte what encoding/json's Marshal writes for the same values
// (FuzzAppendInputMatchesEncodingJSON holds them to it), so a line does not
// depend on which path produced it.
//
// Mask paths are applied while writing: a member a path ends at is never
// written, so there is no second pass over the serialised input. Anything
// the appenders are not certain to write exactly as encoding/json would
// (types they do not know, map keys that are not valid UTF-8 and could
// collide once repaired, more mask paths than fit in a mask word) makes
// them return errSlowPath, and the builder falls back to encoding/json and
// the streaming eraser, which fail closed.

// errSlowPath means "not handled here": the caller takes the general path.
var errSlowPath = errors.New("value needs the general encoder")

// maxFastPaths is how many mask paths fit in the candidate bit set.
const maxFastPaths = 64

// pathSet is a set of mask path indices.
type pathSet uint64

// inputWriter appends a *policy.Input with mask paths erased. paths is the
// builder's parsed list; found collects the paths that were erased.
type inputWriter struct {
	paths    []maskPath
	found    pathSet
	keys     []string // stack of map keys being written (sortedKeys)
	subjects map[weak.Pointer[policy.Subject]]cachedSubject
}

// member decides what happens to the member named key of a value reached
// with candidate paths cands at depth: erase it (some path ends here), or
// write it, descending with the returned candidates.
func (w *inputWriter) member(cands pathSet, depth int, key string) (next pathSet, erase bool) {
	for c := cands; c != 0; c &= c - 1 {
		i := trailingZeros(c)
		p := w.paths[i].parts
		if p[depth] != key {
			continue
		}
		if len(p) == depth+1 {
			w.found |= 1 << i
			erase = true
			continue
		}
		next |= 1 << i
	}
	return next, erase
}

func trailingZeros(s pathSet) int { return bits.TrailingZeros64(uint64(s)) }

// all is the candidate set of every path.
func (w *inputWriter) all() pathSet {
	if len(w.paths) == maxFastPaths {
		return ^pathSet(0)
	}
	return pathSet(1)<<len(w.paths) - 1
}

// object tracks the separator of an object being written.
type object struct {
	n int
}

// key writes the member name (with a comma before all but the first).
func (o *object) key(b []byte, name string) []byte {
	if o.n > 0 {
		b = append(b, ',')
	}
	o.n++
	b = appendString(b, name)
	return append(b, ':')
}

// appendInput writes in with w's mask paths erased.
func (w *inputWriter) appendInput(b []byte, in *policy.Input) ([]byte, error) {
	cands := w.all()
	var o object
	var err error
	b = append(b, '{')
	if sub, erase := w.member(cands, 0, "subject"); !erase {
		b = o.key(b, "subject")
		if b, err = w.subject(b, in.Subject, sub); err != nil {
			return nil, err
		}
	}
	if sub, erase := w.member(cands, 0, "request"); !erase {
		b = o.key(b, "request")
		if b, err = w.appendRequest(b, &in.Request, sub, 1); err != nil {
			return nil, err
		}
	}
	if sub, erase := w.member(cands, 0, "resource"); !erase {
		b = o.key(b, "resource")
		if b, err = w.appendResource(b, &in.Resource, sub, 1); err != nil {
			return nil, err
		}
	}
	if len(in.Record) > 0 {
		if sub, erase := w.member(cands, 0, "record"); !erase {
			b = o.key(b, "record")
			if b, err = w.appendMap(b, in.Record, sub, 1); err != nil {
				return nil, err
			}
		}
	}
	return append(b, '}'), nil
}

// subject writes s, from the cache when s was written before. A Subject
// is not modified once built (see Event), and the mask paths are fixed per
// builder, so its masked form is the same for every event of the session
// or token; the weak key lets a signed-out subject's entry be dropped, and
// cannot be confused with a new Subject at the same address.
func (w *inputWriter) subject(b []byte, s *policy.Subject, cands pathSet) ([]byte, error) {
	if s == nil {
		return append(b, "null"...), nil
	}
	key := weak.Make(s)
	if c, ok := w.subjects[key]; ok {
		w.found |= c.found
		return append(b, c.json...), nil
	}
	start, outer := len(b), w.found
	w.found = 0
	b, err := w.appendSubject(b, s, cands, 1)
	if err != nil {
		return nil, err
	}
	if w.subjects == nil {
		w.subjects = make(map[weak.Pointer[policy.Subject]]cachedSubject)
	}
	if len(w.subjects) >= maxCachedSubjects {
		w.sweepSubjects()
	}
	w.subjects[key] = cachedSubject{json: bytes.Clone(b[start:]), found: w.found}
	w.found |= outer
	return b, nil
}

// maxCachedSubjects bounds the subject cache; beyond it, entries of
// collected subjects go, and if that is not enough, all do.
const maxCachedSubjects = 4096

func (w *inputWriter) sweepSubjects() {
	maps.DeleteFunc(w.subjects, func(k weak.Pointer[policy.Subject], _ cachedSubject) bool {
		return k.Value() == nil
	})
	if len(w.subjects) >= maxCachedSubjects*3/4 {
		clear(w.subjects)
	}
}

// cachedSubject is a subject's masked JSON and the mask paths erased from
// it.
type cachedSubject struct {
	json  []byte
	found pathSet
}

func (w *inputWriter) appendSubject(b []byte, s *policy.Subject, cands pathSet, depth int) ([]byte, error) {
	if s == nil {
		return append(b, "null"...), nil
	}
	var o object
	var err error
	b = append(b, '{')
	b = w.stringField(b, &o, cands, depth, "id", s.ID, false)
	b = w.stringField(b, &o, cands, depth, "email", s.Email, true)
	b = w.stringField(b, &o, cands, depth, "name", s.Name, true)
	b = w.stringsField(b, &o, cands, depth, "roles", s.Roles, false)
	b = w.stringsField(b, &o, cands, depth, "groups", s.Groups, false)
	b = w.stringsField(b, &o, cands, depth, "teams", s.Teams, false)
	if sub, erase := w.member(cands, depth, "attributes"); !erase {
		b = o.key(b, "attributes")
		if b, err = w.appendMap(b, s.Attributes, sub, depth+1); err != nil {
			return nil, err
		}
	}
	if _, erase := w.member(cands, depth, "mfa"); !erase {
		b = o.key(b, "mfa")
		b = strconv.AppendBool(b, s.MFA)
	}
	b = w.stringsField(b, &o, cands, depth, "amr", s.AMR, false)
	b = w.stringField(b, &o, cands, depth, "acr", s.ACR, true)
	if s.AuthTime != 0 {
		if _, erase := w.member(cands, depth, "auth_time"); !erase {
			b = o.key(b, "auth_time")
			b = strconv.AppendInt(b, s.AuthTime, 10)
		}
	}
	b = w.stringField(b, &o, cands, depth, "auth", s.Auth, false)
	return append(b, '}'), nil
}

func (w *inputWriter) appendRequest(b []byte, r *policy.Request, cands pathSet, depth int) ([]byte, error) {
	var o object
	b = append(b, '{')
	b = w.stringField(b, &o, cands, depth, "id", r.ID, false)
	b = w.stringField(b, &o, cands, depth, "method", r.Method, false)
	b = w.stringField(b, &o, cands, depth, "path", r.Path, false)
	if len(r.Query) > 0 {
		if sub, erase := w.member(cands, depth, "query"); !erase {
			b = o.key(b, "query")
			var err error
			if b, err = w.appendQuery(b, r.Query, sub, depth+1); err != nil {
				return nil, err
			}
		}
	}
	b = w.stringField(b, &o, cands, depth, "remote_ip", r.RemoteIP, true)
	if _, erase := w.member(cands, depth, "time"); !erase {
		b = o.key(b, "time")
		var err error
		if b, err = appendTime(b, r.Time); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func (w *inputWriter) appendResource(b []byte, r *policy.Resource, cands pathSet, depth int) ([]byte, error) {
	var o object
	b = append(b, '{')
	b = w.stringField(b, &o, cands, depth, "module", r.Module, false)
	b = w.stringField(b, &o, cands, depth, "id", r.ID, true)
	b = w.stringField(b, &o, cands, depth, "action", r.Action, false)
	b = w.stringsField(b, &o, cands, depth, "fields", r.Fields, true)
	if len(r.Body) > 0 {
		if sub, erase := w.member(cands, depth, "body"); !erase {
			b = o.key(b, "body")
			var err error
			if b, err = w.appendMap(b, r.Body, sub, depth+1); err != nil {
				return nil, err
			}
		}
	}
	return append(b, '}'), nil
}

// stringField writes a string member unless it is erased or (omitEmpty)
// empty.
func (w *inputWriter) stringField(b []byte, o *object, cands pathSet, depth int, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	if _, erase := w.member(cands, depth, name); erase {
		return b
	}
	b = o.key(b, name)
	return appendString(b, v)
}

// stringsField writes a []string member; a nil slice is null unless
// omitEmpty, which drops empty slices as encoding/json does.
func (w *inputWriter) stringsField(b []byte, o *object, cands pathSet, depth int, name string, v []string, omitEmpty bool) []byte {
	if omitEmpty && len(v) == 0 {
		return b
	}
	sub, erase := w.member(cands, depth, name)
	if erase {
		return b
	}
	b = o.key(b, name)
	return w.appendStrings(b, v, sub, depth+1)
}

func (w *inputWriter) appendStrings(b []byte, v []string, cands pathSet, depth int) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	first := true
	for i, s := range v {
		if cands != 0 {
			if _, erase := w.member(cands, depth, indexKey(i)); erase {
				continue
			}
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, s)
	}
	return append(b, ']')
}

func (w *inputWriter) appendQuery(b []byte, q map[string][]string, cands pathSet, depth int) ([]byte, error) {
	keys, base := sortedKeys(w, q)
	defer w.release(base)
	if keys == nil {
		return nil, errSlowPath
	}
	var o object
	b = append(b, '{')
	for _, k := range keys {
		sub, erase := w.member(cands, depth, k)
		if erase {
			continue
		}
		b = o.key(b, k)
		b = w.appendStrings(b, q[k], sub, depth+1)
	}
	return append(b, '}'), nil
}

func (w *inputWriter) appendMap(b []byte, m map[string]any, cands pathSet, depth int) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	keys, base := sortedKeys(w, m)
	defer w.release(base)
	if keys == nil && len(m) > 0 {
		return nil, errSlowPath
	}
	var o object
	var err error
	b = append(b, '{')
	for _, k := range keys {
		sub, erase := w.member(cands, depth, k)
		if erase {
			continue
		}
		b = o.key(b, k)
		if b, err = w.appendAny(b, m[k], sub, depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendAny writes the values JSON decoding and identity claims produce;
// anything else is errSlowPath.
func (w *inputWriter) appendAny(b []byte, v any, cands pathSet, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case json.Number:
		return appendNumber(b, v)
	case float64:
		return appendFloat(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case map[string]any:
		return w.appendMap(b, v, cands, depth)
	case []string:
		return w.appendStrings(b, v, cands, depth), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		var err error
		b = append(b, '[')
		first := true
		for i, e := range v {
			var sub pathSet
			if cands != 0 {
				var erase bool
				if sub, erase = w.member(cands, depth, indexKey(i)); erase {
					continue
				}
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			if b, err = w.appendAny(b, e, sub, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	return nil, errSlowPath
}

// smallIndexes spares the allocation of strconv.Itoa for the array indexes
// mask paths are likely to name.
var smallIndexes = func() [64]string {
	var a [64]string
	for i := range a {
		a[i] = strconv.Itoa(i)
	}
	return a
}()

func indexKey(i int) string {
	if i < len(smallIndexes) {
		return smallIndexes[i]
	}
	return strconv.Itoa(i)
}

// sortedKeys returns m's keys in encoding/json's order, or nil when a key is
// not valid UTF-8: repaired, two keys could become one JSON name, and only
// the general path refuses that safely. The keys live on w.keys, a stack
// shared by the nested maps being written: release(base) pops them.
func sortedKeys[V any](w *inputWriter, m map[string]V) (keys []string, base int) {
	base = len(w.keys)
	for k := range m {
		if !utf8.ValidString(k) {
			w.keys = w.keys[:base]
			return nil, base
		}
		w.keys = append(w.keys, k)
	}
	keys = w.keys[base:]
	slices.Sort(keys)
	return keys, base
}

// release pops the keys sortedKeys pushed. Slices of an outer map taken
// before the stack grew still point at the old array, which stays valid.
func (w *inputWriter) release(base int) {
	clear(w.keys[base:])
	w.keys = w.keys[:base]
}

// appendDecision writes a policy.Decision as encoding/json does.
func appendDecision(b []byte, d *policy.Decision) []byte {
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, d.Allow)
	b = append(b, `,"require_mfa":`...)
	b = strconv.AppendBool(b, d.RequireMFA)
	b = appendStringsMember(b, "reasons", d.Reasons)
	b = appendStringsMember(b, "hidden_fields", d.HiddenFields)
	if len(d.MaskedFields) > 0 {
		b = append(b, `,"masked_fields":`...)
		b = appendStringMap(b, d.MaskedFields)
	}
	b = appendStringsMember(b, "visible_fields", d.VisibleFields)
	if d.VisibleDefined {
		b = append(b, `,"visible_defined":true`...)
	}
	b = appendStringsMember(b, "readonly_fields", d.ReadonlyFields)
	if d.ReadBudget != nil {
		b = append(b, `,"read_budget":{"records":`...)
		b = strconv.AppendInt(b, d.ReadBudget.Records, 10)
		b = append(b, `,"per":`...)
		b = strconv.AppendInt(b, int64(d.ReadBudget.Per), 10)
		b = append(b, '}')
	}
	b = append(b, `,"revision":`...)
	b = appendString(b, d.Revision)
	return append(b, '}')
}

// appendStringsMember writes ,"name":[...] unless v is empty (omitempty).
func appendStringsMember(b []byte, name string, v []string) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(b, ',')
	b = appendString(b, name)
	b = append(b, ':')
	return appendStringArray(b, v)
}

func appendStringArray(b []byte, v []string) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendStringMap writes m with sorted keys. Keys that are not valid UTF-8
// are repaired as encoding/json repairs them; for maps the caller owns
// (labels, masked fields) a collision only repeats a name, it cannot let a
// masked value through.
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var arr [16]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendTime writes t as time.Time's MarshalJSON does; the times it refuses
// go to the general path, which reports them.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, errSlowPath
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return nil, errSlowPath
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendFloat writes f as encoding/json does (shortest form, exponent only
// for very small or large magnitudes); NaN and infinities are not JSON.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, errSlowPath
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendNumber writes a json.Number verbatim if it is a JSON number; "" is
// 0, as in encoding/json.
func appendNumber(b []byte, n json.Number) ([]byte, error) {
	if n == "" {
		return append(b, '0'), nil
	}
	if !validNumber(string(n)) {
		return nil, errSlowPath
	}
	return append(b, n...), nil
}

// validNumber implements the JSON number grammar (RFC 8259 §6).
func validNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && isDigit(s[0]) {
			s = s[1:]
		}
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && isDigit(s[1]) {
		s = s[2:]
		for len(s) > 0 && isDigit(s[0]) {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && isDigit(s[0]) {
			s = s[1:]
		}
	}
	return s == ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string exactly as encoding/json does:
// <, > and & escaped for HTML, U+2028 and U+2029 escaped, invalid UTF-8
// replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
