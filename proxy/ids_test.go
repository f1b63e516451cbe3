package proxy

import (
	"regexp"
	"testing"
)

// TestNewIDs: both ids are canonical version 4 UUIDs, differ from each
// other, and do not repeat: the decision id is what a user quotes to an
// auditor, so two decisions must never share one.
func TestNewIDs(t *testing.T) {
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := make(map[string]bool)
	for range 10000 {
		req, dec := newIDs()
		for _, id := range []string{req, dec} {
			if !uuid4.MatchString(id) {
				t.Fatalf("%q is not a version 4 UUID", id)
			}
			if seen[id] {
				t.Fatalf("%q repeated", id)
			}
			seen[id] = true
		}
	}
}

func BenchmarkNewIDs(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		newIDs()
	}
}
