package policy

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxBudgetWindow bounds read_budget's "per", a Go duration ("1h", "90m"):
// anything time.ParseDuration does not read ("1d", "1 hour") is refused, as
// are windows under a second or over a week (a counter that outlives any
// incident review is a lockout, not a budget).
const maxBudgetWindow = 7 * 24 * time.Hour

// budgetRule decodes read_budget: {"records": N, "per": "1h"} with N a
// positive integer and per a Go duration of at most a week. Anything else is
// a RuleError, so the decision denies: a misspelled budget must not turn
// into no budget.
func budgetRule(obj result, rule string) (*ReadBudget, error) {
	t, err := obj.value(rule)
	if err != nil || t == nil {
		return nil, err
	}
	const want = `{"records": positive integer, "per": duration such as "1h"}`
	o, ok := t.Value.(ast.Object)
	if !ok || o.Len() != 2 {
		return nil, &RuleError{Rule: rule, Want: want, Got: describe(t)}
	}
	rt := o.Get(ast.StringTerm("records"))
	pt := o.Get(ast.StringTerm("per"))
	if rt == nil || pt == nil {
		return nil, &RuleError{Rule: rule, Want: want, Got: describe(t)}
	}
	num, ok := rt.Value.(ast.Number)
	if !ok {
		return nil, &RuleError{Rule: rule, Want: want, Got: "records " + describe(rt)}
	}
	n, err := strconv.ParseInt(json.Number(num).String(), 10, 64)
	if err != nil || n <= 0 {
		return nil, &RuleError{Rule: rule, Want: want, Got: "records " + describe(rt)}
	}
	ps, ok := pt.Value.(ast.String)
	if !ok {
		return nil, &RuleError{Rule: rule, Want: want, Got: "per " + describe(pt)}
	}
	per, err := time.ParseDuration(string(ps))
	if err != nil || per < time.Second || per > maxBudgetWindow {
		return nil, &RuleError{Rule: rule, Want: want + " between 1s and 168h", Got: "per " + describe(pt)}
	}
	return &ReadBudget{Records: n, Per: per}, nil
}
