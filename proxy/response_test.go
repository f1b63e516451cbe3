package proxy

import (
	"testing"
	"time"

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

// TestRequestTimeToTheSecond: input.request.time carries no fraction of a
// second, so requests of one subject within a second share the decision
// and record-filter caches the time is part of the key of.
func TestRequestTimeToTheSecond(t *testing.T) {
	start := time.Date(2026, 12, 8, 10, 30, 5, 999_999_999, time.FixedZone("CET", 3600))
	got := requestTime(start)
	if !got.Equal(time.Date(2026, 12, 8, 9, 30, 5, 0, time.UTC)) || got.Location() != time.UTC {
		t.Fatalf("requestTime = %v", got)
	}
	if requestTime(start.Add(-time.Millisecond)) != got {
		t.Fatal("two instants of one second differ")
	}
}
