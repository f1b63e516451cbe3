package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/crmgate/crmgate/policy/cond"
)

// Pushdown is what the CRM's own list query can carry of record_allow for
// this request: a condition and how it relates to the rule. The proxy adds
// Cond to the upstream list request; with cond.Exact the CRM then returns
// full pages and true totals. Records that come back are still checked.
func (f *RecordFilter) Pushdown() cond.Pushdown { return f.cf.push }

// MayHideFields reports whether record_hidden_fields can hide a field of
// some record for this request. When it can, a list that filters or sorts
// on fields drops the records whose matched field is hidden, so the CRM's
// count of the list is not the subject's even with an exact pushdown.
func (f *RecordFilter) MayHideFields() bool { return f.cf.mayHide }

// recordPushdown works out the Pushdown of record_allow for one input.
//
// record_allow is partially evaluated with input.record unknown, for the
// value true. The residual is a disjunction of conjunctions; each
// conjunct that compares one record field with a constant (==, or `in` a
// constant collection) becomes a Cond leaf. The result is exact only when
// true-residual and rule agree on every record: record_allow must have
// `default record_allow := false` and every other record_allow rule must
// give true (so the rule is false exactly when no body holds, and never
// undefined, which the contract reads as allowed), there are no support
// rules, and every conjunct translated. A conjunct that does not translate
// is dropped, which can only widen the condition: the level is then
// partial, and none if the widening reaches "every record".
func (fc *filterCache) recordPushdown(ctx context.Context, c *compiled, in *Input, input ast.Value) (cond.Pushdown, error) {
	none := func(reason string) (cond.Pushdown, error) {
		return cond.Pushdown{Level: cond.None, Cond: cond.Cond{Op: cond.True}, Reason: reason}, nil
	}
	if fc.pushUnsafe != "" {
		return none(fc.pushUnsafe)
	}
	query := ast.NewBody(ast.Equality.Expr(ast.NewTerm(fc.root.Append(ast.StringTerm("record_allow"))), ast.BooleanTerm(true)))
	r := rego.New(
		rego.ParsedQuery(query),
		rego.Compiler(c.compiler),
		rego.Store(c.store),
		rego.ParsedInput(input),
		rego.Unknowns([]string{"input.record"}),
		rego.StrictBuiltinErrors(true),
		rego.Metrics(metrics.NoOp()),
		rego.Time(in.Request.Time),
	)
	pq, err := r.Partial(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return cond.Pushdown{}, ctxErr
		}
		return none("partial evaluation: " + err.Error())
	}
	if len(pq.Support) > 0 {
		return none("the record rule's residual needs support rules")
	}
	return pushdownOf(pq.Queries), nil
}

// mayHideFields partially evaluates record_hidden_fields for one input:
// without a residual query no record can have a field hidden. Any doubt
// (an error, a cancelled context aside) answers true.
func (fc *filterCache) mayHideFields(ctx context.Context, c *compiled, in *Input, input ast.Value) (bool, error) {
	if !fc.hiddenDefined {
		return false, nil
	}
	ref := fc.root.Append(ast.StringTerm("record_hidden_fields")).Append(ast.VarTerm("__crmgate_key__"))
	r := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
		rego.Compiler(c.compiler),
		rego.Store(c.store),
		rego.ParsedInput(input),
		rego.Unknowns([]string{"input.record"}),
		rego.StrictBuiltinErrors(true),
		rego.Metrics(metrics.NoOp()),
		rego.Time(in.Request.Time),
	)
	pq, err := r.Partial(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return false, ctxErr
		}
		return true, nil
	}
	return len(pq.Queries) > 0 || len(pq.Support) > 0, nil
}

// pushUnsafeReason says why no input can have an exact pushdown under
// these rules, or "" when the shape of record_allow allows one.
func pushUnsafeReason(compiler *ast.Compiler, root ast.Ref) string {
	rules := compiler.GetRules(root.Append(ast.StringTerm("record_allow")))
	if len(rules) == 0 {
		return "the policy has no record_allow rules"
	}
	hasDefault := false
	for _, r := range rules {
		if len(r.Head.Args) > 0 || len(r.Head.Ref()) != 1 || r.Head.RuleKind() != ast.SingleValue {
			return "record_allow is not a boolean rule"
		}
		v := r.Head.Value
		if r.Default {
			if v == nil || !v.Equal(ast.BooleanTerm(false)) {
				return "record_allow's default is not false"
			}
			hasDefault = true
			continue
		}
		if v == nil || !v.Equal(ast.BooleanTerm(true)) {
			return "a record_allow rule gives a value other than true"
		}
		if r.Else != nil {
			return "a record_allow rule has an else branch"
		}
	}
	if !hasDefault {
		return "record_allow has no default false (undefined means allowed)"
	}
	return ""
}

