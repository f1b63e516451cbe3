package policy

import "github.com/open-policy-agent/opa/v1/ast"

// A closed comprehension that reads nothing but named record fields is a
// function of those fields' values: the reference policy's set of a
// record's owners is rebuilt for every record, though a list repeats a
// handful of owners. Such a comprehension keeps its last few values in the
// frame, keyed by the values of the fields it reads, and a record with the
// same values reuses the set instead of allocating it again.

// contentWays is how many values one comprehension remembers.
const contentWays = 8

// fieldDeps collects what a comprehension being compiled reads.
type fieldDeps struct {
	fields []int
	// opaque: it reads something other than named record fields (the
	// whole record, a support rule, an enclosing query's variable).
	opaque bool
}

func (d *fieldDeps) add(i int) {
	for _, j := range d.fields {
		if j == i {
			return
		}
	}
	d.fields = append(d.fields, i)
}

func (d *fieldDeps) merge(o *fieldDeps) {
	d.opaque = d.opaque || o.opaque
	for _, i := range o.fields {
		d.add(i)
	}
}

// readsField tells every comprehension being compiled that it reads field i.
func (t *translator) readsField(i int) {
	for _, d := range t.deps {
		d.add(i)
	}
}

// readsOpaque tells every comprehension being compiled that it depends on
// more than named fields.
func (t *translator) readsOpaque() {
	for _, d := range t.deps {
		d.opaque = true
	}
}

// contentEntry is one remembered value of a comprehension.
type contentEntry struct {
	key     []ast.Value // the fields' values; nil for a missing field
	value   ast.Value
	defined bool
}

// contentCache is one comprehension's remembered values in a frame.
type contentCache struct {
	entries []contentEntry
	next    int // the entry replaced next, round robin
}

// sameKey compares field values by their exact spelling: 1 and 1.0 are
// equal in Rego but a builtin may still tell them apart, so only values
// that are identical match. Composite values never match.
func sameKey(a, b ast.Value) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case ast.String:
		b, ok := b.(ast.String)
		return ok && a == b
	case ast.Number:
		b, ok := b.(ast.Number)
		return ok && a == b
	case ast.Boolean:
		b, ok := b.(ast.Boolean)
		return ok && a == b
	case ast.Null:
		_, ok := b.(ast.Null)
		return ok
	}
	return false
}

// contentKey fills key with the current record's values of fields. ok is
// false when a value cannot be a key (a composite) or the frame aborted.
func (f *frame) contentKey(p *program, fields []int, key []ast.Value) bool {
	for j, i := range fields {
		v, _ := f.field(p, i)
		if f.abort {
			return false
		}
		switch v.(type) {
		case nil, ast.String, ast.Number, ast.Boolean, ast.Null:
		default:
			return false
		}
		key[j] = v
	}
	return true
}

// byContent wraps a comprehension's per-record evaluation fn with the
// frame's content cache number id, keyed by fields.
func byContent(p *program, id int, fields []int, fn valueFn) valueFn {
	return func(f *frame) (ast.Value, bool) {
		// The key is built in scratch space, and copied before fn runs,
		// since a comprehension inside fn uses the same space.
		key := f.scratchKey(len(fields))
		if !f.contentKey(p, fields, key) {
			if f.abort {
				return nil, false
			}
			return fn(f)
		}
		c := &f.contents[id]
	entries:
		for _, e := range c.entries {
			for j := range key {
				if !sameKey(e.key[j], key[j]) {
					continue entries
				}
			}
			return e.value, e.defined
		}
		e := contentEntry{key: append([]ast.Value(nil), key...)}
		v, ok := fn(f)
		if f.abort {
			return nil, false
		}
		e.value, e.defined = v, ok
		if len(c.entries) < contentWays {
			c.entries = append(c.entries, e)
		} else {
			c.entries[c.next] = e
			c.next = (c.next + 1) % contentWays
		}
		return v, ok
	}
}

// scratchKey returns n reusable key slots.
func (f *frame) scratchKey(n int) []ast.Value {
	if cap(f.key) < n {
		f.key = make([]ast.Value, n)
	}
	return f.key[:n]
}
