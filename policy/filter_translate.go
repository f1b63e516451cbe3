package policy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// errUntranslatable marks a residual the translator does not understand;
// the filter then evaluates every record with the engine.
var errUntranslatable = errors.New("untranslatable residual")

func untranslatable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUntranslatable, fmt.Sprintf(format, args...))
}

// outerKey is the input key under which variables of an enclosing query are
// made unknown when a sub-query (a comprehension body) is partially
// evaluated on its own. Policies that use the key themselves fall back.
const outerKey = "__crmgate_outer__"

// maxSubqueryDepth bounds nested partial evaluation of comprehensions.
const maxSubqueryDepth = 4

// program is a translated residual: the variable slots, record fields and
// memos one evaluation needs. Its steps are built by a translator.
type program struct {
	fields   []string
	fieldIdx map[string]int
	// readsAll is set when the predicate reads the record as a whole or
	// through computed field names, so Fields cannot name what it needs.
	readsAll bool
	nslots   int
	naccs    int
	nflags   int
	nrules   int
	// ncontent counts the comprehensions remembered by content.
	ncontent int
}

func (p *program) fieldIndex(name string) int {
	if i, ok := p.fieldIdx[name]; ok {
		return i
	}
	p.fieldIdx[name] = len(p.fields)
	p.fields = append(p.fields, name)
	return len(p.fields) - 1
}

// translator turns OPA's partial evaluation of the record rules (queries
// plus support modules) into steps over a frame.
type translator struct {
	ctx   context.Context
	c     *compiled
	input ast.Value
	now   time.Time
	p     *program
	// rules are support rules by the text of their path.
	rules   map[string]*supportRule
	nsCount int
	depth   int
	// closed are compiled comprehensions that read no enclosing variable,
	// by canonical text.
	closed     map[string]valueFn
	closedDeps map[string]*fieldDeps
	// deps are the comprehensions being compiled, innermost last.
	deps []*fieldDeps
}

// supportRule is a rule of a support module, evaluated once per record.
type supportRule struct {
	path  ast.Ref
	rules []*ast.Rule
	memo  int
	value valueFn
	busy  bool
}

// scope maps the variables bound so far to their slots. outer maps slot
// names used by a sub-query's residual back to slots.
type scope struct {
	vars  map[ast.Var]int
	outer map[string]int
}

func newScope(outer map[string]int) *scope {
	return &scope{vars: map[ast.Var]int{}, outer: outer}
}

func (s *scope) copy() *scope {
	n := &scope{vars: make(map[ast.Var]int, len(s.vars)), outer: s.outer}
	for k, v := range s.vars {
		n.vars[k] = v
	}
	return n
}

func (s *scope) bound(v ast.Var) bool {
	_, ok := s.vars[v]
	return ok
}

func (t *translator) newSlot() int {
	t.p.nslots++
	return t.p.nslots - 1
}

func (t *translator) bind(sc *scope, v ast.Var) int {
	i := t.newSlot()
	sc.vars[v] = i
	return i
}

// partial runs OPA's partial evaluation of query with input.record (and any
// outer variables) unknown, registering support rules under a namespace of
// its own so sub-queries cannot clash.
func (t *translator) partial(query ast.Body) ([]ast.Body, error) {
	t.nsCount++
	ns := "crmgate_filter_" + strconv.Itoa(t.nsCount)
	r := rego.New(
		rego.ParsedQuery(query),
		rego.Compiler(t.c.compiler),
		rego.Store(t.c.store),
		rego.ParsedInput(t.input),
		rego.Unknowns([]string{"input.record", "input." + outerKey}),
		rego.PartialNamespace(ns),
		rego.StrictBuiltinErrors(true),
		rego.Metrics(metrics.NoOp()),
		rego.Time(t.now),
	)
	pq, err := r.Partial(t.ctx)
	if err != nil {
		return nil, fmt.Errorf("partial evaluation: %w", err)
	}
	for _, m := range pq.Support {
		for _, rule := range m.Rules {
			path := rule.Ref()
			if !path.IsGround() {
				return nil, untranslatable("support rule with a dynamic head %s", path)
			}
			key := path.String()
			sr := t.rules[key]
			if sr == nil {
				sr = &supportRule{path: path, memo: t.p.nrules}
				t.p.nrules++
				t.rules[key] = sr
			}
			sr.rules = append(sr.rules, rule)
		}
	}
	return pq.Queries, nil
}

