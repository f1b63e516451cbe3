package policy

import (
	"context"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// step is one compiled expression of a predicate. It calls its successor
// (bound when the program was translated) once per solution and reports
// whether evaluation must stop: a successor asked to, or the frame aborted.
type step func(f *frame) bool

// valueFn computes a term whose variables are all bound. ok is false when
// the term is undefined (a missing record field, a failed lookup); when the
// frame aborted it is false too and f.abort says so.
type valueFn func(f *frame) (v ast.Value, ok bool)

// frame is the state of one Check: the record, variable slots and
// per-record memos. Nothing in it outlives the Check.
type frame struct {
	rec map[string]any
	// whole is the record converted in full, for policies that read it as
	// a document or iterate its keys.
	whole ast.Value
	slots []ast.Value
	// fields memoizes converted record fields by field index; fieldSet says
	// which entries are filled (a missing field is memoized as nil).
	fields   []ast.Value
	fieldSet []bool
	// accs collect comprehension elements and rule values; flags record
	// that a sub-query found a solution.
	accs  [][]*ast.Term
	flags []bool
	rules []ruleMemo
	// out collects the values of the program's output variable.
	out   []*ast.Term
	abort bool

	// The rest outlives a record: comprehension values by content (see
	// byContent) and, per field, the last string converted, since a list
	// repeats a few owners.
	contents []contentCache
	key      []ast.Value
	lastStr  []string
	lastVal  []ast.Value
}

// ruleMemo is a support rule's value for this record.
type ruleMemo struct {
	done    bool
	defined bool
	value   ast.Value
}

func newFrame(p *program) *frame {
	return &frame{
		slots:    make([]ast.Value, p.nslots),
		fields:   make([]ast.Value, len(p.fields)),
		fieldSet: make([]bool, len(p.fields)),
		accs:     make([][]*ast.Term, p.naccs),
		flags:    make([]bool, p.nflags),
		rules:    make([]ruleMemo, p.nrules),
		contents: make([]contentCache, p.ncontent),
		lastStr:  make([]string, len(p.fields)),
		lastVal:  make([]ast.Value, len(p.fields)),
	}
}

// reset readies a pooled frame for another record. Slots need no clearing:
// every slot is written before it is read.
func (f *frame) reset(rec map[string]any) {
	f.rec = rec
	f.whole = nil
	clear(f.fields)
	clear(f.fieldSet)
	for i := range f.accs {
		f.accs[i] = f.accs[i][:0]
	}
	clear(f.flags)
	clear(f.rules)
	f.abort = false
}

// termOf wraps a value for an accumulator. Booleans, the value of most
// rule bodies, take OPA's interned terms, which nothing modifies; that
// spares an allocation per record and rule.
func termOf(v ast.Value) *ast.Term {
	if b, ok := v.(ast.Boolean); ok {
		return ast.InternedTerm(bool(b))
	}
	return ast.NewTerm(v)
}

// fail is what a step returns when its expression is undefined: keep
// backtracking, unless the frame aborted, in which case stop everything.
func (f *frame) fail() bool { return f.abort }

// field returns record field i as a Rego value, converted the way the
// engine converts a whole record (ast.InterfaceToValue), so comparisons
// agree with per-record evaluation exactly.
func (f *frame) field(p *program, i int) (ast.Value, bool) {
	if f.fieldSet[i] {
		return f.fields[i], f.fields[i] != nil
	}
	f.fieldSet[i] = true
	raw, ok := f.rec[p.fields[i]]
	if !ok {
		return nil, false
	}
	if s, ok := raw.(string); ok {
		if f.lastVal[i] == nil || f.lastStr[i] != s {
			f.lastStr[i], f.lastVal[i] = s, ast.String(s)
		}
		f.fields[i] = f.lastVal[i]
		return f.fields[i], true
	}
	v, err := goValue(raw)
	if err != nil {
		f.abort = true
		return nil, false
	}
	f.fields[i] = v
	return v, true
}

// record returns the whole record as a Rego value.
func (f *frame) record() (ast.Value, bool) {
	if f.whole == nil {
		v, err := ast.InterfaceToValue(f.rec)
		if err != nil {
			f.abort = true
			return nil, false
		}
		f.whole = v
	}
	return f.whole, true
}

// goValue converts one record value. Scalars that JSON decoding produces
// take a fast path with the same result as ast.InterfaceToValue; everything
// else goes through it.
func goValue(x any) (ast.Value, error) {
	switch x := x.(type) {
	case string:
		return ast.String(x), nil
	case bool:
		return ast.Boolean(x), nil
	case nil:
		return ast.Null{}, nil
	case json.Number:
		return ast.Number(x), nil
	}
	return ast.InterfaceToValue(x)
}

// lookup is one step of a ref into a value: an object key, an array index
// or set membership, as OPA resolves refs into ground documents.
func lookup(v ast.Value, key ast.Value) (ast.Value, bool) {
	var t *ast.Term
	switch v := v.(type) {
	case ast.Object:
		t = v.Get(ast.NewTerm(key))
	case *ast.Array:
		t = v.Get(ast.NewTerm(key))
	case ast.Set:
		k := ast.NewTerm(key)
		if v.Contains(k) {
			t = k
		}
	}
	if t == nil {
		return nil, false
	}
	return t.Value, true
}

// each calls fn with every key and value of a collection (array index and
// element, set element twice, object key and value) until fn says stop.
// Non-collections have no elements.
func each(v ast.Value, fn func(k, v ast.Value) bool) bool {
	switch v := v.(type) {
	case ast.Object:
		return v.Until(func(k, x *ast.Term) bool { return fn(k.Value, x.Value) })
	case *ast.Array:
		for i := range v.Len() {
			if fn(ast.Number(strconv.Itoa(i)), v.Elem(i).Value) {
				return true
			}
		}
	case ast.Set:
		return v.Until(func(x *ast.Term) bool { return fn(x.Value, x.Value) })
	}
	return false
}

// callBuiltin runs an OPA builtin on ground operands: the same code the
// evaluator runs, so results agree by construction. ok is false when the
// builtin produced no value; an error aborts the frame, and the record is
// then evaluated by the engine, which reports the error exactly.
func callBuiltin(f *frame, fn topdown.BuiltinFunc, args []ast.Value) (ast.Value, bool) {
	ops := make([]*ast.Term, len(args))
	for i, a := range args {
		ops[i] = ast.NewTerm(a)
	}
	var out ast.Value
	err := fn(topdown.BuiltinContext{Context: context.Background()}, ops, func(t *ast.Term) error {
		out = t.Value
		return nil
	})
	if err != nil {
		f.abort = true
		return nil, false
	}
	return out, out != nil
}

// nativeBuiltins are the builtins record rules use most, written out with
// the same logic as OPA's implementations (v1/topdown comparison.go and
// aggregates.go) so that the hot path allocates nothing. Their results
// are compared with OPA's in TestNativeBuiltinsAgreeWithOPA.
var nativeBuiltins = map[string]builtinCall{
	"equal": func(_ *frame, a []ast.Value) (ast.Value, bool) { return ast.Boolean(ast.ValueEqual(a[0], a[1])), true },
	"neq":   func(_ *frame, a []ast.Value) (ast.Value, bool) { return ast.Boolean(!ast.ValueEqual(a[0], a[1])), true },
	"lt":    func(_ *frame, a []ast.Value) (ast.Value, bool) { return ast.Boolean(a[0].Compare(a[1]) < 0), true },
	"lte":   func(_ *frame, a []ast.Value) (ast.Value, bool) { return ast.Boolean(a[0].Compare(a[1]) <= 0), true },
	"gt":    func(_ *frame, a []ast.Value) (ast.Value, bool) { return ast.Boolean(a[0].Compare(a[1]) > 0), true },
	"gte":   func(_ *frame, a []ast.Value) (ast.Value, bool) { return ast.Boolean(a[0].Compare(a[1]) >= 0), true },
	"internal.member_2": func(_ *frame, a []ast.Value) (ast.Value, bool) {
		x := ast.NewTerm(a[0])
		switch c := a[1].(type) {
		case ast.Set:
			return ast.Boolean(c.Contains(x)), true
		case *ast.Array:
			return ast.Boolean(c.Until(x.Equal)), true
		case ast.Object:
			return ast.Boolean(c.Until(func(_, v *ast.Term) bool { return x.Equal(v) })), true
		}
		return ast.Boolean(false), true
	},
	"count": func(f *frame, a []ast.Value) (ast.Value, bool) {
		switch c := a[0].(type) {
		case *ast.Array:
			return ast.InternedTerm(c.Len()).Value, true
		case ast.Object:
			return ast.InternedTerm(c.Len()).Value, true
		case ast.Set:
			return ast.InternedTerm(c.Len()).Value, true
		case ast.String:
			return ast.InternedTerm(utf8.RuneCountInString(string(c))).Value, true
		}
		// A type error: the engine decides this record.
		f.abort = true
		return nil, false
	},
}
