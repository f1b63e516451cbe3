package policy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/rego"
)

func TestWrongTypedRulesAreErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule   string
		policy string
		record bool
	}{
		{"allow", `allow := "yes"`, false},
		{"allow", `allow := 1`, false},
		{"require_mfa", `require_mfa := "true"`, false},
		{"reasons", `reasons := "because"`, false},
		{"reasons", `reasons := ["because"]`, false},
		{"hidden_fields", `hidden_fields contains 1`, false},
		{"hidden_fields", `hidden_fields := {"a": 1}`, false},
		{"masked_fields", `masked_fields := {"phone": "rot13"}`, false},
		{"masked_fields", `masked_fields := {"phone": 4}`, false},
		{"masked_fields", `masked_fields := {1: "last4"}`, false},
		{"masked_fields", `masked_fields contains "phone"`, false},
		{"visible_fields", `visible_fields := ["name"]`, false},
		{"visible_fields", `visible_fields contains true`, false},
		{"readonly_fields", `readonly_fields := "name"`, false},
		{"record_allow", `record_allow := "true"`, true},
		{"record_allow", `record_allow := null`, true},
		{"record_hidden_fields", `record_hidden_fields contains 2`, true},
		{"record_hidden_fields", `record_hidden_fields := {"x"} if input.record.id`, false}, // undefined without a record: fine
	}
	for _, tt := range tests {
		t.Run(tt.rule+"/"+tt.policy, func(t *testing.T) {
			t.Parallel()
			// allow is true elsewhere so a wrong-typed rule cannot hide
			// behind a deny.
			base := "package crmgate\n\n"
			if tt.rule != "allow" {
				base += "allow := true\n\n"
			}
			e := load(t, map[string]string{"crmgate.rego": base + tt.policy + "\n"})
			in := salesInput()
			in.Record = map[string]any{"id": "r-1"}
			var err error
			var allowed bool
			if tt.record {
				var rd RecordDecision
				rd, err = e.Record(context.Background(), in)
				allowed = rd.Allow
			} else {
				var d Decision
				d, err = e.Decide(context.Background(), in)
				allowed = d.Allow
			}
			if strings.Contains(tt.policy, "input.record.id") {
				if err != nil {
					t.Fatalf("undefined rule gave error %v", err)
				}
				return
			}
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("error = %v, want a *RuleError", err)
			}
			if re.Rule != tt.rule || re.Want == "" || re.Got == "" {
				t.Errorf("RuleError = %+v, want rule %s with want/got", re, tt.rule)
			}
			if allowed {
				t.Error("a wrongly typed policy allowed")
			}
		})
	}
}

func TestEvaluationErrorsDeny(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"conflicting allow":    "allow := true\n\nallow := false if input.subject.id == \"alice\"",
		"builtin error":        "allow if to_number(input.subject.id) > 0",
		"conflicting masks":    "allow := true\n\nmasked_fields[\"phone\"] := \"last4\"\n\nmasked_fields[\"phone\"] := \"redact\"",
		"division by zero":     "allow if 1 / count(input.subject.groups) > 0",
		"record rule conflict": "allow := true\n\nrecord_allow := true\n\nrecord_allow := false if input.record.id",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\n" + body + "\n"})
			in := salesInput()
			in.Record = map[string]any{"id": "r-1"}
			if strings.Contains(name, "record") {
				rd, err := e.Record(context.Background(), in)
				if err == nil || rd.Allow {
					t.Errorf("record = %+v, %v; want error and deny", rd, err)
				}
				return
			}
			d, err := e.Decide(context.Background(), in)
			if err == nil || d.Allow {
				t.Errorf("decide = %+v, %v; want error and deny", d, err)
			}
			if d.Revision == "" {
				t.Error("error decision lacks the revision")
			}
		})
	}
}