// compileBody translates a conjunction; next runs once per solution.
func (t *translator) compileBody(body ast.Body, sc *scope, next step) (step, error) {
	body = hoistConstantBindings(body, sc)
	links := make([]func(step) (step, error), 0, len(body))
	for _, e := range body {
		l, err := t.compileExpr(e, sc)
		if err != nil {
			return nil, err
		}
		links = append(links, l)
	}
	s := next
	for i := len(links) - 1; i >= 0; i-- {
		var err error
		if s, err = links[i](s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// hoistConstantBindings moves `var = constant` expressions for unbound
// variables to the front. OPA appends such captured bindings at the end of
// a saved comprehension body; evaluating them first turns an iteration over
// every key into a lookup. Conjunction is order-independent here because
// builtin errors never reach a result: they abort to exact evaluation.
func hoistConstantBindings(body ast.Body, sc *scope) ast.Body {
	var front, rest ast.Body
	for _, e := range body {
		if isConstantBinding(e, sc) {
			front = append(front, e)
		} else {
			rest = append(rest, e)
		}
	}
	return append(front, rest...)
}

func isConstantBinding(e *ast.Expr, sc *scope) bool {
	if e.Negated || len(e.With) > 0 || !e.IsEquality() {
		return false
	}
	a, b := e.Operand(0), e.Operand(1)
	if v, ok := a.Value.(ast.Var); ok && !sc.bound(v) && ast.IsConstant(b.Value) {
		return true
	}
	if v, ok := b.Value.(ast.Var); ok && !sc.bound(v) && ast.IsConstant(a.Value) {
		return true
	}
	return false
}

// compileExpr translates one expression. It updates sc with the variables
// the expression binds and returns a link that wraps the successor.
func (t *translator) compileExpr(e *ast.Expr, sc *scope) (func(step) (step, error), error) {
	if len(e.With) > 0 {
		return nil, untranslatable("with modifier in %s", e)
	}
	if e.Negated {
		return t.compileNot(e, sc)
	}
	if ev, ok := e.Terms.(*ast.Every); ok {
		return t.compileEvery(ev, sc)
	}
	if link, ok, err := t.compileMember(e, sc); ok || err != nil {
		return link, err
	}
	e = e.Copy()
	gens, err := t.extractGenerators(e, sc)
	if err != nil {
		return nil, err
	}
	var inner func(step) (step, error)
	switch {
	case e.IsEquality():
		inner, err = t.compileUnify(e.Operand(0), e.Operand(1), sc)
	case e.IsCall():
		inner, err = t.compileCallExpr(e, sc)
	default:
		term, ok := e.Terms.(*ast.Term)
		if !ok {
			return nil, untranslatable("expression %s", e)
		}
		inner, err = t.compileTermExpr(term, sc)
	}
	if err != nil {
		return nil, err
	}
	return func(next step) (step, error) {
		s, err := inner(next)
		if err != nil {
			return nil, err
		}
		for i := len(gens) - 1; i >= 0; i-- {
			if s, err = gens[i](s); err != nil {
				return nil, err
			}
		}
		return s, nil
	}, nil
}

// compileTermExpr: a term as an expression holds when it is defined and not
// false.
func (t *translator) compileTermExpr(term *ast.Term, sc *scope) (func(step) (step, error), error) {
	val, err := t.compileValue(term, sc)
	if err != nil {
		return nil, err
	}
	return func(next step) (step, error) {
		return func(f *frame) bool {
			v, ok := val(f)
			if !ok || ast.Boolean(false).Equal(v) {
				return f.fail()
			}
			return next(f)
		}, nil
	}, nil
}

// compileUnify handles a = b where each side is a bound term or an unbound
// variable. Patterns (arrays or objects with unbound variables inside) are
// not translated.
func (t *translator) compileUnify(a, b *ast.Term, sc *scope) (func(step) (step, error), error) {
	if v, ok := a.Value.(ast.Var); ok && !sc.bound(v) {
		if w, ok := b.Value.(ast.Var); ok && !sc.bound(w) {
			return nil, untranslatable("unification of two unbound variables %s = %s", a, b)
		}
		return t.compileBind(v, b, sc)
	}
	if v, ok := b.Value.(ast.Var); ok && !sc.bound(v) {
		return t.compileBind(v, a, sc)
	}
	va, err := t.compileValue(a, sc)
	if err != nil {
		return nil, err
	}
	vb, err := t.compileValue(b, sc)
	if err != nil {
		return nil, err
	}
	return func(next step) (step, error) {
		return func(f *frame) bool {
			x, ok := va(f)
			if !ok {
				return f.fail()
			}
			y, ok := vb(f)
			if !ok || !ast.ValueEqual(x, y) {
				return f.fail()
			}
			return next(f)
		}, nil
	}, nil
}

func (t *translator) compileBind(v ast.Var, term *ast.Term, sc *scope) (func(step) (step, error), error) {
	val, err := t.compileValue(term, sc)
	if err != nil {
		return nil, err
	}
	slot := t.bind(sc, v)
	return func(next step) (step, error) {
		return func(f *frame) bool {
			x, ok := val(f)
			if !ok {
				return f.fail()
			}
			f.slots[slot] = x
			return next(f)
		}, nil
	}, nil
}

// compileCallExpr handles a builtin call used as an expression: with an
// extra operand its result is unified with that operand, otherwise it holds
// unless the result is false.
func (t *translator) compileCallExpr(e *ast.Expr, sc *scope) (func(step) (step, error), error) {
	terms := e.Terms.([]*ast.Term)
	_, arity, err := builtinFor(terms[0])
	if err != nil {
		return nil, err
	}
	operands := terms[1:]
	var out *ast.Term
	switch len(operands) {
	case arity:
	case arity + 1:
		out = operands[arity]
		operands = operands[:arity]
	default:
		return nil, untranslatable("call %s with %d operands", terms[0], len(operands))
	}
	call, err := t.compileCall(terms[0], operands, sc)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return func(next step) (step, error) {
			return func(f *frame) bool {
				v, ok := call(f)
				if !ok || ast.Boolean(false).Equal(v) {
					return f.fail()
				}
				return next(f)
			}, nil
		}, nil
	}
	if v, ok := out.Value.(ast.Var); ok && !sc.bound(v) {
		slot := t.bind(sc, v)
		return func(next step) (step, error) {
			return func(f *frame) bool {
				x, ok := call(f)
				if !ok {
					return f.fail()
				}
				f.slots[slot] = x
				return next(f)
			}, nil
		}, nil
	}
	want, err := t.compileValue(out, sc)
	if err != nil {
		return nil, err
	}
	return func(next step) (step, error) {
		return func(f *frame) bool {
			x, ok := call(f)
			if !ok {
				return f.fail()
			}
			y, ok := want(f)
			if !ok || !ast.ValueEqual(x, y) {
				return f.fail()
			}
			return next(f)
		}, nil
	}, nil
}

// compileNot: `not e` holds when e has no solution. Variables bound inside
// stay inside.
func (t *translator) compileNot(e *ast.Expr, sc *scope) (func(step) (step, error), error) {
	inner := e.Copy()
	inner.Negated = false
	flag := t.p.nflags
	t.p.nflags++
	body, err := t.compileBody(ast.NewBody(inner), sc.copy(), func(f *frame) bool {
		f.flags[flag] = true
		return true
	})
	if err != nil {
		return nil, err
	}
	return func(next step) (step, error) {
		return func(f *frame) bool {
			f.flags[flag] = false
			body(f)
			if f.abort {
				return true
			}
			if f.flags[flag] {
				return false
			}
			return next(f)
		}, nil
	}, nil
}

// compileEvery: the body holds for every key and value of the domain; a
// domain that is not a collection makes the expression undefined.
func (t *translator) compileEvery(ev *ast.Every, sc *scope) (func(step) (step, error), error) {
	dom, err := t.compileValue(ev.Domain, sc)
	if err != nil {
		return nil, err
	}
	inner := sc.copy()
	kslot, vslot := -1, -1
	if ev.Key != nil {
		k, ok := ev.Key.Value.(ast.Var)
		if !ok {
			return nil, untranslatable("every with key %s", ev.Key)
		}
		kslot = t.bind(inner, k)
	}
	v, ok := ev.Value.Value.(ast.Var)
	if !ok {
		return nil, untranslatable("every with value %s", ev.Value)
	}
	vslot = t.bind(inner, v)
	flag := t.p.nflags
	t.p.nflags++
	body, err := t.compileSub(ev.Body, inner, nil, false, func(f *frame, _ ast.Value) bool {
		f.flags[flag] = true
		return true
	})
	if err != nil {
		return nil, err
	}
	return func(next step) (step, error) {
		return func(f *frame) bool {
			d, ok := dom(f)
			if !ok {
				return f.fail()
			}
			switch d.(type) {
			case ast.Object, *ast.Array, ast.Set:
			default:
				return f.fail()
			}
			failed := each(d, func(k, v ast.Value) bool {
				if kslot >= 0 {
					f.slots[kslot] = k
				}
				f.slots[vslot] = v
				f.flags[flag] = false
				body(f)
				return f.abort || !f.flags[flag]
			})
			if f.abort {
				return true
			}
			if failed {
				return false
			}
			return next(f)
		}, nil
	}, nil
}

// compileSub translates a nested body (of every or a comprehension) in a
// scope of its own. sink runs once per solution with the value of result
// (nil when result is nil). The body is translated as it stands, or
// partially evaluated on its own first (partialFirst, for comprehensions:
// that unrolls iterations over data into plain field reads), with the
// enclosing query's variables unknown; whichever way fails to translate,
// the other is tried.
func (t *translator) compileSub(body ast.Body, sc *scope, result *ast.Term, partialFirst bool, sink func(f *frame, v ast.Value) bool) (step, error) {
	direct := func() (step, error) {
		cs := sc.copy()
		var res valueFn
		s, err := t.compileBody(body, cs, terminal(&res, sink))
		if err != nil || result == nil {
			return s, err
		}
		res, err = t.compileValue(result, cs)
		return s, err
	}
	partial := func() (step, error) { return t.compileSubPartial(body, sc, result, sink) }
	first, second := direct, partial
	if partialFirst {
		first, second = partial, direct
	}
	s, err := first()
	if err == nil || !errors.Is(err, errUntranslatable) {
		return s, err
	}
	return second()
}

// terminal ends a sub-query: it reads the result (once *res is set, after
// translation) and hands it to sink.
func terminal(res *valueFn, sink func(f *frame, v ast.Value) bool) step {
	return func(f *frame) bool {
		var v ast.Value
		if *res != nil {
			var ok bool
			if v, ok = (*res)(f); !ok {
				return f.fail()
			}
		}
		return sink(f, v)
	}
}

// headVar names a sub-query's result in its residual.
var headVar = ast.Var("__crmgate_head__")

// compileSubPartial partially evaluates body with the variables already
// bound in sc replaced by unknown refs (input.__crmgate_outer__.sN for slot
// N) and translates the disjunction of its residual queries.
func (t *translator) compileSubPartial(body ast.Body, sc *scope, result *ast.Term, sink func(f *frame, v ast.Value) bool) (step, error) {
	if t.depth >= maxSubqueryDepth {
		return nil, untranslatable("comprehensions nested too deep")
	}
	t.depth++
	defer func() { t.depth-- }()
	outer := map[string]int{}
	for k, v := range sc.outer {
		outer[k] = v
	}
	subst := map[ast.Var]*ast.Term{}
	for v, slot := range sc.vars {
		name := "s" + strconv.Itoa(slot)
		outer[name] = slot
		subst[v] = ast.RefTerm(ast.VarTerm("input"), ast.StringTerm(outerKey), ast.StringTerm(name))
	}
	query := body.Copy()
	if result != nil {
		query.Append(ast.Equality.Expr(ast.VarTerm(string(headVar)), result.Copy()))
	}
	queries, err := t.partial(substituteVars(query, subst))
	if err != nil {
		return nil, err
	}
	steps := make([]step, len(queries))
	for i, q := range queries {
		qs := newScope(outer)
		res := new(valueFn)
		s, err := t.compileBody(q, qs, terminal(res, sink))
		if err != nil {
			return nil, err
		}
		if result != nil {
			if *res, err = t.compileValue(ast.VarTerm(string(headVar)), qs); err != nil {
				return nil, err
			}
		}
		steps[i] = s
	}
	return func(f *frame) bool {
		for _, s := range steps {
			if s(f) {
				return true
			}
		}
		return false
	}, nil
}

func substituteVars(body ast.Body, subst map[ast.Var]*ast.Term) ast.Body {
	vis := ast.NewGenericTransformer(func(x any) (any, error) {
		if v, ok := x.(ast.Var); ok {
			if t, ok := subst[v]; ok {
				return t.Value, nil
			}
		}
		return x, nil
	})
	out, err := ast.Transform(vis, body)
	if err != nil {
		return body
	}
	return out.(ast.Body)
}

// builtinCall runs a builtin on ground operands.
type builtinCall func(f *frame, args []ast.Value) (ast.Value, bool)

// builtinFor returns how to run a builtin the translator may call, and its
// arity. Functions of the policy (support functions) and builtins outside
// the allow-list are not translated.
func builtinFor(op *ast.Term) (builtinCall, int, error) {
	ref, ok := op.Value.(ast.Ref)
	if !ok {
		return nil, 0, untranslatable("call of %s", op)
	}
	name := ref.String()
	if !pureBuiltins[name] {
		return nil, 0, untranslatable("builtin %s", name)
	}
	b := ast.BuiltinMap[name]
	fn := topdown.GetBuiltin(name)
	if b == nil || fn == nil || b.Decl.FuncArgs().Variadic != nil {
		return nil, 0, untranslatable("builtin %s", name)
	}
	if native, ok := nativeBuiltins[name]; ok {
		return native, len(b.Decl.FuncArgs().Args), nil
	}
	return func(f *frame, args []ast.Value) (ast.Value, bool) {
		return callBuiltin(f, fn, args)
	}, len(b.Decl.FuncArgs().Args), nil
}

// compileCall compiles a builtin call on bound operands. The operands are
// evaluated into scratch slots of the frame: a call site cannot be
// re-entered while its operands are in use, since Rego has no recursion.
func (t *translator) compileCall(op *ast.Term, operands []*ast.Term, sc *scope) (valueFn, error) {
	fn, arity, err := builtinFor(op)
	if err != nil {
		return nil, err
	}
	if len(operands) != arity {
		return nil, untranslatable("call %s with %d operands", op, len(operands))
	}
	args, err := t.compileValues(operands, sc)
	if err != nil {
		return nil, err
	}
	base := t.p.nslots
	t.p.nslots += len(args)
	return func(f *frame) (ast.Value, bool) {
		vals := f.slots[base : base+len(args)]
		for i, a := range args {
			v, ok := a(f)
			if !ok {
				return nil, false
			}
			vals[i] = v
		}
		return fn(f, vals)
	}, nil
}

// pureBuiltins may be called outside an evaluation: deterministic, and
// their implementations read nothing from the builtin context.
var pureBuiltins = map[string]bool{
	"eq":    false, // unification, handled separately
	"equal": true, "neq": true, "lt": true, "gt": true, "lte": true, "gte": true,
	"internal.member_2": true, "internal.member_3": true,
	"count": true, "sort": true, "max": true, "min": true,
	"startswith": true, "endswith": true, "contains": true, "lower": true, "upper": true,
	"trim_space": true, "trim_prefix": true, "trim_suffix": true, "split": true,
	"concat": true, "indexof": true, "substring": true,
	"is_string": true, "is_number": true, "is_boolean": true, "is_null": true,
	"is_array": true, "is_set": true, "is_object": true, "type_name": true,
	"and": true, "or": true, "minus": true, "plus": true, "mul": true, "abs": true,
	"object.get": true, "regex.match": true,
}

// supportValue compiles a support rule into a memoized value: a complete
// rule's single value (its default when no body holds; two different values
// are a conflict, which OPA reports as an error, so the frame aborts to
// exact evaluation) or a partial set rule's set.
func (t *translator) supportValue(sr *supportRule) (valueFn, error) {
	if sr.value != nil {
		return sr.value, nil
	}
	if sr.busy {
		return nil, untranslatable("recursive support rule %s", sr.path)
	}
	sr.busy = true
	defer func() { sr.busy = false }()

	var def *ast.Rule
	var bodies []*ast.Rule
	multi := false
	for i, r := range sr.rules {
		if len(r.Head.Args) > 0 || r.Else != nil {
			return nil, untranslatable("support function or else in %s", sr.path)
		}
		m := r.Head.RuleKind() == ast.MultiValue
		if i > 0 && m != multi {
			return nil, untranslatable("mixed rule kinds in %s", sr.path)
		}
		multi = m
		if r.Default {
			def = r
			continue
		}
		bodies = append(bodies, r)
	}
	if def != nil && !ast.IsConstant(def.Head.Value.Value) {
		return nil, untranslatable("default of %s is not a constant", sr.path)
	}
	// When every body yields the same constant, the first body that holds
	// decides: later bodies cannot conflict with it.
	var same ast.Value
	for i, r := range bodies {
		if multi || !ast.IsConstant(r.Head.Value.Value) || (i > 0 && !ast.ValueEqual(same, r.Head.Value.Value)) {
			same = nil
			break
		}
		same = r.Head.Value.Value
	}
	acc := t.p.naccs
	t.p.naccs++
	steps := make([]step, len(bodies))
	for i, r := range bodies {
		head := r.Head.Value
		if multi {
			head = r.Head.Key
		}
		s, err := t.compileSub(r.Body, newScope(nil), head, false, func(f *frame, v ast.Value) bool {
			for _, x := range f.accs[acc] {
				if ast.ValueEqual(x.Value, v) {
					return same != nil
				}
			}
			f.accs[acc] = append(f.accs[acc], termOf(v))
			return same != nil
		})
		if err != nil {
			return nil, err
		}
		steps[i] = s
	}
	memo := sr.memo
	sr.value = func(f *frame) (ast.Value, bool) {
		m := &f.rules[memo]
		if m.done {
			return m.value, m.defined
		}
		saved := f.accs[acc]
		f.accs[acc] = nil
		for _, s := range steps {
			if s(f) || (same != nil && len(f.accs[acc]) > 0) {
				break
			}
		}
		got := f.accs[acc]
		f.accs[acc] = saved
		if f.abort {
			return nil, false
		}
		m.done = true
		switch {
		case multi:
			m.value, m.defined = ast.NewSet(got...), true
		case len(got) == 1:
			m.value, m.defined = got[0].Value, true
		case len(got) > 1:
			f.abort = true
			m.done = false
			return nil, false
		case def != nil:
			m.value, m.defined = def.Head.Value.Value, true
		}
		return m.value, m.defined
	}
	return sr.value, nil
}
