package proxy

import (
	"testing"

	"github.com/crmgate/crmgate/policy"
)

type panickyRule struct{}

func (panickyRule) Fields() []string { return nil }
func (panickyRule) Check(map[string]any) (policy.RecordDecision, error) {
	panic("boom")
}

// TestSafeRuleTurnsPanicsIntoErrors: a panic in the record rule denies the
// record with an error instead of crashing the list's transform goroutine.
func TestSafeRuleTurnsPanicsIntoErrors(t *testing.T) {
	d, err := safeRule{panickyRule{}}.Check(map[string]any{"id": "1"})
	if err == nil || d.Allow {
		t.Fatalf("decision %+v, err %v: a panicking rule must deny with an error", d, err)
	}
}
