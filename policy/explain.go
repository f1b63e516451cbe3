package policy

import (
	"context"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Explain makes the same decision as Decide and, for people reading
// `crmgate explain`, lists the value of every rule in the package root for
// this input as "name = value" lines, sorted by name (helpers included, so
// the reader sees why a contract rule came out as it did). Undefined rules
// are left out. When in.Record is set the record rules are explained too.
func (e *Engine) Explain(ctx context.Context, in *Input) (Decision, []string, error) {
	d, err := e.Decide(ctx, in)
	if err != nil {
		return d, nil, fmt.Errorf("explain: %w", err)
	}
	c := e.state.Load()
	if c.revision != d.Revision {
		// A reload happened in between; explain what was decided.
		return d, []string{"policy reloaded during explain; rule values not shown"}, nil
	}
	input, err := inputValue(in, in.Record != nil)
	if err != nil {
		return d, nil, fmt.Errorf("explain: build input: %w", err)
	}
	t, err := c.eval(ctx, c.whole, in, input)
	if err != nil {
		return d, nil, fmt.Errorf("explain: %w", err)
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return d, nil, fmt.Errorf("explain: %w", errNoResult)
	}
	lines := make([]string, 0, obj.Len())
	obj.Foreach(func(k, v *ast.Term) {
		name := k.String()
		if s, ok := k.Value.(ast.String); ok {
			name = string(s)
		}
		lines = append(lines, name+" = "+v.String())
	})
	slices.Sort(lines)
	if in.Record != nil {
		rd, err := e.Record(ctx, in)
		if err != nil {
			return d, lines, fmt.Errorf("explain: %w", err)
		}
		lines = append(lines, fmt.Sprintf("record decision: allow=%t hidden_fields=%v", rd.Allow, rd.HiddenFields))
	}
	return d, lines, nil
}
