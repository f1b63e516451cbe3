package policy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// RuleError reports a contract rule whose value has the wrong type or shape,
// e.g. allow := "yes" or a masked_fields style crmgate does not know. The
// decision is unusable and callers must deny.
type RuleError struct {
	// Rule is the contract rule, e.g. "masked_fields".
	Rule string
	// Want describes the expected type.
	Want string
	// Got describes the value the policy produced.
	Got string
}

// Error implements error.
func (e *RuleError) Error() string {
	return fmt.Sprintf("rule %s: want %s, got %s", e.Rule, e.Want, e.Got)
}

// Decide evaluates the module-level contract rules for in (in.Record is
// ignored). Any evaluation error, conflicting rule values or wrongly typed
// rule is returned as an error; the returned Decision then denies.
func (e *Engine) Decide(ctx context.Context, in *Input) (Decision, error) {
	start := time.Now()
	c := e.state.Load()
	view, err := newInputView(in)
	if err != nil {
		return Decision{Revision: c.revision}, fmt.Errorf("decide: build input: %w", err)
	}
	var key []byte
	if c.cache != nil {
		// Keys of the reference policy run to several hundred bytes;
		// they are built on the stack.
		var kb [1024]byte
		if key, err = c.cache.key(view, kb[:0]); err != nil {
			return Decision{Revision: c.revision}, fmt.Errorf("decide: build input: %w", err)
		}
		if d, ok := c.cache.get(key); ok {
			d.Duration = time.Since(start)
			return d, nil
		}
	}
	input, err := view.value(false)
	if err != nil {
		return Decision{Revision: c.revision}, fmt.Errorf("decide: build input: %w", err)
	}
	res, err := c.evalContract(ctx, c.decide, in, input, decisionRules)
	if err != nil {
		return Decision{Revision: c.revision}, fmt.Errorf("decide: %w", err)
	}
	d, err := decodeDecision(res)
	if err != nil {
		return Decision{Revision: c.revision}, fmt.Errorf("decide: %w", err)
	}
	d.Revision = c.revision
	if c.cache != nil {
		c.cache.put(key, d)
	}
	d.Duration = time.Since(start)
	return d, nil
}

// Record evaluates record_allow and record_hidden_fields for in.Record, which
// must be set. An undefined record_allow allows (the policy does not filter
// records); any error denies.
func (e *Engine) Record(ctx context.Context, in *Input) (RecordDecision, error) {
	c := e.state.Load()
	input, err := inputValue(in, true)
	if err != nil {
		return RecordDecision{}, fmt.Errorf("record rule: build input: %w", err)
	}
	res, err := c.evalContract(ctx, c.record, in, input, recordRules)
	if err != nil {
		return RecordDecision{}, fmt.Errorf("record rule: %w", err)
	}
	d, err := decodeRecord(res)
	if err != nil {
		return RecordDecision{}, fmt.Errorf("record rule: %w", err)
	}
	return d, nil
}