func TestUndefinedRulesTakeDefaults(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\nallow if input.never\n"})
	in := salesInput()
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.RequireMFA || d.VisibleDefined || d.Reasons != nil || d.HiddenFields != nil ||
		d.MaskedFields != nil || d.VisibleFields != nil || d.ReadonlyFields != nil {
		t.Errorf("decision = %+v, want every default", d)
	}
	if d.Revision != e.Revision() || d.Duration <= 0 {
		t.Errorf("revision %q duration %v not filled", d.Revision, d.Duration)
	}
	in.Record = map[string]any{"id": "r-1"}
	rd, err := e.Record(context.Background(), in)
	if err != nil || !rd.Allow || rd.HiddenFields != nil {
		t.Errorf("record = %+v, %v; want allow (undefined record_allow does not filter)", rd, err)
	}
	if _, err := e.Record(context.Background(), salesInput()); err == nil {
		t.Error("Record without a record succeeded")
	}
	if _, err := e.Decide(context.Background(), &Input{}); err == nil {
		t.Error("Decide without a subject succeeded")
	}
	if _, err := e.Decide(context.Background(), nil); err == nil {
		t.Error("Decide with nil input succeeded")
	}
}

func TestDecisionValuesAreDecodedSorted(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{"crmgate.rego": `package crmgate

allow := true

require_mfa := true

reasons contains r if some r in ["zeta", "alpha", "mid"]

hidden_fields := {"b", "a"}

masked_fields := {"phone": "last4", "email": "email", "ssn": "redact", "iban": "hash"}

visible_fields := set()

readonly_fields contains "y"

readonly_fields contains "x"

default record_allow := false

record_allow if input.record.assigned_user_id == input.subject.attributes.crm_user_id

record_hidden_fields contains "salary" if input.record.id == "r-2"
`})
	d, err := e.Decide(context.Background(), salesInput())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow || !d.RequireMFA {
		t.Errorf("allow/require_mfa = %v/%v", d.Allow, d.RequireMFA)
	}
	check := func(name string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("reasons", d.Reasons, []string{"alpha", "mid", "zeta"})
	check("hidden", d.HiddenFields, []string{"a", "b"})
	check("readonly", d.ReadonlyFields, []string{"x", "y"})
	if !d.VisibleDefined || len(d.VisibleFields) != 0 {
		t.Errorf("visible = %q defined=%v, want defined and empty (nothing but the id)", d.VisibleFields, d.VisibleDefined)
	}
	if len(d.MaskedFields) != 4 || d.MaskedFields["iban"] != MaskHash || d.MaskedFields["phone"] != MaskLast4 {
		t.Errorf("masked = %v", d.MaskedFields)
	}

	for _, tt := range []struct {
		record map[string]any
		allow  bool
		hidden []string
	}{
		{map[string]any{"id": "r-1", "assigned_user_id": "u-sales1"}, true, nil},
		{map[string]any{"id": "r-2", "assigned_user_id": "u-sales1"}, true, []string{"salary"}},
		{map[string]any{"id": "r-3", "assigned_user_id": "u-sales2"}, false, nil},
		{map[string]any{"id": "r-4"}, false, nil},
	} {
		in := salesInput()
		in.Record = tt.record
		rd, err := e.Record(context.Background(), in)
		if err != nil || rd.Allow != tt.allow || !slices.Equal(rd.HiddenFields, tt.hidden) && len(tt.hidden)+len(rd.HiddenFields) > 0 {
			t.Errorf("record %v = %+v, %v; want allow=%v hidden=%v", tt.record, rd, err, tt.allow, tt.hidden)
		}
	}
}

