package policy

import (
	"fmt"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/types"
)

// Builtin errors and partial evaluation.
//
// A builtin given an operand of the wrong type (startswith with a number)
// fails. How the engine reports that depends on where it happens: with
// strict builtin errors a failing call in a query is an error, while inside
// a rule body OPA may treat it as undefined. The predicate does not try to
// reproduce that: a record on which a builtin would fail is handed to the
// engine. A builtin that reads the record cannot run during partial
// evaluation, so it stays in the residual, unless a later expression of the
// same body is false for this request and the whole body is dropped; the
// predicate would then never see the call the engine makes. So the record
// rules, as written, are checked once per revision: every builtin call that
// may fail on a record value must read that value straight from a record
// field (a hazard, checked on each record before the predicate runs, which
// sends records with a wrong type to the engine), or no filter of the
// revision is exact.

// hazard is a record field that a builtin reads and that makes the builtin
// fail unless its value has the type the builtin accepts.
type hazard struct {
	field string
	// path is the rest of the ref below the field.
	path ast.Ref
	want types.Type
}

// hazardous reports whether a record has a value of the wrong type where a
// builtin reads it.
func hazardous(hs []hazard, rec map[string]any) bool {
	for _, h := range hs {
		raw, ok := rec[h.field]
		if !ok {
			continue
		}
		v, err := goValue(raw)
		if err != nil {
			return true
		}
		if len(h.path) > 0 {
			if v, err = v.Find(h.path); err != nil || v == nil {
				continue
			}
		}
		if !valueHasType(v, h.want) {
			return true
		}
	}
	return false
}

// neverFails are builtins that accept any operands without error.
var neverFails = map[string]bool{
	"eq": true, "assign": true, "equal": true, "neq": true, "lt": true, "gt": true, "lte": true, "gte": true,
	"internal.member_2": true, "internal.member_3": true,
	"is_string": true, "is_number": true, "is_boolean": true, "is_null": true,
	"is_array": true, "is_set": true, "is_object": true, "type_name": true,
	"internal.print": true, "print": true,
}

// failsOnTypesOnly are builtins whose only errors are operands of the
// wrong type (checked one operand at a time).
var failsOnTypesOnly = map[string]bool{
	"count": true, "startswith": true, "endswith": true, "contains": true,
	"lower": true, "upper": true, "trim_space": true, "and": true, "or": true,
	"concat": true, "split": true, "indexof": true, "abs": true, "sort": true,
	"is_string": true,
}

// analyseHazards checks every builtin call of the reached rules. unsafe is
// the reason when a call may fail on a record value in a way no per-record
// check can foresee.
func analyseHazards(compiler *ast.Compiler, reached map[*ast.Rule]bool) ([]hazard, string) {
	rules := make([]*ast.Rule, 0, len(reached))
	for r := range reached {
		rules = append(rules, r)
	}
	// Deterministic order, so the reason names the same call every time.
	sort.Slice(rules, func(i, j int) bool { return rules[i].Loc().Compare(rules[j].Loc()) < 0 })
	a := &hazardAnalysis{compiler: compiler, seen: map[string]bool{}}
	for _, r := range rules {
		for x := r; x != nil; x = x.Else {
			a.rule(x)
			if a.unsafe != "" {
				return nil, a.unsafe
			}
		}
	}
	return a.hazards, ""
}

type hazardAnalysis struct {
	compiler *ast.Compiler
	hazards  []hazard
	seen     map[string]bool
	unsafe   string
	// bindings are the terms each variable of the current rule is unified
	// with (or is the output of), in any of its bodies.
	bindings map[ast.Var][]*ast.Term
}

func (a *hazardAnalysis) rule(r *ast.Rule) {
	a.bindings = a.bindingsOf(r)
	ast.WalkExprs(r, func(e *ast.Expr) bool {
		if e.IsCall() {
			a.call(ast.Call(e.Terms.([]*ast.Term)), e)
		}
		ast.WalkTerms(e, func(t *ast.Term) bool {
			if c, ok := t.Value.(ast.Call); ok {
				a.call(c, e)
			}
			return false
		})
		return a.unsafe != ""
	})
}

// bindingsOf collects, for each variable of a rule, the terms it is
// unified with and the calls it is the output of.
func (a *hazardAnalysis) bindingsOf(r *ast.Rule) map[ast.Var][]*ast.Term {
	out := map[ast.Var][]*ast.Term{}
	ast.WalkExprs(r, func(e *ast.Expr) bool {
		switch {
		case e.IsEquality():
			x, y := e.Operand(0), e.Operand(1)
			if v, ok := x.Value.(ast.Var); ok {
				out[v] = append(out[v], y)
			}
			if v, ok := y.Value.(ast.Var); ok {
				out[v] = append(out[v], x)
			}
		case e.IsCall():
			terms := e.Terms.([]*ast.Term)
			if len(terms)-1 != a.arity(terms[0])+1 {
				break
			}
			if v, ok := terms[len(terms)-1].Value.(ast.Var); ok {
				out[v] = append(out[v], ast.CallTerm(terms[:len(terms)-1]...))
			}
		}
		return false
	})
	return out
}

