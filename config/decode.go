package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds how many YAML nodes one decode visits. Aliases let a small
// file name the same subtree many times over ("billion laughs"); the schema
// is shallow, so a real configuration is a few hundred nodes.
const maxNodes = 100_000

// maxQuoted bounds how much of an offending value an error message repeats.
const maxQuoted = 64

var durationType = reflect.TypeFor[time.Duration]()

// decoder fills a Go value from a yaml.Node tree by walking it against the
// struct's yaml tags. yaml.v3's own KnownFields mode stops at the first
// unknown key and does not say where it is, so the walk is done here: it
// reports every unknown or duplicate key and every ill-typed value with its
// dotted path, and expands ${ENV} in scalar values before converting them.
type decoder struct {
	lookupEnv func(string) (string, bool)
	probs     *problems
	nodes     int
	exhausted bool
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.probs.add(path, n.Line, "alias to nothing")
			return
		}
		n = n.Alias
	}
	d.nodes++
	if d.nodes > maxNodes {
		if !d.exhausted {
			d.exhausted = true
			d.probs.add(path, n.Line, "document too large (more than %d nodes after expanding aliases)", maxNodes)
		}
		return
	}
	if isNull(n) {
		// An empty value (key:) or ~ leaves the zero value, so the default
		// applies, exactly as if the key were absent.
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if v.Type() == durationType {
		d.scalar(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if i, ok := scalarField(v.Type()); ok && n.Kind == yaml.ScalarNode {
			// The short form of a struct with a ",scalar" field (listen:
			// ":8080" for listen: {address: ":8080"}).
			d.decode(n, v.Field(i), path)
			return
		}
		d.structure(n, v, path)
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), path)
		v.Set(elem)
	case reflect.Slice:
		d.slice(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	default:
		return "a document"
	}
}

// pairs checks that n is a mapping and yields its key/value pairs with
// string keys, reporting non-string, merge and duplicate keys itself.
func (d *decoder) pairs(n *yaml.Node, path string, yield func(key string, keyLine int, val *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		d.probs.add(path, n.Line, "expected a mapping, got %s", kindName(n))
		return false
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.probs.add(path, k.Line, "mapping key must be a string, got %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			// Merges would make "which value wins" depend on key order in
			// another part of the file; explicit keys are easier to review.
			d.probs.add(path, k.Line, "merge keys (<<) are not supported; repeat the keys or use an alias for the whole value")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.probs.add(mapKey(path, k.Value), k.Line, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		yield(k.Value, k.Line, val)
	}
	return true
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	fields := yamlFields(v.Type())
	d.pairs(n, path, func(key string, line int, val *yaml.Node) {
		i, ok := fields[key]
		if !ok {
			msg := "unknown key"
			if s := suggest(key, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.probs.add(mapKey(path, key), line, "%s", msg)
			return
		}
		d.decode(val, v.Field(i), field(path, key))
	})
}

func (d *decoder) slice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.probs.add(path, n.Line, "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), index(path, i))
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if v.Type().Key().Kind() != reflect.String {
		panic("config: map key type " + v.Type().Key().String() + " is not supported")
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	ok := d.pairs(n, path, func(key string, _ int, val *yaml.Node) {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, mapKey(path, key))
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
	})
	if ok {
		v.Set(m)
	}
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.probs.add(path, n.Line, "expected %s, got %s", typeName(v.Type()), kindName(n))
		return
	}
	if tag := n.ShortTag(); strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		d.probs.add(path, n.Line, "custom YAML tag %s is not supported", tag)
		return
	}
	if n.ShortTag() == "!!binary" {
		d.probs.add(path, n.Line, "!!binary values are not supported; use a plain string")
		return
	}
	s, err := expand(n.Value, d.lookupEnv)
	if err != nil {
		d.probs.addErr(path, n.Line, err, "%v", err)
		return
	}
	if v.Kind() != reflect.String && s == "" {
		// "${T:-}" lets an operator leave a typed value to its default.
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if v.Type() == durationType {
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.probs.add(path, n.Line, "invalid duration %s (use e.g. 30s, 5m, 1h30m)", quote(s))
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		// YAML 1.1's yes/no/on/off are refused: "on" meaning true is the
		// kind of surprise a security setting must not have.
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			d.probs.add(path, n.Line, "invalid boolean %s (use true or false)", quote(s))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, 0, v.Type().Bits())
		if err != nil {
			d.probs.add(path, n.Line, "invalid integer %s", quote(s))
			return
		}
		v.SetInt(i)
	default:
		panic("config: field type " + v.Type().String() + " is not supported")
	}
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "a boolean"
	default:
		return "an integer"
	}
}

// quote repeats a user's value in an error, cut short so a pasted blob does
// not flood the log.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "…"
	}
	return strconv.Quote(s)
}

// yamlFields maps a struct's yaml key names to field indexes.
// scalarField is the field of t tagged ",scalar": the one a plain scalar
// value sets when the mapping form is not used.
func scalarField(t reflect.Type) (int, bool) {
	for i := range t.NumField() {
		_, opts, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if opts == "scalar" {
			return i, true
		}
	}
	return 0, false
}

func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

// suggest returns the known key closest to a misspelt one, or "" when none
// is close enough to be a plausible typo.
func suggest(key string, known map[string]int) string {
	if len(key) > 64 {
		return ""
	}
	best, bestDist := "", 3
	for k := range known {
		if dist := editDistance(key, k); dist < bestDist || (dist == bestDist && best != "" && k < best) {
			best, bestDist = k, dist
		}
	}
	if bestDist >= 3 || bestDist*2 >= len(key) {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance between two short
// keys: Levenshtein plus adjacent transpositions, the commonest typo
// (ulr for url).
func editDistance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			rows[i][j] = min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				rows[i][j] = min(rows[i][j], rows[i-2][j-2]+1)
			}
		}
	}
	return rows[len(a)][len(b)]
}
