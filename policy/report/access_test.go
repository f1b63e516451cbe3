package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/report"
	"github.com/crmgate/crmgate/proxy/profile"
	refpolicy "github.com/crmgate/crmgate/rego"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// referenceRoles are the roles the demo configuration names (metrics.roles).
var referenceRoles = []string{"customer", "sales", "line_manager", "inventory_manager", "support", "admin"}

func loadEngine(t testing.TB, fsys fs.FS) *policy.Engine {
	t.Helper()
	e, err := policy.Load(context.Background(), policy.Options{Source: policy.Source{FS: fsys}})
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	return e
}

func suiteModules(t testing.TB) []string {
	t.Helper()
	p, err := profile.Builtin("suitecrm8")
	if err != nil {
		t.Fatal(err)
	}
	return p.Modules
}

func referenceAccess(t testing.TB, fsys fs.FS) *report.Access {
	t.Helper()
	a, err := report.BuildAccess(context.Background(), report.AccessOptions{
		Engine:  loadEngine(t, fsys),
		Roles:   referenceRoles,
		Modules: suiteModules(t),
		Profile: "suitecrm8",
		// An office network of rego/data.json, where the reference
		// policy's admins may act (ReportTime is within working hours).
		RemoteIP: "198.51.100.7",
	})
	if err != nil {
		t.Fatalf("build access report: %v", err)
	}
	return a
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update if the change is intended)\n--- got ---\n%s", path, got)
	}
}

// TestAccessReferenceGolden pins the access report of the reference policy.
// The revision is replaced, so that a change to a comment in the policy
// alone does not fail the test, but any change in what is decided does.
func TestAccessReferenceGolden(t *testing.T) {
	a := referenceAccess(t, refpolicy.FS)
	for _, f := range []struct {
		format report.Format
		file   string
	}{{report.Markdown, "access.md"}, {report.CSV, "access.csv"}, {report.HTML, "access.html"}} {
		t.Run(string(f.format), func(t *testing.T) {
			var buf bytes.Buffer
			if err := a.Write(&buf, f.format); err != nil {
				t.Fatal(err)
			}
			golden(t, f.file, bytes.ReplaceAll(buf.Bytes(), []byte(a.Revision), []byte("REVISION")))
		})
	}
}

