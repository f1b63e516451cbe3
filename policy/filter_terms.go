package policy

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"
)

// compileValues compiles terms that must all be bound.
func (t *translator) compileValues(terms []*ast.Term, sc *scope) ([]valueFn, error) {
	out := make([]valueFn, len(terms))
	for i, x := range terms {
		v, err := t.compileValue(x, sc)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// compileValue compiles a term whose variables are all bound (generators
// have been extracted already).
func (t *translator) compileValue(term *ast.Term, sc *scope) (valueFn, error) {
	if ast.IsConstant(term.Value) {
		c := term.Value
		return func(*frame) (ast.Value, bool) { return c, true }, nil
	}
	switch x := term.Value.(type) {
	case ast.Var:
		slot, ok := sc.vars[x]
		if !ok {
			return nil, untranslatable("unbound variable %s", x)
		}
		return func(f *frame) (ast.Value, bool) { return f.slots[slot], true }, nil
	case ast.Ref:
		return t.compileRef(x, sc)
	case *ast.Array:
		elems, err := t.compileValues(arrayTerms(x), sc)
		if err != nil {
			return nil, err
		}
		return func(f *frame) (ast.Value, bool) {
			ts := make([]*ast.Term, len(elems))
			for i, e := range elems {
				v, ok := e(f)
				if !ok {
					return nil, false
				}
				ts[i] = ast.NewTerm(v)
			}
			return ast.NewArray(ts...), true
		}, nil
	case ast.Set:
		elems, err := t.compileValues(x.Slice(), sc)
		if err != nil {
			return nil, err
		}
		return func(f *frame) (ast.Value, bool) {
			s := ast.NewSet()
			for _, e := range elems {
				v, ok := e(f)
				if !ok {
					return nil, false
				}
				s.Add(ast.NewTerm(v))
			}
			return s, true
		}, nil
	case ast.Object:
		var keys, vals []valueFn
		err := x.Iter(func(k, v *ast.Term) error {
			kf, err := t.compileValue(k, sc)
			if err != nil {
				return err
			}
			vf, err := t.compileValue(v, sc)
			if err != nil {
				return err
			}
			keys, vals = append(keys, kf), append(vals, vf)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return func(f *frame) (ast.Value, bool) {
			o := ast.NewObject()
			for i := range keys {
				k, ok := keys[i](f)
				if !ok {
					return nil, false
				}
				v, ok := vals[i](f)
				if !ok {
					return nil, false
				}
				o.Insert(ast.NewTerm(k), ast.NewTerm(v))
			}
			return o, true
		}, nil
	case ast.Call:
		return t.compileCall(x[0], x[1:], sc)
	case *ast.SetComprehension:
		return t.closedOnce(term, sc, func() (valueFn, error) {
			return t.compileCollect(x.Body, x.Term, sc, func(ts []*ast.Term) (ast.Value, bool) {
				return ast.NewSet(ts...), true
			})
		})
	case *ast.ObjectComprehension:
		return t.closedOnce(term, sc, func() (valueFn, error) {
			pair := ast.ArrayTerm(x.Key, x.Value)
			return t.compileCollect(x.Body, pair, sc, buildObject)
		})
	}
	// Array comprehensions are ordered, and the order of a disjunction of
	// residual queries is not OPA's: not translated.
	return nil, untranslatable("term %s", term)
}

// closedOnce compiles a comprehension that reads no variable of the
// enclosing query once per translation and evaluates it once per record.
// Partial evaluation repeats such comprehensions in every body it inlines a
// rule into (the record's owners, once per support rule), differing only in
// variable names; they are recognised by their text with variables renamed
// in order of appearance.
func (t *translator) closedOnce(term *ast.Term, sc *scope, compile func() (valueFn, error)) (valueFn, error) {
	closed := true
	names := map[ast.Var]string{}
	renamed, err := ast.TransformVars(term.Copy(), func(v ast.Var) (ast.Value, error) {
		if sc.bound(v) {
			closed = false
		}
		if v.Equal(ast.InputRootDocument.Value) || v.Equal(ast.DefaultRootDocument.Value) {
			return v, nil
		}
		n, ok := names[v]
		if !ok {
			n = "v" + strconv.Itoa(len(names))
			names[v] = n
		}
		return ast.Var(n), nil
	})
	if err != nil || !closed {
		return compile()
	}
	key := fmt.Sprint(renamed)
	if fn, ok := t.closed[key]; ok {
		for _, o := range t.deps {
			o.merge(t.closedDeps[key])
		}
		return fn, nil
	}
	deps := &fieldDeps{}
	t.deps = append(t.deps, deps)
	fn, err := compile()
	t.deps = t.deps[:len(t.deps)-1]
	if err != nil {
		return nil, err
	}
	for _, o := range t.deps {
		o.merge(deps)
	}
	if !deps.opaque {
		fn = byContent(t.p, t.p.ncontent, slices.Clone(deps.fields), fn)
		t.p.ncontent++
	}
	memo := t.p.nrules
	t.p.nrules++
	cached := func(f *frame) (ast.Value, bool) {
		m := &f.rules[memo]
		if m.done {
			return m.value, m.defined
		}
		v, ok := fn(f)
		if f.abort {
			return nil, false
		}
		m.done, m.value, m.defined = true, v, ok
		return v, ok
	}
	t.closed[key] = cached
	t.closedDeps[key] = deps
	return cached, nil
}

func arrayTerms(a *ast.Array) []*ast.Term {
	out := make([]*ast.Term, a.Len())
	for i := range out {
		out[i] = a.Elem(i)
	}
	return out
}

// buildObject turns collected [key, value] pairs into an object. Two values
// for one key are an evaluation error in OPA: abort to exact evaluation.
func buildObject(pairs []*ast.Term) (ast.Value, bool) {
	o := ast.NewObject()
	for _, p := range pairs {
		a := p.Value.(*ast.Array)
		k, v := a.Elem(0), a.Elem(1)
		if old := o.Get(k); old != nil {
			if !old.Equal(v) {
				return nil, false
			}
			continue
		}
		o.Insert(k, v)
	}
	return o, true
}

// compileCollect compiles a comprehension: every solution of body adds the
// value of head to an accumulator, which build turns into the value.
func (t *translator) compileCollect(body ast.Body, head *ast.Term, sc *scope, build func([]*ast.Term) (ast.Value, bool)) (valueFn, error) {
	acc := t.p.naccs
	t.p.naccs++
	run, err := t.compileSub(body, sc, head, true, func(f *frame, v ast.Value) bool {
		f.accs[acc] = append(f.accs[acc], termOf(v))
		return false
	})
	if err != nil {
		return nil, err
	}
	return func(f *frame) (ast.Value, bool) {
		saved := f.accs[acc]
		f.accs[acc] = nil
		run(f)
		got := f.accs[acc]
		f.accs[acc] = saved
		if f.abort {
			return nil, false
		}
		v, ok := build(got)
		if !ok {
			f.abort = true
		}
		return v, ok
	}, nil
}

// refHead is where a ref starts: its base value and the keys left to apply.
type refHead struct {
	base valueFn
	rest ast.Ref
}

// compileRefHead resolves the start of a ref: a bound variable, a record
// field, the whole record, an outer variable of a sub-query, the known
// input, a support rule, or a document of data (resolved to a constant
// once, by partial evaluation, so a rule that depends on the record is
// never mistaken for a constant).
func (t *translator) compileRefHead(r ast.Ref, sc *scope) (refHead, error) {
	head, ok := r[0].Value.(ast.Var)
	if !ok {
		return refHead{}, untranslatable("ref %s", r)
	}
	switch {
	case head.Equal(ast.InputRootDocument.Value):
		return t.compileInputHead(r, sc)
	case head.Equal(ast.DefaultRootDocument.Value):
		return t.compileDataHead(r)
	}
	slot, ok := sc.vars[head]
	if !ok {
		return refHead{}, untranslatable("unbound variable %s", head)
	}
	return refHead{base: func(f *frame) (ast.Value, bool) { return f.slots[slot], true }, rest: r[1:]}, nil
}

func (t *translator) compileInputHead(r ast.Ref, sc *scope) (refHead, error) {
	if len(r) < 2 {
		return refHead{}, untranslatable("bare input")
	}
	key, ok := r[1].Value.(ast.String)
	if !ok {
		return refHead{}, untranslatable("input read with a computed key: %s", r)
	}
	switch key {
	case "record":
		if len(r) >= 3 {
			if name, ok := r[2].Value.(ast.String); ok {
				p := t.p
				i := p.fieldIndex(string(name))
				t.readsField(i)
				return refHead{base: func(f *frame) (ast.Value, bool) { return f.field(p, i) }, rest: r[3:]}, nil
			}
		}
		t.p.readsAll = true
		t.readsOpaque()
		return refHead{base: func(f *frame) (ast.Value, bool) { return f.record() }, rest: r[2:]}, nil
	case outerKey:
		if len(r) < 3 {
			return refHead{}, untranslatable("bare outer reference")
		}
		t.readsOpaque()
		name, ok := r[2].Value.(ast.String)
		slot, found := sc.outer[string(name)]
		if !ok || !found {
			return refHead{}, untranslatable("policy reads input.%s", outerKey)
		}
		return refHead{base: func(f *frame) (ast.Value, bool) { return f.slots[slot], true }, rest: r[3:]}, nil
	}
	// The rest of the input is known: look up its ground prefix now.
	n := 1
	for n < len(r) {
		if _, ok := r[n].Value.(ast.String); !ok {
			break
		}
		n++
	}
	v, err := t.input.Find(r[1:n])
	if err != nil || v == nil {
		return refHead{base: func(*frame) (ast.Value, bool) { return nil, false }}, nil
	}
	return refHead{base: func(*frame) (ast.Value, bool) { return v, true }, rest: r[n:]}, nil
}

func (t *translator) compileDataHead(r ast.Ref) (refHead, error) {
	// Support rules first: the longest path that names one.
	for n := len(r); n >= 2; n-- {
		if !r[:n].IsGround() {
			continue
		}
		if sr, ok := t.rules[r[:n].String()]; ok {
			t.readsOpaque()
			val, err := t.supportValue(sr)
			if err != nil {
				return refHead{}, err
			}
			return refHead{base: val, rest: r[n:]}, nil
		}
	}
	n := 1
	for n < len(r) {
		if _, ok := r[n].Value.(ast.String); !ok {
			break
		}
		n++
	}
	v, defined, err := t.constant(r[:n])
	if err != nil {
		return refHead{}, err
	}
	if !defined {
		return refHead{base: func(*frame) (ast.Value, bool) { return nil, false }}, nil
	}
	return refHead{base: func(*frame) (ast.Value, bool) { return v, true }, rest: r[n:]}, nil
}

// constant evaluates a data ref that must not depend on the record: its
// partial evaluation must be one unconditional value, or nothing.
func (t *translator) constant(r ast.Ref) (ast.Value, bool, error) {
	x := ast.VarTerm("__crmgate_const__")
	queries, err := t.partial(ast.NewBody(ast.Equality.Expr(x, ast.NewTerm(r))))
	if err != nil {
		return nil, false, err
	}
	switch len(queries) {
	case 0:
		return nil, false, nil
	case 1:
		q := queries[0]
		if len(q) == 1 && q[0].IsEquality() && !q[0].Negated && len(q[0].With) == 0 {
			a, b := q[0].Operand(0), q[0].Operand(1)
			if b.Equal(x) {
				a, b = b, a
			}
			if a.Equal(x) && ast.IsConstant(b.Value) {
				return b.Value, true, nil
			}
		}
	}
	return nil, false, untranslatable("%s depends on the record", r)
}

// compileRef compiles a ref whose keys are all bound.
func (t *translator) compileRef(r ast.Ref, sc *scope) (valueFn, error) {
	h, err := t.compileRefHead(r, sc)
	if err != nil {
		return nil, err
	}
	keys, err := t.compileValues(h.rest, sc)
	if err != nil {
		return nil, err
	}
	base := h.base
	return func(f *frame) (ast.Value, bool) {
		v, ok := base(f)
		for _, k := range keys {
			if !ok {
				return nil, false
			}
			kv, kok := k(f)
			if !kok {
				return nil, false
			}
			v, ok = lookup(v, kv)
		}
		return v, ok
	}, nil
}

// extractGenerators finds refs in e with unbound variables among their keys
// (iteration: s[x], input.record[k]), replaces each with a fresh variable
// and returns the links that enumerate them, in order. Comprehensions are
// left alone: their variables are their own.
func (t *translator) extractGenerators(e *ast.Expr, sc *scope) ([]func(step) (step, error), error) {
	var gens []func(step) (step, error)
	var firstErr error
	// The variable a plain `v = term` binds is not a generator.
	var rewrite func(term *ast.Term) *ast.Term
	rewrite = func(term *ast.Term) *ast.Term {
		if firstErr != nil {
			return term
		}
		switch x := term.Value.(type) {
		case ast.Ref:
			r := x.Copy()
			for i := 1; i < len(r); i++ {
				r[i] = rewrite(r[i])
			}
			if !refHasUnbound(r, sc) {
				return ast.NewTerm(r)
			}
			g, v, err := t.compileGenerator(r, sc)
			if err != nil {
				firstErr = err
				return term
			}
			gens = append(gens, g)
			return ast.VarTerm(string(v))
		case *ast.Array:
			ts := arrayTerms(x)
			for i := range ts {
				ts[i] = rewrite(ts[i])
			}
			return ast.ArrayTerm(ts...)
		case ast.Call:
			c := make(ast.Call, len(x))
			c[0] = x[0]
			for i := 1; i < len(x); i++ {
				c[i] = rewrite(x[i])
			}
			return ast.CallTerm(c...)
		case ast.Set:
			ts := x.Slice()
			for i := range ts {
				ts[i] = rewrite(ts[i])
			}
			return ast.SetTerm(ts...)
		case ast.Object:
			var pairs [][2]*ast.Term
			x.Foreach(func(k, v *ast.Term) { pairs = append(pairs, [2]*ast.Term{rewrite(k), rewrite(v)}) })
			return ast.ObjectTerm(pairs...)
		}
		return term
	}
	switch ts := e.Terms.(type) {
	case *ast.Term:
		e.Terms = rewrite(ts)
	case []*ast.Term:
		for i := 1; i < len(ts); i++ {
			ts[i] = rewrite(ts[i])
		}
	}
	return gens, firstErr
}

// refHasUnbound reports whether a key of r (not its head) is or holds an
// unbound variable.
func refHasUnbound(r ast.Ref, sc *scope) bool {
	for _, k := range r[1:] {
		unbound := false
		ast.WalkVars(k, func(v ast.Var) bool {
			if !sc.bound(v) {
				unbound = true
			}
			return unbound
		})
		if unbound {
			return true
		}
	}
	return false
}

// compileGenerator compiles an iterating ref. Keys that are unbound
// variables are bound by iterating the collection at that point; other
// keys are looked up. The ref's value goes to a fresh variable, returned.
func (t *translator) compileGenerator(r ast.Ref, sc *scope) (func(step) (step, error), ast.Var, error) {
	h, err := t.compileRefHead(r, sc)
	if err != nil {
		return nil, "", err
	}
	type key struct {
		val  valueFn
		slot int // >= 0: an unbound variable bound here
		// repeat is the slot of an earlier key with the same variable
		// (s[x][x]): the later one must equal it.
		repeat int
	}
	keys := make([]key, len(h.rest))
	seen := map[ast.Var]int{}
	for i, k := range h.rest {
		if v, ok := k.Value.(ast.Var); ok && !sc.bound(v) {
			if slot, dup := seen[v]; dup {
				keys[i] = key{slot: -1, repeat: slot}
				continue
			}
			slot := t.newSlot()
			seen[v] = slot
			keys[i] = key{slot: slot, repeat: -1}
			continue
		}
		val, err := t.compileValue(k, sc)
		if err != nil {
			return nil, "", err
		}
		keys[i] = key{val: val, slot: -1, repeat: -1}
	}
	// Bind the variables only now: they are unbound inside the ref.
	for v, slot := range seen {
		sc.vars[v] = slot
	}
	out := ast.Var("__crmgate_gen_" + strconv.Itoa(t.newSlot()) + "__")
	outSlot := t.bind(sc, out)
	base := h.base
	link := func(next step) (step, error) {
		var walk func(f *frame, v ast.Value, i int) bool
		walk = func(f *frame, v ast.Value, i int) bool {
			if i == len(keys) {
				f.slots[outSlot] = v
				return next(f)
			}
			k := keys[i]
			switch {
			case k.slot >= 0:
				return each(v, func(kv, ev ast.Value) bool {
					f.slots[k.slot] = kv
					return walk(f, ev, i+1)
				})
			case k.repeat >= 0:
				ev, ok := lookup(v, f.slots[k.repeat])
				if !ok {
					return f.fail()
				}
				return walk(f, ev, i+1)
			}
			kv, ok := k.val(f)
			if !ok {
				return f.fail()
			}
			ev, ok := lookup(v, kv)
			if !ok {
				return f.fail()
			}
			return walk(f, ev, i+1)
		}
		return func(f *frame) bool {
			v, ok := base(f)
			if !ok {
				return f.fail()
			}
			return walk(f, v, 0)
		}, nil
	}
	return link, out, nil
}
