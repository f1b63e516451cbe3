package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crmgate/crmgate/rego"
)

// personas are the subjects of rego/*_test.rego, plus broken ones.
// referenceContext is a request the reference policy's context rules
// (rego/context.rego) let every persona make: a Monday, 13:00 in Berlin,
// from an office network of rego/data.json.
var referenceContext = Request{Time: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), RemoteIP: "198.51.100.7"}

func personas() map[string]*Subject {
	staff := func(id, role, team, user string) *Subject {
		return &Subject{ID: id, Roles: []string{role}, Teams: []string{team}, Attributes: map[string]any{"crm_user_id": user}, Auth: "session"}
	}
	sam := staff("sam", "admin", "hq", "u-admin")
	sam.MFA = true
	return map[string]*Subject{
		"alice":           staff("alice", "sales", "store-12", "u-sales1"),
		"carol":           staff("carol", "sales", "store-7", "u-sales3"),
		"morgan":          staff("morgan", "line_manager", "store-12", "u-mgr"),
		"dana":            staff("dana", "line_manager", "store-7", "u-mgr7"),
		"ivan":            staff("ivan", "inventory_manager", "warehouse", "u-inv"),
		"sam":             sam,
		"sam_without_mfa": staff("sam", "admin", "hq", "u-admin"),
		"customer":        {ID: "cust-1", Roles: []string{"customer"}, Attributes: map[string]any{"account_id": "acc-1", "contact_id": "c-1"}},
		"customer2":       {ID: "cust-2", Roles: []string{"customer"}, Attributes: map[string]any{"account_id": "acc-2", "contact_id": "c-2"}},
		"nobody":          {ID: "nobody", MFA: true},
		"sales_and_customer": {ID: "both", Roles: []string{"sales", "customer"}, Teams: []string{"store-12"},
			Attributes: map[string]any{"crm_user_id": "u-sales2", "account_id": "acc-1"}},
		"numeric_user_id": {ID: "n", Roles: []string{"sales"}, Teams: []string{"store-12"}, Attributes: map[string]any{"crm_user_id": 17}},
	}
}

// referenceModules are every module of rego/data.json in both CRMs'
// spelling, and one the policy does not know.
var referenceModules = []string{
	"Accounts", "Account", "Contacts", "Contact", "Leads", "Lead", "Opportunities", "Opportunity",
	"Cases", "Case", "Calls", "Call", "Meetings", "Meeting", "Tasks", "Task", "Notes", "Note",
	"AOS_Products", "Product", "AOS_Quotes", "Quote", "Employees", "Employee", "Users", "User",
	"Documents", "Document", "AOS_Contracts",
}

// referenceCRM is the profile whose spelling a module name is: EspoCRM's
// entity types are singular, SuiteCRM's modules plural.
func referenceCRM(module string) string {
	switch module {
	case "Account", "Contact", "Lead", "Opportunity", "Case", "Call", "Meeting", "Task", "Note",
		"Product", "Quote", "Employee", "User", "Document":
		return "espocrm"
	}
	return "suitecrm8"
}

var referenceActions = []string{ActionList, ActionRead, ActionUpdate, ActionDelete, ActionExport, ActionRelate, ActionCreate}

// recordGen makes random records over the given field names: values the
// policy knows (user, account, contact and employee ids), unknown ids,
// empty and null values, and wrong types (numbers, booleans, arrays,
// objects) where strings are expected; fields are missing at random.
type recordGen struct {
	rng    *rand.Rand
	fields []string
	values []any
}

func newRecordGen(seed uint64, fields []string, extra ...any) *recordGen {
	values := []any{
		"u-admin", "u-mgr", "u-sales1", "u-sales2", "u-sales3", "u-mgr7", "u-inv", "u-unknown",
		"e-admin", "e-mgr", "e-sales1", "e-sales2", "e-sales3", "e-mgr7", "e-inv", "e-peer",
		"acc-1", "acc-2", "acc-9", "c-1", "c-2", "c-9", "", "U-SALES1", " u-sales1",
		nil, true, false, 0, 1, 17, 1.5, json.Number("17"), json.Number("1.0"), -3,
		[]any{"u-sales1"}, []any{}, map[string]any{"id": "u-sales1"}, map[string]any{},
	}
	return &recordGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), fields: fields, values: append(values, extra...)}
}

