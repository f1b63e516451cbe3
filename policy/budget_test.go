package policy

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestReadBudgetShape: a well-formed read_budget is decoded; every other
// shape (unknown units, non-positive or fractional counts, extra or missing
// keys, wrong types) is a RuleError and the decision denies, so a mistyped
// budget never becomes no budget.
func TestReadBudgetShape(t *testing.T) {
	good := map[string]ReadBudget{
		`{"records": 2000, "per": "1h"}`:   {Records: 2000, Per: time.Hour},
		`{"records": 1, "per": "90m"}`:     {Records: 1, Per: 90 * time.Minute},
		`{"per": "168h", "records": 5000}`: {Records: 5000, Per: 168 * time.Hour},
	}
	for src, want := range good {
		e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\nallow := true\n\nread_budget := " + src + "\n"})
		d, err := e.Decide(context.Background(), salesInput())
		if err != nil || d.ReadBudget == nil || *d.ReadBudget != want {
			t.Errorf("%s: budget %+v, err %v; want %+v", src, d.ReadBudget, err, want)
		}
	}
	bad := []string{
		`{"records": 0, "per": "1h"}`,
		`{"records": -5, "per": "1h"}`,
		`{"records": 2.5, "per": "1h"}`,
		`{"records": "2000", "per": "1h"}`,
		`{"records": 2000, "per": "1 hour"}`,
		`{"records": 2000, "per": "1d"}`,
		`{"records": 2000, "per": "0s"}`,
		`{"records": 2000, "per": "-1h"}`,
		`{"records": 2000, "per": "500ms"}`,
		`{"records": 2000, "per": "169h"}`,
		`{"records": 2000, "per": 3600}`,
		`{"records": 2000}`,
		`{"records": 2000, "per": "1h", "burst": 10}`,
		`{"record": 2000, "per": "1h"}`,
		`2000`,
		`{"records", "per"}`,
	}
	for _, src := range bad {
		e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\nallow := true\n\nread_budget := " + src + "\n"})
		d, err := e.Decide(context.Background(), salesInput())
		var re *RuleError
		if !errors.As(err, &re) || re.Rule != "read_budget" {
			t.Errorf("%s: err %v, want a read_budget RuleError", src, err)
		}
		if d.Allow {
			t.Errorf("%s: a bad budget allowed", src)
		}
	}
	// Undefined: no budget.
	e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\nallow := true\n"})
	if d, err := e.Decide(context.Background(), salesInput()); err != nil || d.ReadBudget != nil {
		t.Errorf("undefined read_budget: %+v %v", d.ReadBudget, err)
	}
}