// modifiedReference is the reference policy with edits applied; each edit
// must change the source, so the test fails rather than passes vacuously
// when the reference policy is rewritten.
func modifiedReference(t *testing.T, edits map[string][][2]string) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(refpolicy.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(refpolicy.FS, path)
		if err != nil {
			return err
		}
		src := string(b)
		for _, e := range edits[path] {
			if !strings.Contains(src, e[0]) {
				t.Fatalf("%s does not contain %q any more: update the test", path, e[0])
			}
			src = strings.Replace(src, e[0], e[1], 1)
		}
		out[path] = &fstest.MapFile{Data: []byte(src)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDiffModifiedReference(t *testing.T) {
	old := referenceAccess(t, refpolicy.FS)
	changed := modifiedReference(t, map[string][][2]string{
		"crmgate.rego": {
			// sales may now delete accounts; line managers lose export.
			{`"account": {"list", "read", "create", "update", "relate"},
		"contact": {"list", "read", "create", "update", "relate"},
		"lead": {"list", "read", "create", "update", "relate", "delete"}, # delete: own leads only`,
				`"account": {"list", "read", "create", "update", "relate", "delete"},
		"contact": {"list", "read", "create", "update", "relate"},
		"lead": {"list", "read", "create", "update", "relate", "delete"}, # delete: own leads only`},
			{`"opportunity": {"list", "read", "create", "update", "relate", "export"},`,
				`"opportunity": {"list", "read", "create", "update", "relate"},`},
			// Customers now need MFA for cases.
			{`require_mfa if "admin" in input.subject.roles`,
				"require_mfa if \"admin\" in input.subject.roles\n\nrequire_mfa if {\n\t\"customer\" in input.subject.roles\n\tclass == \"case\"\n}"},
		},
		"fields.rego": {
			// Phones are redacted instead of showing the last four digits.
			{`masked_fields[f] := "last4" if {`, `masked_fields[f] := "redact" if {`},
		},
		"data.json": {
			// work_log is no longer internal; salary_c is no longer read-only.
			{`"sales_internal": ["work_log", `, `"sales_internal": [`},
			{`"salary": ["salary_c", `, `"salary": [`},
		},
	})
	neu := referenceAccess(t, changed)
	d := report.CompareAccess(old, neu)
	if d.OldRevision == d.NewRevision {
		t.Fatalf("revisions equal: %s", d.OldRevision)
	}
	got := map[string]bool{}
	for _, c := range d.Changes {
		got[string(c.Sign)+" "+c.Module+" "+c.Role+" "+c.Text] = true
	}
	want := []string{
		"+ Accounts sales delete: deny → allow",
		"− Opportunities line_manager export: allow → deny",
		"− Cases customer list: allow → MFA",
		"− Cases customer update: allow → MFA",
		"~ Accounts sales phone_work mask last4 → redact",
		"~ Contacts line_manager phoneNumber mask last4 → redact",
		"+ Opportunities customer work_log no longer hidden",
		"+ Accounts sales salary_c no longer read-only",
		"+ Cases customer salary_c no longer read-only",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing change %q", w)
		}
	}
	unwanted := []string{
		// Unchanged grants and field rules must not be reported.
		"+ Accounts line_manager delete: deny → allow",
		"~ Leads sales phone_work mask last4 → redact", // leads are never masked
		"+ Accounts sales salary no longer read-only",  // still in the list
	}
	for _, u := range unwanted {
		if got[u] {
			t.Errorf("unexpected change %q", u)
		}
	}
	for _, c := range d.Changes {
		// salary_c stopped being read-only everywhere; nothing else
		// changed for leads or the warehouse.
		if (c.Module == "Leads" || c.Role == "inventory_manager") && c.Field != "salary_c" {
			t.Errorf("change outside the edit: %+v", c)
		}
	}

	t.Run("no change", func(t *testing.T) {
		if d := report.CompareAccess(old, referenceAccess(t, refpolicy.FS)); len(d.Changes) != 0 {
			t.Errorf("same policy: %d changes, first %+v", len(d.Changes), d.Changes[0])
		}
	})
	t.Run("reverse swaps signs", func(t *testing.T) {
		back := report.CompareAccess(neu, old)
		if len(back.Changes) != len(d.Changes) {
			t.Fatalf("reverse has %d changes, forward %d", len(back.Changes), len(d.Changes))
		}
		rev := map[string]bool{}
		for _, c := range back.Changes {
			rev[string(c.Sign)+" "+c.Module+" "+c.Role+" "+c.Text] = true
		}
		for _, w := range []string{"− Accounts sales delete: allow → deny", "+ Cases customer list: MFA → allow", "− Opportunities customer work_log hidden"} {
			if !rev[w] {
				t.Errorf("reverse diff lacks %q", w)
			}
		}
	})
	t.Run("formats", func(t *testing.T) {
		for _, f := range []report.Format{report.Markdown, report.CSV, report.HTML} {
			var buf bytes.Buffer
			if err := d.Write(&buf, f); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if !strings.Contains(buf.String(), "delete: deny → allow") {
				t.Errorf("%s output lacks the sales delete grant:\n%s", f, buf.String())
			}
		}
		var buf bytes.Buffer
		if err := d.Write(&buf, report.CSV); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatalf("csv: %v", err)
		}
		if len(recs) != len(d.Changes)+1 {
			t.Errorf("csv has %d records, want %d", len(recs), len(d.Changes)+1)
		}
	})
}

// fake is a Decider whose decisions come from a function.
type fake struct {
	decide   func(in *policy.Input) (policy.Decision, error)
	revision func() string
}

func (f fake) Decide(_ context.Context, in *policy.Input) (policy.Decision, error) {
	return f.decide(in)
}
func (f fake) Revision() string { return f.revision() }

func fixedRevision() func() string { return func() string { return "r1" } }

func TestAccessFailsClosed(t *testing.T) {
	broken := fstest.MapFS{"p.rego": {Data: []byte("package crmgate\n\nallow := \"yes\" if input.resource.module == \"Leads\"\n")}}
	calls := 0
	cases := []struct {
		name   string
		engine report.Decider
		want   string
	}{
		{"wrongly typed rule", loadEngine(t, broken), "rule allow"},
		{"evaluation error", fake{decide: func(in *policy.Input) (policy.Decision, error) {
			if in.Resource.Action == "export" {
				return policy.Decision{Allow: true}, errors.New("boom")
			}
			return policy.Decision{Allow: true}, nil
		}, revision: fixedRevision()}, "boom"},
		{"reload during the report", fake{decide: func(*policy.Input) (policy.Decision, error) {
			calls++
			return policy.Decision{Allow: true}, nil
		}, revision: func() string {
			if calls > 0 {
				return "r2"
			}
			return "r1"
		}}, "policy changed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := report.BuildAccess(context.Background(), report.AccessOptions{
				Engine: c.engine, Roles: []string{"sales"}, Modules: []string{"Accounts", "Leads"},
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q (report %+v)", err, c.want, a)
			}
		})
	}
	t.Run("no roles", func(t *testing.T) {
		_, err := report.BuildAccess(context.Background(), report.AccessOptions{
			Engine: loadEngine(t, refpolicy.FS), Roles: []string{""}, Modules: []string{"Accounts"},
		})
		if !errors.Is(err, report.ErrNoRoles) {
			t.Fatalf("err = %v, want ErrNoRoles", err)
		}
	})
}