// TestInputShape pins the input document policies are written against.
func TestInputShape(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{"crmgate.rego": `package crmgate

allow := true

reasons contains sprintf("%s=%v", [k, v]) if some k, v in input.subject

reasons contains sprintf("request.%s=%v", [k, v]) if some k, v in input.request

reasons contains sprintf("resource.%s=%v", [k, v]) if some k, v in input.resource

reasons contains "now matches request time" if time.now_ns() == time.parse_rfc3339_ns(input.request.time)
`})
	in := salesInput()
	in.Subject.Email = "alice@shop.example"
	in.Subject.MFA = true
	in.Subject.AMR = []string{"pwd", "otp"}
	in.Subject.AuthTime = 1763900000
	in.Request.Query = map[string][]string{"page[size]": {"20"}}
	in.Resource = Resource{Module: "Accounts", ID: "42", Action: "update", Fields: []string{"name"}, Body: map[string]any{"name": "Shop", "n": 1.5}}
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`id=alice`, `roles=["sales"]`, `groups=[]`, `teams=["store-12"]`,
		`attributes={"crm_user_id": "u-sales1"}`, `mfa=true`, `amr=["pwd", "otp"]`,
		`email=alice@shop.example`, `auth=session`, `auth_time=1763900000`,
		`request.time=2026-11-23T12:00:00Z`, `request.method=GET`, `request.query={"page[size]": ["20"]}`,
		`resource.module=Accounts`, `resource.id=42`, `resource.fields=["name"]`,
		`resource.body={"n": 1.5, "name": "Shop"}`, "now matches request time",
	} {
		if !slices.Contains(d.Reasons, want) {
			t.Errorf("input lacks %s; got %q", want, d.Reasons)
		}
	}
	for _, absent := range []string{"name=", "acr=", "request.remote_ip="} {
		for _, r := range d.Reasons {
			if strings.HasPrefix(r, absent) {
				t.Errorf("empty field present in input: %s", r)
			}
		}
	}
}

// TestCopiedSubjectDoesNotReuseCache tries to get around the per-subject
// cache: a copy whose roles are changed must be decided on its own roles.
func TestCopiedSubjectDoesNotReuseCache(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\nallow if \"admin\" in input.subject.roles\n"})
	ctx := context.Background()
	admin := &Subject{ID: "sam", Roles: []string{"admin"}}
	in := &Input{Subject: admin, Resource: Resource{Module: "Users", Action: "delete"}}
	if d, err := e.Decide(ctx, in); err != nil || !d.Allow {
		t.Fatalf("admin decide = %+v, %v", d, err)
	}
	demoted := &Subject{ID: admin.ID, Roles: []string{"sales"}}
	demoted.cache.Store(admin.cache.Load()) // what a by-value copy would carry
	in.Subject = demoted
	if d, err := e.Decide(ctx, in); err != nil || d.Allow {
		t.Errorf("copied and demoted subject decide = %+v, %v; want deny", d, err)
	}
}

func TestReferencePolicyThroughEngine(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, module := range []string{"Contacts", "Contact"} {
		in := salesInput()
		in.Resource.Module = module
		d, err := e.Decide(ctx, in)
		if err != nil || !d.Allow || d.MaskedFields["phone_mobile"] != MaskLast4 || d.MaskedFields["email1"] != MaskEmail {
			t.Errorf("%s: decide = %+v, %v", module, d, err)
		}
	}
	for _, tt := range []struct {
		record map[string]any
		allow  bool
	}{
		{map[string]any{"id": "1", "assigned_user_id": "u-sales1"}, true},
		{map[string]any{"id": "2", "assigned_user_id": "u-sales2"}, true},
		{map[string]any{"id": "3", "assigned_user_id": "u-sales3"}, false},
		// Another CRM's owner field claims nothing in a SuiteCRM record.
		{map[string]any{"id": "4", "assignedUserId": "u-sales2"}, false},
		{map[string]any{"id": "5", "assigned_user_id": "u-sales1", "assignedUserId": "u-sales3"}, true},
	} {
		in := salesInput()
		in.Record = tt.record
		rd, err := e.Record(ctx, in)
		if err != nil || rd.Allow != tt.allow {
			t.Errorf("record %v = %+v, %v; want %v", tt.record, rd, err, tt.allow)
		}
	}
}

func TestExplainListsRuleValues(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	in := salesInput()
	d, lines, err := e.Explain(context.Background(), in)
	if err != nil || !d.Allow {
		t.Fatalf("explain = %+v, %v", d, err)
	}
	for _, want := range []string{`allow = true`, `class = "contact"`, `me = "u-sales1"`, `active_roles = {"sales"}`} {
		if !slices.Contains(lines, want) {
			t.Errorf("explain lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	in.Record = map[string]any{"id": "r-1", "assigned_user_id": "u-sales3"}
	_, lines, err = e.Explain(context.Background(), in)
	if err != nil || !slices.Contains(lines, "record decision: allow=false hidden_fields=[]") {
		t.Errorf("explain with record = %v:\n%s", err, strings.Join(lines, "\n"))
	}
}
