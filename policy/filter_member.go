package policy

import (
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"
)

// compileMember translates `x = s[k]` (either way round), where x is bound,
// k an unbound variable and s a bound collection: the shape partial
// evaluation leaves for `x in s` and `some k; s[k] == x` once a rule is
// inlined, such as the reference policy's `"u-1" = owners[k]` once per
// granting rule and record. The general translation iterates s through a
// generator, which allocates closures per record; this one looks a string,
// boolean or null up in a set directly and otherwise walks s without them.
// The solutions are the generator's, in its order: k bound to each key
// (index, object key, set element) whose value equals x. ok is false when e
// does not have the shape, and the general translation then handles it.
func (t *translator) compileMember(e *ast.Expr, sc *scope) (link func(step) (step, error), ok bool, err error) {
	if !e.IsEquality() {
		return nil, false, nil
	}
	for _, pair := range [][2]*ast.Term{{e.Operand(0), e.Operand(1)}, {e.Operand(1), e.Operand(0)}} {
		x, ref := pair[0], pair[1]
		r, isRef := ref.Value.(ast.Ref)
		if !isRef || len(r) < 2 {
			continue
		}
		k, isVar := r[len(r)-1].Value.(ast.Var)
		coll := r[:len(r)-1]
		if !isVar || sc.bound(k) || refHasUnbound(coll, sc) || hasUnbound(x, sc) {
			continue
		}
		xf, err := t.compileValue(x, sc)
		if err != nil {
			return nil, false, nil
		}
		cf, err := t.compileValue(ast.NewTerm(coll), sc)
		if err != nil {
			return nil, false, nil
		}
		// A ground string, boolean or null is looked up with a term built
		// once; KeyHashEqual on these is exactly ValueEqual.
		var fixed *ast.Term
		if lookupByHash(x.Value) && ast.IsConstant(x.Value) {
			fixed = ast.NewTerm(x.Value)
		}
		slot := t.bind(sc, k)
		return func(next step) (step, error) {
			return func(f *frame) bool {
				c, ok := cf(f)
				if !ok {
					return f.fail()
				}
				xv, ok := xf(f)
				if !ok {
					return f.fail()
				}
				return members(f, c, xv, fixed, slot, next)
			}, nil
		}, true, nil
	}
	return nil, false, nil
}

// members runs next once per key of c whose value equals x, with the key in
// slot, as iterating c and unifying would.
func members(f *frame, c, x ast.Value, fixed *ast.Term, slot int, next step) bool {
	switch c := c.(type) {
	case ast.Set:
		if fixed != nil || lookupByHash(x) {
			term := fixed
			if term == nil {
				term = ast.NewTerm(x)
			}
			if !c.Contains(term) {
				return f.fail()
			}
			f.slots[slot] = x
			return next(f)
		}
		return c.Until(func(el *ast.Term) bool {
			if !ast.ValueEqual(x, el.Value) {
				return false
			}
			f.slots[slot] = el.Value
			return next(f)
		})
	case *ast.Array:
		for i := range c.Len() {
			if !ast.ValueEqual(x, c.Elem(i).Value) {
				continue
			}
			f.slots[slot] = ast.Number(strconv.Itoa(i))
			if next(f) {
				return true
			}
		}
	case ast.Object:
		return c.Until(func(key, v *ast.Term) bool {
			if !ast.ValueEqual(x, v.Value) {
				return false
			}
			f.slots[slot] = key.Value
			return next(f)
		})
	}
	// Not a collection: no elements, as a generator finds none.
	return false
}

// lookupByHash reports whether set membership of v by hash agrees exactly
// with comparing v to every element: scalars other than numbers, whose
// hash and equality disagree for spellings such as 1e400 and 10e399.
func lookupByHash(v ast.Value) bool {
	switch v.(type) {
	case ast.String, ast.Boolean, ast.Null:
		return true
	}
	return false
}

// hasUnbound reports whether term holds a variable sc has not bound.
func hasUnbound(term *ast.Term, sc *scope) bool {
	unbound := false
	ast.WalkVars(term, func(v ast.Var) bool {
		if !sc.bound(v) && !v.Equal(ast.InputRootDocument.Value) && !v.Equal(ast.DefaultRootDocument.Value) {
			unbound = true
		}
		return unbound
	})
	return unbound
}
