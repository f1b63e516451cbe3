package redact

import (
	"bytes"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

// TestCompileSharesTablesOnlyForEqualPlans tries to make Compile hand one
// plan's tables to another: each variant changes one thing the tables
// depend on, including strings that would run together without their
// lengths in the key.
func TestCompileSharesTablesOnlyForEqualPlans(t *testing.T) {
	key := []byte("0123456789abcdef-hash-key")
	base := func() Plan {
		return Plan{
			Shape:          espoShape(),
			Hidden:         []string{"cost", "margin"},
			Masked:         map[string]string{"phone": policy.MaskLast4, "email": policy.MaskEmail},
			Visible:        []string{"name", "phone"},
			VisibleDefined: true,
			Record:         &funcRule{fields: []string{"assignedUserId"}},
			HashKey:        key,
			MaxRecordIDs:   10,
		}
	}
	b := base()
	first, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if first.tables != again.tables {
		t.Fatal("the same plan compiled twice built its tables twice")
	}
	variants := map[string]func(p *Plan){
		"hidden name":            func(p *Plan) { p.Hidden = []string{"cost", "margins"} },
		"hidden names run on":    func(p *Plan) { p.Hidden = []string{"costmargin"} },
		"hidden names split":     func(p *Plan) { p.Hidden = []string{"cos", "tmargin"} },
		"no hidden":              func(p *Plan) { p.Hidden = nil },
		"mask style":             func(p *Plan) { p.Masked = map[string]string{"phone": policy.MaskRedact, "email": policy.MaskEmail} },
		"mask name":              func(p *Plan) { p.Masked = map[string]string{"mobile": policy.MaskLast4, "email": policy.MaskEmail} },
		"one mask fewer":         func(p *Plan) { p.Masked = map[string]string{"phone": policy.MaskLast4} },
		"hash mask":              func(p *Plan) { p.Masked = map[string]string{"phone": policy.MaskHash, "email": policy.MaskEmail} },
		"visible name":           func(p *Plan) { p.Visible = []string{"name"} },
		"visible undefined":      func(p *Plan) { p.VisibleDefined = false },
		"no record rule":         func(p *Plan) { p.Record = nil },
		"rule reads every field": func(p *Plan) { p.Record = &funcRule{} },
		"rule reads another":     func(p *Plan) { p.Record = &funcRule{fields: []string{"teamId"}} },
		"hash key":               func(p *Plan) { p.HashKey = []byte("fedcba9876543210-hash-key") },
		"max record ids":         func(p *Plan) { p.MaxRecordIDs = 11 },
		"list path":              func(p *Plan) { p.Shape.ListPath = []string{"data"} },
		"record path":            func(p *Plan) { p.Shape.RecordPath = []string{"data"} },
		"fields path":            func(p *Plan) { p.Shape.FieldsPath = []string{"attributes"} },
		"id field":               func(p *Plan) { p.Shape.IDField = "uuid" },
		"total paths":            func(p *Plan) { p.Shape.TotalPaths = [][]string{{"meta", "total"}} },
		"total paths regrouped":  func(p *Plan) { p.Shape.TotalPaths = [][]string{{"meta"}, {"total"}} },
		"suite shape": func(p *Plan) {
			p.Shape = profile.Shape{ListPath: []string{"data"}, RecordPath: []string{"data"}, FieldsPath: []string{"attributes"}, IDField: "id"}
		},
	}
	for name, change := range variants {
		p := base()
		change(&p)
		c, err := p.Compile()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.tables == first.tables {
			t.Errorf("%s: compiled to the base plan's tables", name)
		}
	}
	// The offset and the rule itself are per request, never shared.
	p := base()
	p.Offset = 40
	other := &funcRule{fields: []string{"assignedUserId"}}
	p.Record = other
	c, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if c.tables != first.tables || c.offset != 40 || c.rule != other || first.offset != 0 {
		t.Fatal("offset or rule shared between plans, or tables not shared")
	}
}

// TestCompiledPlansRedactByTheirOwnDecision alternates two plans that
// differ only in what they hide, so a cache mix-up would leak a field.
func TestCompiledPlansRedactByTheirOwnDecision(t *testing.T) {
	body := `{"list":[{"id":"1","cost":"12.50","phone":"555-0100"}],"total":1}`
	for i := range 4 {
		hide := []string{"cost", "phone"}[i%2]
		keep := []string{"phone", "cost"}[i%2]
		p := Plan{Shape: espoShape(), Hidden: []string{hide}}
		c, err := p.Compile()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := c.Transform(&out, strings.NewReader(body), ModeList); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), `"`+hide+`"`) || !strings.Contains(out.String(), `"`+keep+`"`) {
			t.Fatalf("plan hiding %s wrote %s", hide, out.String())
		}
	}
}

// TestCompileErrorsAreNotCached: a plan that fails to compile fails every
// time, and does not stop a valid plan from compiling.
func TestCompileErrorsAreNotCached(t *testing.T) {
	bad := Plan{Shape: espoShape(), Masked: map[string]string{"phone": policy.MaskHash}, HashKey: []byte("short")}
	for range 2 {
		if _, err := bad.Compile(); err == nil {
			t.Fatal("hash masking with a 5-byte key compiled")
		}
	}
	neg := Plan{Shape: espoShape(), Offset: -1}
	if _, err := neg.Compile(); err == nil {
		t.Fatal("negative offset compiled")
	}
}