// arity is the number of operands a builtin or policy function takes, or
// -2 when op is neither.
func (a *hazardAnalysis) arity(op *ast.Term) int {
	if b := builtinOf(op); b != nil {
		return len(b.Decl.FuncArgs().Args)
	}
	if r, ok := op.Value.(ast.Ref); ok {
		if rules := a.compiler.GetRulesExact(r); len(rules) > 0 {
			return len(rules[0].Head.Args)
		}
	}
	return -2
}

func builtinOf(op *ast.Term) *ast.Builtin {
	ref, ok := op.Value.(ast.Ref)
	if !ok {
		return nil
	}
	return ast.BuiltinMap[ref.String()]
}

func (a *hazardAnalysis) call(c ast.Call, at *ast.Expr) {
	b := builtinOf(c[0])
	if b == nil || neverFails[b.Name] || a.unsafe != "" {
		return
	}
	args := b.Decl.FuncArgs()
	for i, arg := range c[1:] {
		if i >= len(args.Args) && args.Variadic == nil {
			break // the output operand
		}
		want := args.Arg(i)
		if !a.mayReadRecord(arg, 0) {
			continue
		}
		if failsOnTypesOnly[b.Name] {
			if k := a.kind(arg, 0); k != nil && typeCovers(want, k) {
				continue
			}
			if field, path, ok := a.recordPath(arg); ok {
				a.addHazard(field, path, want)
				continue
			}
		}
		a.unsafe = fmt.Sprintf("%s: builtin %s may fail on a record value", at.Loc(), b.Name)
		return
	}
}

func (a *hazardAnalysis) addHazard(field string, path ast.Ref, want types.Type) {
	key := field + "\x00" + path.String() + "\x00" + types.Sprint(want)
	if a.seen[key] {
		return
	}
	a.seen[key] = true
	a.hazards = append(a.hazards, hazard{field: field, path: path, want: want})
}

// mayReadRecord is conservative: any variable not unified with a term
// free of the record, any ref into input.record or the whole input, and
// any rule of the policy may carry a record value.
func (a *hazardAnalysis) mayReadRecord(t *ast.Term, depth int) bool {
	found := false
	ast.WalkTerms(t, func(x *ast.Term) bool {
		if found {
			return true
		}
		switch v := x.Value.(type) {
		case ast.Var:
			if v.Equal(ast.InputRootDocument.Value) || v.Equal(ast.DefaultRootDocument.Value) {
				break
			}
			// A variable unified with a term that cannot carry a record
			// value is that value; any other variable may carry one.
			free := false
			if depth < 8 {
				for _, b := range a.bindings[v] {
					if !a.mayReadRecord(b, depth+1) {
						free = true
						break
					}
				}
			}
			found = !free
		case ast.Ref:
			switch {
			case v[0].Equal(ast.InputRootDocument):
				// Other parts of the input are known while filtering.
				if len(v) < 2 || !isString(v[1]) || v[1].Equal(ast.StringTerm("record")) {
					found = true
				}
			case v[0].Equal(ast.DefaultRootDocument):
				if !isBaseDoc(a.compiler, v) {
					found = true
				}
			}
			// The ref's keys may hold variables of their own.
			for _, k := range v[1:] {
				if a.mayReadRecord(k, depth+1) {
					found = true
				}
			}
			return true
		}
		return false
	})
	return found
}

func isString(t *ast.Term) bool {
	_, ok := t.Value.(ast.String)
	return ok
}

// isBaseDoc reports whether no rule lives at or below the ref's ground
// prefix: data read from files, which never depends on the record.
func isBaseDoc(c *ast.Compiler, r ast.Ref) bool {
	node := c.RuleTree.Find(r.GroundPrefix())
	if node == nil {
		return true
	}
	hasRules := false
	node.DepthFirst(func(n *ast.TreeNode) bool {
		if len(n.Values) > 0 {
			hasRules = true
		}
		return hasRules
	})
	return !hasRules
}

// recordPath recognises input.record.<field>... with constant keys, either
// directly or through a variable whose only binding is such a ref.
func (a *hazardAnalysis) recordPath(t *ast.Term) (string, ast.Ref, bool) {
	if v, ok := t.Value.(ast.Var); ok {
		bs := a.bindings[v]
		if len(bs) != 1 {
			return "", nil, false
		}
		t = bs[0]
	}
	r, ok := t.Value.(ast.Ref)
	if !ok || len(r) < 3 || !r[0].Equal(ast.InputRootDocument) || !r[1].Equal(ast.StringTerm("record")) {
		return "", nil, false
	}
	for _, k := range r[2:] {
		if !isString(k) && !ast.IsScalar(k.Value) {
			return "", nil, false
		}
	}
	field, ok := r[2].Value.(ast.String)
	if !ok {
		return "", nil, false
	}
	return string(field), r[3:].Copy(), true
}