// TestAccessStepUpIsNotAllow checks that a cell never says "allow" when the
// policy would step a subject without MFA up, whatever allow says.
func TestAccessStepUpIsNotAllow(t *testing.T) {
	pol := fstest.MapFS{"p.rego": {Data: []byte(`package crmgate

default allow := false

allow if "ops" in input.subject.roles

# Deletes need MFA; exports are allowed only with MFA evidence in amr.
require_mfa if input.resource.action == "delete"

allow if {
	"auditor" in input.subject.roles
	input.resource.action == "export"
	"mfa" in input.subject.amr
}

allow if {
	"odd" in input.subject.roles
	not input.subject.mfa
}

hidden_fields contains "secret" if input.subject.mfa
hidden_fields contains "other" if not input.subject.mfa
`)}}
	a, err := report.BuildAccess(context.Background(), report.AccessOptions{
		Engine: loadEngine(t, pol), Roles: []string{"ops", "auditor", "odd", "nobody"}, Modules: []string{"Leads", "Accounts"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cells := map[string]string{}
	fields := map[string]report.Fields{}
	for _, m := range a.Modules {
		for _, r := range m.Roles {
			fields[m.Module+"/"+r.Role] = r.Fields
			for _, c := range r.Cells {
				cells[m.Module+"/"+r.Role+"/"+c.Action] = c.String()
			}
		}
	}
	for key, want := range map[string]string{
		"Leads/ops/read":        "allow",
		"Leads/ops/delete":      "MFA",
		"Leads/auditor/export":  "MFA",
		"Leads/auditor/read":    "deny",
		"Accounts/odd/read":     "no-MFA only",
		"Accounts/odd/delete":   "deny",
		"Accounts/nobody/read":  "",
		"Accounts/ops/relate":   "allow",
		"Accounts/auditor/list": "deny",
	} {
		if got := cells[key]; got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	// Fields come from the MFA state that grants: ops reads without MFA,
	// the auditor exports only with it.
	if got := fields["Leads/ops"].Hidden; !slices.Equal(got, []string{"other"}) {
		t.Errorf("ops hidden = %v, want [other]", got)
	}
	if got := fields["Leads/auditor"].Hidden; !slices.Equal(got, []string{"secret"}) {
		t.Errorf("auditor hidden = %v, want [secret]", got)
	}
	if a.Omitted != 0 || len(a.Modules) != 2 {
		t.Errorf("modules %d, omitted %d", len(a.Modules), a.Omitted)
	}
}

func TestAccessOmitsModulesNobodyGets(t *testing.T) {
	a, err := report.BuildAccess(context.Background(), report.AccessOptions{
		Engine: loadEngine(t, refpolicy.FS), Roles: []string{"sales", "customer"},
		Modules: []string{"Campaigns", "Accounts", "Bugs", "Leads"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range a.Modules {
		got = append(got, m.Module)
	}
	if !slices.Equal(got, []string{"Accounts", "Leads"}) || a.Omitted != 2 {
		t.Errorf("modules %v omitted %d, want [Accounts Leads] omitted 2", got, a.Omitted)
	}
	for _, m := range a.Modules {
		if m.Module == "Leads" && (len(m.Roles) != 1 || m.Roles[0].Role != "sales") {
			t.Errorf("Leads rows %+v, want sales only (customers get nothing there)", m.Roles)
		}
	}
}

// TestAccessSamplesMatter shows why samples exist: without crm_user_id the
// reference policy grants sales nothing, and a samples file can say so.
func TestAccessSamplesMatter(t *testing.T) {
	samples, err := report.ParseSamples(strings.NewReader("sales:\n  id: s1\n  teams: [store-7]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := report.BuildAccess(context.Background(), report.AccessOptions{
		Engine: loadEngine(t, refpolicy.FS), Roles: []string{"sales"}, Modules: []string{"Accounts"}, Samples: samples,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Modules) != 0 {
		t.Errorf("sales without crm_user_id was granted %+v", a.Modules)
	}
}
