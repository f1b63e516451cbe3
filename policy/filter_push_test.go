package policy

import (
	"context"
	"testing"

	"github.com/crmgate/crmgate/policy/cond"
	"github.com/crmgate/crmgate/rego"
)

// TestPushdownMatchesRecordRuleOnReferencePolicy is the proof that a
// pushed condition means what record_allow means: for every persona,
// module and action, on random records, an exact Cond matches exactly the
// records the engine allows, and a partial one matches at least those.
func TestPushdownMatchesRecordRuleOnReferencePolicy(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	levels := map[string]int{}
	for name, subject := range personas() {
		for mi, module := range referenceModules {
			for ai, action := range referenceActions {
				in := &Input{
					Subject:  subject,
					Request:  Request{ID: "req", Method: "GET", Path: "/x", Time: referenceContext.Time, RemoteIP: referenceContext.RemoteIP},
					Resource: Resource{CRM: referenceCRM(module), Module: module, Action: action},
				}
				f, err := e.RecordFilter(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				p := f.Pushdown()
				levels[p.Level]++
				if p.Level == cond.None {
					if p.Cond.Op != cond.True {
						t.Fatalf("%s %s %s: level none with cond %s", name, module, action, p.Cond)
					}
					continue
				}
				gen := newRecordGen(uint64(mi*100+ai), referenceFields)
				for range 40 {
					rec := gen.next()
					full := *in
					full.Record = rec
					want, err := e.Record(ctx, &full)
					if err != nil {
						continue // the proxy refuses such a record whatever the CRM did
					}
					got := p.Cond.Match(rec)
					if p.Level == cond.Exact && got != want.Allow || want.Allow && !got {
						t.Fatalf("%s %s %s record %v: %s cond %s matches %v, record_allow %v", name, module, action, rec, p.Level, p.Cond, got, want.Allow)
					}
				}
			}
		}
	}
	// The reference policy is written to push down exactly everywhere.
	if levels[cond.Partial] != 0 || levels[cond.None] != 0 || levels[cond.Exact] == 0 {
		t.Errorf("pushdown levels over the reference policy: %v, want all exact", levels)
	}
}

// TestPushdownOfReferencePersonas pins the conditions the demo pushes.
func TestPushdownOfReferencePersonas(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	p := personas()
	for _, tt := range []struct{ subject, module, want string }{
		{"alice", "Accounts", `assigned_user_id in ["u-mgr","u-sales1","u-sales2"]`},
		{"alice", "Account", `assignedUserId in ["u-mgr","u-sales1","u-sales2"]`},
		{"morgan", "Opportunities", `assigned_user_id in ["u-mgr","u-sales1","u-sales2"]`},
		{"customer", "Contacts", `(account_id == "acc-1" or id == "c-1")`},
		{"customer", "AOS_Quotes", `billing_account_id == "acc-1"`},
		{"alice", "Employees", `id in ["e-sales1","u-sales1"]`},
		{"sam", "Accounts", `true`},
		{"alice", "AOS_Products", `true`},
		{"alice", "Cases", `false`},
		{"nobody", "Accounts", `false`},
	} {
		f, err := e.RecordFilter(context.Background(), &Input{Subject: p[tt.subject], Request: referenceContext, Resource: Resource{CRM: referenceCRM(tt.module), Module: tt.module, Action: ActionList}})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Pushdown(); got.Level != cond.Exact || got.Cond.String() != tt.want {
			t.Errorf("%s %s: pushdown %s %s (%s), want exact %s", tt.subject, tt.module, got.Level, got.Cond, got.Reason, tt.want)
		}
	}
}

func TestMayHideFields(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	p := personas()
	for _, tt := range []struct {
		subject, module string
		want            bool
	}{
		{"morgan", "Employees", true}, // team members' salaries
		{"morgan", "Accounts", false},
		// Partial evaluation keeps "not salary_visible" although an
		// admin sees every salary: the answer errs on the safe side.
		{"sam", "Employees", true},
		{"sam", "Accounts", false},
		{"alice", "Employees", true}, // another employee's salary, were the record visible
	} {
		f, err := e.RecordFilter(context.Background(), &Input{Subject: p[tt.subject], Request: referenceContext, Resource: Resource{CRM: referenceCRM(tt.module), Module: tt.module, Action: ActionList}})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.MayHideFields(); got != tt.want {
			t.Errorf("%s %s: MayHideFields = %v, want %v", tt.subject, tt.module, got, tt.want)
		}
	}
}

// TestPushdownLevels: rules that a CRM query cannot say exactly are never
// pushed as exact. Each case is a record_allow shape that would make an
// exact claim wrong.
func TestPushdownLevels(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, policy, level, cond string
	}{
		{"eq", "default record_allow := false\nrecord_allow if input.record.owner == input.subject.id", cond.Exact, `owner == "alice"`},
		{"set", "default record_allow := false\nrecord_allow if input.record.owner in {\"a\", \"b\"}", cond.Exact, `owner in ["a","b"]`},
		{"and-or", "default record_allow := false\nrecord_allow if { input.record.a == 1; input.record.b == true }\nrecord_allow if input.record.c == \"x\"", cond.Exact, `((a == 1 and b == true) or c == "x")`},
		{"no default: undefined is allowed", "record_allow if input.record.owner == \"a\"", cond.None, "true"},
		{"default true", "default record_allow := true\nrecord_allow := false if input.record.owner == \"a\"", cond.None, "true"},
		{"false rule", "default record_allow := false\nrecord_allow if input.record.owner == \"a\"\nrecord_allow := false if input.record.x == 1", cond.None, "true"},
		{"negation widens", "default record_allow := false\nrecord_allow if { input.record.owner == \"a\"; not input.record.archived }", cond.Partial, `owner == "a"`},
		{"null is not pushed", "default record_allow := false\nrecord_allow if input.record.owner == null", cond.None, "true"},
		{"neq is not pushed", "default record_allow := false\nrecord_allow if { input.record.team == \"t\"; input.record.owner != \"b\" }", cond.Partial, `team == "t"`},
		{"one untranslatable disjunct", "default record_allow := false\nrecord_allow if input.record.owner == \"a\"\nrecord_allow if startswith(input.record.name, \"x\")", cond.None, "true"},
		{"dynamic field", "default record_allow := false\nrecord_allow if { some f in [\"o\", \"p\"]; input.record[f] == \"a\" }", cond.Exact, `(o == "a" or p == "a")`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\nallow := true\n\n" + tt.policy + "\n"})
			f, err := e.RecordFilter(context.Background(), &Input{Subject: &Subject{ID: "alice"}, Resource: Resource{Module: "M", Action: ActionList}})
			if err != nil {
				t.Fatal(err)
			}
			got := f.Pushdown()
			if got.Level != tt.level || got.Cond.String() != tt.cond {
				t.Errorf("pushdown = %s %s (%s), want %s %s", got.Level, got.Cond, got.Reason, tt.level, tt.cond)
			}
			if got.Level != cond.Exact && got.Reason == "" {
				t.Error("a pushdown that is not exact must say why")
			}
		})
	}
}
