package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test rule (test_*).
type TestResult struct {
	// Name is the test rule's name, Package its package (e.g. "data.crmgate").
	Name    string
	Package string
	// Pass is true when the test succeeded. Fail is true when it evaluated
	// to false or undefined; Err is set when it could not be evaluated.
	// A skipped test (todo_test_*) has neither Pass, Fail nor Err.
	Pass bool
	Fail bool
	Err  error
	// Location is file:line of the test rule.
	Location string
	// Output is what the test printed (print()), useful when it fails.
	Output   string
	Duration time.Duration
}

// Test runs the Rego tests (*_test.rego) in src against its policies and
// data, the way `opa test` does. The error is for sources that do not load
// or compile; failing tests are reported in the results.
func Test(ctx context.Context, src Source) ([]TestResult, error) {
	loaded, err := readSource(src, "", true)
	if err != nil {
		return nil, fmt.Errorf("test policy: %w", err)
	}
	modules := maps.Clone(loaded.modules)
	maps.Copy(modules, loaded.tests)
	store := inmem.NewFromObject(loaded.data)
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("test policy: %w", err)
	}
	defer store.Abort(ctx, txn)

	runner := tester.NewRunner().
		SetCompiler(ast.NewCompiler().WithStrict(true).WithDefaultRegoVersion(ast.RegoV1).WithEnablePrintStatements(true)).
		SetStore(store).
		SetModules(modules).
		RaiseBuiltinErrors(true).
		CapturePrintOutput(true).
		SetTimeout(30 * time.Second)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return nil, fmt.Errorf("test policy: %w", err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{
			Name:     r.Name,
			Package:  r.Package,
			Fail:     r.Fail,
			Err:      r.Error,
			Duration: r.Duration,
			Output:   strings.TrimSpace(string(r.Output)),
		}
		if r.Location != nil {
			tr.Location = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
		}
		tr.Pass = !r.Fail && r.Error == nil && !r.Skip
		out = append(out, tr)
	}
	slices.SortStableFunc(out, func(a, b TestResult) int {
		return strings.Compare(a.Package+"."+a.Name, b.Package+"."+b.Name)
	})
	return out, nil
}