// pushdownOf translates a residual (one body per way record_allow holds).
func pushdownOf(queries []ast.Body) cond.Pushdown {
	var (
		disjuncts []cond.Cond
		dropped   []string
	)
	for _, body := range queries {
		var conj []cond.Cond
		for _, e := range body {
			c, ok := exprCond(e)
			if !ok {
				dropped = append(dropped, e.String())
				continue
			}
			conj = append(conj, c)
		}
		disjuncts = append(disjuncts, and(conj))
	}
	c := or(disjuncts)
	switch {
	case len(dropped) == 0:
		return cond.Pushdown{Level: cond.Exact, Cond: c}
	case c.Op == cond.True:
		return cond.Pushdown{Level: cond.None, Cond: c, Reason: "untranslatable: " + strings.Join(dropped, "; ")}
	default:
		return cond.Pushdown{Level: cond.Partial, Cond: c, Reason: "untranslatable: " + strings.Join(dropped, "; ")}
	}
}

// exprCond translates one residual expression: a record field compared
// with a scalar constant, or a record field in a constant set or array of
// scalars. Negation, with-modifiers, null and composite values are not
// translated: a CRM's query languages do not compare them as Rego does.
func exprCond(e *ast.Expr) (cond.Cond, bool) {
	if e.Negated || len(e.With) > 0 || !e.IsCall() {
		return cond.Cond{}, false
	}
	op := e.Operator()
	args := e.Operands()
	switch {
	case len(args) == 2 && (op.Equal(ast.Equality.Ref()) || op.Equal(ast.Equal.Ref())):
		field, val := args[0], args[1]
		if _, ok := recordField(field); !ok {
			field, val = val, field
		}
		name, ok := recordField(field)
		if !ok {
			return cond.Cond{}, false
		}
		v, ok := scalar(val)
		if !ok {
			return cond.Cond{}, false
		}
		return cond.Cond{Op: cond.Eq, Field: name, Values: []any{v}}, true
	case len(args) == 2 && op.Equal(ast.Member.Ref()):
		name, ok := recordField(args[0])
		if !ok {
			return cond.Cond{}, false
		}
		var terms []*ast.Term
		switch coll := args[1].Value.(type) {
		case ast.Set:
			terms = coll.Slice()
		case *ast.Array:
			for i := range coll.Len() {
				terms = append(terms, coll.Elem(i))
			}
		default:
			return cond.Cond{}, false
		}
		vals := make([]any, 0, len(terms))
		for _, t := range terms {
			v, ok := scalar(t)
			if !ok {
				return cond.Cond{}, false
			}
			vals = append(vals, v)
		}
		return in(name, vals), true
	}
	return cond.Cond{}, false
}

// recordField is the field name F of input.record.F.
func recordField(t *ast.Term) (string, bool) {
	ref, ok := t.Value.(ast.Ref)
	if !ok || len(ref) != 3 || !ref[0].Equal(ast.InputRootDocument) {
		return "", false
	}
	if s, ok := ref[1].Value.(ast.String); !ok || s != "record" {
		return "", false
	}
	name, ok := ref[2].Value.(ast.String)
	return string(name), ok
}

// scalar converts a constant string, number or boolean; null is refused
// (Rego's input.record.f == null holds for a stored null, SQL's never).
func scalar(t *ast.Term) (any, bool) {
	switch v := t.Value.(type) {
	case ast.String:
		return string(v), true
	case ast.Number:
		return json.Number(v.String()), true
	case ast.Boolean:
		return bool(v), true
	}
	return nil, false
}

// in is field ∈ vals, deduplicated (Rego sets are; arrays may not be) in a
// stable order, as Eq for one value and False for none.
func in(field string, vals []any) cond.Cond {
	slices.SortFunc(vals, func(a, b any) int { return strings.Compare(fmt.Sprintf("%T%v", a, a), fmt.Sprintf("%T%v", b, b)) })
	vals = slices.CompactFunc(vals, func(a, b any) bool { return a == b })
	switch len(vals) {
	case 0:
		return cond.Cond{Op: cond.False}
	case 1:
		return cond.Cond{Op: cond.Eq, Field: field, Values: vals}
	}
	return cond.Cond{Op: cond.In, Field: field, Values: vals}
}

// and of no conditions is True; False absorbs.
func and(cs []cond.Cond) cond.Cond {
	var args []cond.Cond
	for _, c := range cs {
		switch c.Op {
		case cond.True:
			continue
		case cond.False:
			return c
		}
		args = append(args, c)
	}
	switch len(args) {
	case 0:
		return cond.Cond{Op: cond.True}
	case 1:
		return args[0]
	}
	return cond.Cond{Op: cond.And, Args: args}
}

// or of no conditions is False; True absorbs; equalities and sets on one
// field merge into one In, so "owner is me or owner in my team" is one
// owner IN (...) the CRM can use an index for.
func or(cs []cond.Cond) cond.Cond {
	var args []cond.Cond
	byField := map[string]int{}
	for _, c := range cs {
		switch c.Op {
		case cond.True:
			return c
		case cond.False:
			continue
		case cond.Eq, cond.In:
			if i, ok := byField[c.Field]; ok {
				args[i] = in(c.Field, append(slices.Clone(args[i].Values), c.Values...))
				continue
			}
			byField[c.Field] = len(args)
		}
		args = append(args, c)
	}
	switch len(args) {
	case 0:
		return cond.Cond{Op: cond.False}
	case 1:
		return args[0]
	}
	return cond.Cond{Op: cond.Or, Args: args}
}