func (g *recordGen) next() map[string]any {
	rec := map[string]any{}
	for _, f := range g.fields {
		if g.rng.IntN(3) == 0 {
			continue
		}
		rec[f] = g.values[g.rng.IntN(len(g.values))]
	}
	return rec
}

var referenceFields = []string{
	"id", "name", "assigned_user_id", "assignedUserId", "account_id", "billing_account_id", "accountId",
	"salary_c", "salary", "phone_work",
}

// TestRecordFilterMatchesEngineOnReferencePolicy is the proof that the
// compiled predicate is exact: for every persona, module and action of the
// reference policy and thousands of random records, Check answers what
// Engine.Record answers, hidden fields and errors included.
func TestRecordFilterMatchesEngineOnReferencePolicy(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	perFilter := 12
	if testing.Short() {
		perFilter = 4
	}
	var total filterStats
	var mu sync.Mutex
	t.Cleanup(func() {
		// The records must exercise both answers and hidden fields, or the
		// comparison proves nothing.
		if total.allowed == 0 || total.denied == 0 || total.hidden == 0 {
			t.Errorf("random records too uniform: %+v", total)
		}
	})
	for name, subject := range personas() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stats filterStats
			for mi, module := range referenceModules {
				for ai, action := range referenceActions {
					in := &Input{
						Subject:  subject,
						Request:  Request{ID: "req", Method: "GET", Path: "/x", Time: referenceContext.Time, RemoteIP: referenceContext.RemoteIP},
						Resource: Resource{CRM: referenceCRM(module), Module: module, Action: action},
					}
					gen := newRecordGen(uint64(mi*100+ai), referenceFields)
					stats.add(assertFilterMatches(t, e, in, gen, perFilter, true))
				}
			}
			mu.Lock()
			total.add(stats)
			mu.Unlock()
		})
	}
}

// filterStats counts the answers a comparison saw.
type filterStats struct{ allowed, denied, hidden, errors int }

func (s *filterStats) add(o filterStats) {
	s.allowed += o.allowed
	s.denied += o.denied
	s.hidden += o.hidden
	s.errors += o.errors
}

// assertFilterMatches compares Check with Engine.Record on n records and,
// when wantExact, asserts the filter runs the compiled predicate.
func assertFilterMatches(t *testing.T, e *Engine, in *Input, gen *recordGen, n int, wantExact bool) filterStats {
	t.Helper()
	var stats filterStats
	ctx := context.Background()
	f, err := e.RecordFilter(ctx, in)
	if err != nil {
		t.Fatalf("%s %s: RecordFilter: %v", in.Resource.Module, in.Resource.Action, err)
	}
	if f.Exact() != wantExact {
		t.Fatalf("%s %s: Exact() = %v, want %v (%s)", in.Resource.Module, in.Resource.Action, f.Exact(), wantExact, f.cf.reason)
	}
	fields := f.Fields()
	if wantExact != (fields != nil) && !f.cf.prog.readsAll {
		t.Fatalf("Fields() = %v with Exact() = %v", fields, f.Exact())
	}
	for range n {
		rec := gen.next()
		got, gotErr := f.Check(rec)
		if fields != nil {
			// Only the fields the filter names may be handed to it.
			partial := map[string]any{}
			for _, k := range fields {
				if v, ok := rec[k]; ok {
					partial[k] = v
				}
			}
			pGot, pErr := f.Check(partial)
			if !reflect.DeepEqual(pGot, got) || (pErr == nil) != (gotErr == nil) {
				t.Fatalf("%s %s record %v: Check on Fields() %v = %+v, %v; on the whole record %+v, %v",
					in.Resource.Module, in.Resource.Action, rec, fields, pGot, pErr, got, gotErr)
			}
		}
		full := *in
		full.Record = rec
		want, wantErr := e.Record(ctx, &full)
		if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%s %s record %v:\n Check  = %+v, %v\n Record = %+v, %v", in.Resource.Module, in.Resource.Action, rec, got, gotErr, want, wantErr)
		}
		switch {
		case wantErr != nil:
			stats.errors++
		case want.Allow:
			stats.allowed++
		default:
			stats.denied++
		}
		if len(want.HiddenFields) > 0 {
			stats.hidden++
		}
	}
	return stats
}

