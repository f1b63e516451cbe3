package rego_test

import (
	"context"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/rego"
)

// TestRegoTests runs every test_* rule of the reference policy, so that
// `go test ./...` fails when the policy and its tests disagree.
func TestRegoTests(t *testing.T) {
	results, err := policy.Test(context.Background(), policy.Source{FS: rego.FS})
	if err != nil {
		t.Fatalf("run rego tests: %v", err)
	}
	if len(results) < 20 {
		t.Fatalf("found %d rego tests, want at least 20: are the *_test.rego files embedded?", len(results))
	}
	var failed []string
	for _, r := range results {
		if !r.Pass {
			line := r.Package + "." + r.Name + " (" + r.Location + ")"
			if r.Err != nil {
				line += ": " + r.Err.Error()
			}
			if r.Output != "" {
				line += "\n\t" + strings.ReplaceAll(r.Output, "\n", "\n\t")
			}
			failed = append(failed, line)
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d rego tests failed:\n%s", len(failed), len(results), strings.Join(failed, "\n"))
	}
}

// TestReferencePolicyLoadsCleanly guards the example teams copy: it must
// compile in strict mode and contain no rule crmgate would warn about.
func TestReferencePolicyLoadsCleanly(t *testing.T) {
	e, err := policy.Load(context.Background(), policy.Options{Source: policy.Source{FS: rego.FS}})
	if err != nil {
		t.Fatalf("load reference policy: %v", err)
	}
	if w := e.Warnings(); len(w) > 0 {
		t.Errorf("reference policy has warnings:\n%s", strings.Join(w, "\n"))
	}
}