// eval runs one prepared query and returns its single result object.
func (c *compiled) eval(ctx context.Context, q rego.PreparedEvalQuery, in *Input, input ast.Value) (*ast.Term, error) {
	opts := []rego.EvalOption{
		rego.EvalParsedInput(input),
		rego.EvalMetrics(metrics.NoOp()),
	}
	if !in.Request.Time.IsZero() {
		// time.now_ns() then agrees with input.request.time, so a logged
		// decision replays exactly.
		opts = append(opts, rego.EvalTime(in.Request.Time))
	}
	if ctx.Done() != nil {
		// Cancel through context.AfterFunc rather than letting OPA start a
		// watcher goroutine for every evaluation.
		cancel := topdown.NewCancel()
		stop := context.AfterFunc(ctx, cancel.Cancel)
		defer stop()
		opts = append(opts, rego.EvalExternalCancel(cancel))
	}
	rs, err := q.Eval(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if len(rs) != 1 {
		return nil, errNoResult
	}
	t, ok := rs[0].Bindings["result"].(*ast.Term)
	if !ok {
		return nil, errNoResult
	}
	return t, nil
}

// evalContract runs a contract query and checks the shape of its result.
func (c *compiled) evalContract(ctx context.Context, q rego.PreparedEvalQuery, in *Input, input ast.Value, rules []string) (result, error) {
	t, err := c.eval(ctx, q, in, input)
	if err != nil {
		return result{}, err
	}
	arr, ok := t.Value.(*ast.Array)
	if !ok || arr.Len() != len(rules) {
		return result{}, errNoResult
	}
	return result{arr: arr, rules: rules}, nil
}

// result is the evaluated contract query: one element per rule, in the
// order of the rules slice the query was built from.
type result struct {
	arr   *ast.Array
	rules []string
}

// value returns a contract rule's value, or nil when the policy left it
// undefined.
func (r result) value(rule string) (*ast.Term, error) {
	i := slices.Index(r.rules, rule)
	if i < 0 || i >= r.arr.Len() {
		return nil, errNoResult
	}
	wrapped, ok := r.arr.Elem(i).Value.(*ast.Array)
	if !ok || wrapped.Len() > 1 {
		return nil, errNoResult
	}
	if wrapped.Len() == 0 {
		return nil, nil
	}
	return wrapped.Elem(0), nil
}

func decodeDecision(obj result) (Decision, error) {
	var d Decision
	var err error
	if d.Allow, err = boolRule(obj, "allow", false); err != nil {
		return Decision{}, err
	}
	if d.RequireMFA, err = boolRule(obj, "require_mfa", false); err != nil {
		return Decision{}, err
	}
	if d.Reasons, _, err = setRule(obj, "reasons"); err != nil {
		return Decision{}, err
	}
	if d.HiddenFields, _, err = setRule(obj, "hidden_fields"); err != nil {
		return Decision{}, err
	}
	if d.MaskedFields, err = maskRule(obj, "masked_fields"); err != nil {
		return Decision{}, err
	}
	if d.VisibleFields, d.VisibleDefined, err = setRule(obj, "visible_fields"); err != nil {
		return Decision{}, err
	}
	if d.ReadonlyFields, _, err = setRule(obj, "readonly_fields"); err != nil {
		return Decision{}, err
	}
	if d.ReadBudget, err = budgetRule(obj, "read_budget"); err != nil {
		return Decision{}, err
	}
	return d, nil
}

func decodeRecord(obj result) (RecordDecision, error) {
	var d RecordDecision
	var err error
	if d.Allow, err = boolRule(obj, "record_allow", true); err != nil {
		return RecordDecision{}, err
	}
	if d.HiddenFields, _, err = setRule(obj, "record_hidden_fields"); err != nil {
		return RecordDecision{}, err
	}
	return d, nil
}

func boolRule(obj result, rule string, def bool) (bool, error) {
	t, err := obj.value(rule)
	if err != nil || t == nil {
		return def, err
	}
	b, ok := t.Value.(ast.Boolean)
	if !ok {
		return false, &RuleError{Rule: rule, Want: "boolean", Got: describe(t)}
	}
	return bool(b), nil
}

// setRule decodes a set of strings, sorted for stable output. defined is
// false when the policy left the rule undefined.
func setRule(obj result, rule string) (out []string, defined bool, err error) {
	t, err := obj.value(rule)
	if err != nil || t == nil {
		return nil, false, err
	}
	set, ok := t.Value.(ast.Set)
	if !ok {
		return nil, false, &RuleError{Rule: rule, Want: "set of strings", Got: describe(t)}
	}
	out = make([]string, 0, set.Len())
	for _, x := range set.Slice() {
		s, ok := x.Value.(ast.String)
		if !ok {
			return nil, false, &RuleError{Rule: rule, Want: "set of strings", Got: "set containing " + describe(x)}
		}
		out = append(out, string(s))
	}
	slices.Sort(out)
	return out, true, nil
}

// maskRule decodes masked_fields: an object of field name to a known style.
func maskRule(obj result, rule string) (map[string]string, error) {
	t, err := obj.value(rule)
	if err != nil || t == nil {
		return nil, err
	}
	o, ok := t.Value.(ast.Object)
	if !ok {
		return nil, &RuleError{Rule: rule, Want: "object of field to mask style", Got: describe(t)}
	}
	out := make(map[string]string, o.Len())
	err = o.Iter(func(k, v *ast.Term) error {
		field, ok := k.Value.(ast.String)
		if !ok {
			return &RuleError{Rule: rule, Want: "string field names", Got: "key " + describe(k)}
		}
		style, ok := v.Value.(ast.String)
		if !ok || !validMask(string(style)) {
			return &RuleError{Rule: rule, Want: `mask style "last4", "email", "redact" or "hash"`, Got: describe(v) + " for field " + string(field)}
		}
		out[string(field)] = string(style)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func validMask(s string) bool {
	switch s {
	case MaskLast4, MaskEmail, MaskRedact, MaskHash:
		return true
	}
	return false
}

// describe names a value's type and shows a bounded excerpt of it.
func describe(t *ast.Term) string {
	s := t.String()
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return ast.ValueName(t.Value) + " " + s
}