func TestRecordFilterIsExactForEveryReferencePersona(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	for name, subject := range personas() {
		for _, module := range referenceModules {
			in := &Input{Subject: subject, Request: referenceContext, Resource: Resource{CRM: referenceCRM(module), Module: module, Action: ActionList}}
			f, err := e.RecordFilter(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if !f.Exact() {
				t.Errorf("%s %s: not exact: %s", name, module, f.cf.reason)
			}
			for _, field := range f.Fields() {
				if !slices.Contains(referenceFields, field) {
					t.Errorf("%s %s: Fields() names %q, which the policy does not read", name, module, field)
				}
			}
		}
	}
}

// TestRecordFilterFieldsOfReferencePolicy pins what the proxy must extract
// from each record for the common cases.
func TestRecordFilterFieldsOfReferencePolicy(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	p := personas()
	tests := []struct {
		subject, module string
		want            []string
	}{
		{"alice", "Accounts", []string{"assigned_user_id"}},
		{"alice", "Account", []string{"assignedUserId"}},
		{"alice", "Employees", []string{"id"}},
		{"alice", "AOS_Products", []string{}},
		{"customer", "Contacts", []string{"account_id", "id"}},
		{"customer", "AOS_Quotes", []string{"billing_account_id"}},
		{"sam", "Accounts", []string{}},
		{"nobody", "Accounts", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.subject+"/"+tt.module, func(t *testing.T) {
			f, err := e.RecordFilter(context.Background(), &Input{Subject: p[tt.subject], Request: referenceContext, Resource: Resource{CRM: referenceCRM(tt.module), Module: tt.module, Action: ActionList}})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Fields(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Fields() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestRecordFilterCache(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	p := personas()
	ctx := context.Background()
	compile := func(subject *Subject, module, path string) *compiledFilter {
		t.Helper()
		f, err := e.RecordFilter(ctx, &Input{Subject: subject, Request: Request{Path: path, Time: referenceContext.Time, RemoteIP: referenceContext.RemoteIP}, Resource: Resource{CRM: referenceCRM(module), Module: module, Action: ActionList}})
		if err != nil {
			t.Fatal(err)
		}
		return f.cf
	}
	a := compile(p["alice"], "Accounts", "/one")
	if b := compile(p["alice"], "Accounts", "/two"); a != b {
		t.Error("same subject and module, another path the policy does not read: filter compiled again")
	}
	copied := *p["alice"]
	if b := compile(&copied, "Accounts", "/one"); a != b {
		t.Error("an equal subject value: filter compiled again")
	}
	if b := compile(p["carol"], "Accounts", "/one"); a == b {
		t.Error("another subject shares alice's filter")
	}
	if b := compile(p["alice"], "Contacts", "/one"); a == b {
		t.Error("another module shares the filter")
	}
	for i := range maxCachedFilters + 10 {
		s := &Subject{ID: fmt.Sprint(i), Roles: []string{"sales"}, Attributes: map[string]any{"crm_user_id": fmt.Sprint("u-", i)}}
		compile(s, "Accounts", "/")
	}
	fc := e.state.Load().filters
	fc.mu.Lock()
	n := len(fc.m)
	fc.mu.Unlock()
	if n > maxCachedFilters {
		t.Errorf("cache holds %d filters, bound is %d", n, maxCachedFilters)
	}
}

func TestRecordFilterInputErrors(t *testing.T) {
	t.Parallel()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.RecordFilter(context.Background(), nil); err == nil {
		t.Error("nil input: no error")
	}
	if _, err := e.RecordFilter(context.Background(), &Input{}); err == nil {
		t.Error("no subject: no error")
	}
	f, err := e.RecordFilter(context.Background(), &Input{Subject: personas()["alice"], Request: referenceContext, Resource: Resource{CRM: "suitecrm8", Module: "Accounts", Action: "list"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Check(nil); err == nil {
		t.Error("nil record: no error, as Engine.Record gives one")
	}
	if _, err := f.Check(map[string]any{"assigned_user_id": make(chan int)}); err == nil {
		t.Error("unconvertible record value: no error")
	}
}