// kind is the static type of a term when it is evident from its syntax:
// literals, comprehensions, builtin results, rules and functions whose
// every definition yields the same kind, and variables bound to those.
// Nil means unknown.
func (a *hazardAnalysis) kind(t *ast.Term, depth int) types.Type {
	if depth > 8 {
		return nil
	}
	switch v := t.Value.(type) {
	case ast.String:
		return types.S
	case ast.Number:
		return types.N
	case ast.Boolean:
		return types.B
	case ast.Null:
		return types.Nl
	case *ast.Array, *ast.ArrayComprehension:
		return types.NewArray(nil, types.A)
	case ast.Set, *ast.SetComprehension:
		return types.NewSet(types.A)
	case ast.Object, *ast.ObjectComprehension:
		return types.NewObject(nil, types.NewDynamicProperty(types.A, types.A))
	case ast.Var:
		for _, b := range a.bindings[v] {
			if k := a.kind(b, depth+1); k != nil {
				// The variable is unified with every binding, so one
				// binding of known kind fixes its kind.
				return k
			}
		}
	case ast.Call:
		if b := builtinOf(v[0]); b != nil {
			return kindOfType(b.Decl.Result())
		}
		if r, ok := v[0].Value.(ast.Ref); ok {
			return a.ruleKind(r, depth)
		}
	case ast.Ref:
		if v[0].Equal(ast.DefaultRootDocument) && v.IsGround() {
			return a.ruleKind(v, depth)
		}
	}
	return nil
}

func kindOfType(result types.Type) types.Type {
	switch result.(type) {
	case types.String, types.Number, types.Boolean, types.Null, *types.Array, *types.Set, *types.Object:
		return result
	}
	return nil
}

// ruleKind is the kind every rule at r yields, if they agree.
func (a *hazardAnalysis) ruleKind(r ast.Ref, depth int) types.Type {
	rules := a.compiler.GetRulesExact(r)
	if len(rules) == 0 {
		return nil
	}
	var k types.Type
	saved := a.bindings
	defer func() { a.bindings = saved }()
	for _, rule := range rules {
		for x := rule; x != nil; x = x.Else {
			var rk types.Type
			if x.Head.RuleKind() == ast.MultiValue {
				rk = types.NewSet(types.A)
			} else {
				a.bindings = a.bindingsOf(x)
				rk = a.kind(x.Head.Value, depth+1)
			}
			if rk == nil || (k != nil && types.Compare(k, rk) != 0) {
				return nil
			}
			k = rk
		}
	}
	return k
}

// typeCovers reports whether every value of kind k is accepted where want
// is declared. Composite kinds say nothing of their elements, so they are
// covered only by a declaration that accepts any element.
func typeCovers(want, k types.Type) bool {
	if n, ok := want.(*types.NamedType); ok {
		want = n.Type
	}
	switch w := want.(type) {
	case types.Any:
		if len(w) == 0 {
			return true
		}
		for _, alt := range w {
			if typeCovers(alt, k) {
				return true
			}
		}
		return false
	case *types.Array:
		_, ok := k.(*types.Array)
		return ok && w.Len() == 0 && isAny(w.Dynamic())
	case *types.Set:
		_, ok := k.(*types.Set)
		return ok && isAny(w.Of())
	case *types.Object:
		_, ok := k.(*types.Object)
		return ok && len(w.StaticProperties()) == 0 && w.DynamicProperties() != nil && isAny(w.DynamicProperties().Key) && isAny(w.DynamicProperties().Value)
	}
	return types.Compare(want, k) == 0
}

func isAny(t types.Type) bool {
	if n, ok := t.(*types.NamedType); ok {
		t = n.Type
	}
	a, ok := t.(types.Any)
	return ok && len(a) == 0
}

// valueHasType reports whether a value is accepted where t is declared.
func valueHasType(v ast.Value, t types.Type) bool {
	if n, ok := t.(*types.NamedType); ok {
		t = n.Type
	}
	switch w := t.(type) {
	case types.Any:
		if len(w) == 0 {
			return true
		}
		for _, alt := range w {
			if valueHasType(v, alt) {
				return true
			}
		}
		return false
	case types.String:
		_, ok := v.(ast.String)
		return ok
	case types.Number:
		_, ok := v.(ast.Number)
		return ok
	case types.Boolean:
		_, ok := v.(ast.Boolean)
		return ok
	case types.Null:
		_, ok := v.(ast.Null)
		return ok
	case *types.Array:
		arr, ok := v.(*ast.Array)
		if !ok {
			return false
		}
		for i := range arr.Len() {
			if !valueHasType(arr.Elem(i).Value, w.Select(i)) {
				return false
			}
		}
		return true
	case *types.Set:
		s, ok := v.(ast.Set)
		if !ok {
			return false
		}
		return !s.Until(func(x *ast.Term) bool { return !valueHasType(x.Value, w.Of()) })
	case *types.Object:
		o, ok := v.(ast.Object)
		if !ok {
			return false
		}
		return !o.Until(func(k, x *ast.Term) bool {
			// Select takes the key as Go data, as types.TypeOf does: an
			// ast.Value there panics.
			key, err := ast.JSON(k.Value)
			if err != nil {
				return true
			}
			want := w.Select(key)
			if want == nil {
				return true
			}
			return !valueHasType(x.Value, want)
		})
	}
	return false
}
