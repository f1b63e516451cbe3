package report_test

import (
	"context"
	"testing"

	"github.com/crmgate/crmgate/policy/report"
	refpolicy "github.com/crmgate/crmgate/rego"
)

// BenchmarkAccessReference is the whole reference report: 5 roles × 53
// SuiteCRM modules × 7 actions × 2 MFA states.
func BenchmarkAccessReference(b *testing.B) {
	engine := loadEngine(b, refpolicy.FS)
	modules := suiteModules(b)
	for b.Loop() {
		if _, err := report.BuildAccess(context.Background(), report.AccessOptions{
			Engine: engine, Roles: referenceRoles, Modules: modules,
		}); err != nil {
			b.Fatal(err)
		}
	}
}
