package profile

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy/cond"
)

func TestParseODataFilter(t *testing.T) {
	t.Parallel()
	ok := []struct{ in, want string }{
		{"name eq 'x'", "name eq 'x'"},
		{"a eq 1 or b eq 2 and c eq 3", "(a eq 1 or (b eq 2 and c eq 3))"},
		{"(a eq 1 or b eq 2) and c eq 3", "((a eq 1 or b eq 2) and c eq 3)"},
		{"not a eq 1 and b eq 2", "(not (a eq 1) and b eq 2)"},
		{"not (a eq 1 or b eq 2)", "not ((a eq 1 or b eq 2))"},
		{"name eq 'O''Brien'", "name eq 'O''Brien'"},
		{"name eq 'x'' or 1 eq 1 or '''", "name eq 'x'' or 1 eq 1 or '''"},
		{"_ownerid_value eq 3FA85F64-5717-4562-B3FC-2C963F66AFA6", "_ownerid_value eq 3fa85f64-5717-4562-b3fc-2c963f66afa6"},
		{"abcdef12-0000-0000-0000-000000000000 eq accountid", "abcdef12-0000-0000-0000-000000000000 eq accountid"},
		{"revenue ge -1.5e3 and revenue lt 10", "(revenue ge -1.5e3 and revenue lt 10)"},
		{"createdon gt 2026-01-01T00:00:00Z and birthdate le 1990-12-31", "(createdon gt 2026-01-01T00:00:00Z and birthdate le 1990-12-31)"},
		{"parentcustomerid eq null or donotemail eq false", "(parentcustomerid eq null or donotemail eq false)"},
		{"contains(name,'shop') or startswith( name , 'a') or endswith(name,'z')", "((contains(name,'shop') or startswith(name,'a')) or endswith(name,'z'))"},
		{"notes eq 1", "notes eq 1"},
		{"   name   ne   'x'   ", "name ne 'x'"},
	}
	for _, c := range ok {
		e, err := ParseODataFilter(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := e.String(); got != c.want {
			t.Errorf("%q = %q, want %q", c.in, got, c.want)
		}
		again, err := ParseODataFilter(e.String())
		if err != nil || again.String() != e.String() {
			t.Errorf("%q does not re-parse to itself: %v", e.String(), err)
		}
	}
	bad := []string{
		"", "name", "name eq", "eq 'x'", "'a' eq 'b'", "name EQ 'x'", "name eq 'x", "(name eq 'x'", "name eq 'x')",
		"a/b eq 1", "contacts/any(c: c/name eq 'x')", "Microsoft.Dynamics.CRM.Today(PropertyName='createdon')",
		"name eq @p1", "a in (1,2)", "a has 1", "a add 1 eq 2", "cast(a, Edm.String) eq 'x'", "tolower(name) eq 'x'",
		"contains(name,1)", "contains('x',name)", "and eq 1", "name eq 1.", "name eq 1x", "a eq 2026-13", "true",
		"not", "name eq 'x' junk", "a eq 3fa85f64-5717-4562-b3fc-2c963f66afa6x", "a eq 1;b eq 2", "a eq {1}",
		strings.Repeat("(", 40) + "a eq 1" + strings.Repeat(")", 40), strings.Repeat("not ", 40) + "a eq 1",
	}
	for _, in := range bad {
		if e, err := ParseODataFilter(in); err == nil || !errors.Is(err, ErrBadQuery) {
			t.Errorf("%q parsed: %v %v", in, e, err)
		}
	}
}

func mustDynamics(t testing.TB) *Profile {
	t.Helper()
	p, err := Builtin("dynamics")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDynamicsClassify(t *testing.T) {
	t.Parallel()
	p := mustDynamics(t)
	const g = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	b := "/api/data/v9.2/"
	ok := []struct{ method, path, module, id, action string }{
		{"GET", b + "accounts", "accounts", "", "list"},
		{"GET", b + "Accounts", "accounts", "", "list"},
		{"POST", b + "contacts", "contacts", "", "create"},
		{"GET", b + "accounts(" + g + ")", "accounts", g, "read"},
		{"GET", b + "accounts(" + strings.ToUpper(g) + ")", "accounts", g, "read"},
		{"PATCH", b + "incidents(" + g + ")", "incidents", g, "update"},
		{"DELETE", b + "leads(" + g + ")", "leads", g, "delete"},
		{"GET", b + "accounts(" + g + ")/contact_customer_accounts", "accounts", g, "read"},
	}
	for _, c := range ok {
		m, err := p.Classify(c.method, c.path, nil)
		if err != nil || m.Module != c.module || m.ID != c.id || m.Action != c.action {
			t.Errorf("%s %s = %+v, %v", c.method, c.path, m, err)
			continue
		}
		if again, err := p.Classify(c.method, m.Path, nil); err != nil || again != m {
			t.Errorf("canonical %s does not re-classify: %+v %v", m.Path, again, err)
		}
	}
	bad := []string{
		b + "$batch", b + "$metadata", b + "accounts(accountnumber='A1')", b + "accounts({" + g + "})",
		b + "accounts%28" + g + "%29", b + "accounts(" + g + ")/..", b + "accounts(" + g + ")x", b + "accounts(" + g + "))",
		b + "accounts((" + g + "))", b + "accounts(" + g + ")/contact_customer_accounts/$ref", b + "accounts()",
		b + "accounts(1)", b + "(" + g + ")", b + "accounts(" + g + ")(" + g + ")", b + "WhoAmI", "/api/data/v9.1/accounts",
		b + "accounts(" + g + ")/name/$value", b + "accounts/" + g,
	}
	for _, path := range bad {
		if m, err := p.Classify("GET", path, nil); err == nil {
			t.Errorf("GET %s classified: %+v", path, m)
		}
	}
	if _, err := p.Classify("PUT", b+"accounts("+g+")", nil); !errors.Is(err, ErrUnknownRoute) {
		t.Errorf("PUT to a row: %v", err)
	}
	if got := p.IDField("contacts"); got != "contactid" {
		t.Errorf("IDField(contacts) = %q", got)
	}
	if rp, err := p.ReadPath("accounts", g); err != nil || rp != b+"accounts("+g+")" {
		t.Errorf("ReadPath = %q, %v", rp, err)
	}
}

func TestDynamicsBody(t *testing.T) {
	t.Parallel()
	p := mustDynamics(t)
	const g = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	m, err := p.Classify("PATCH", "/api/data/v9.2/accounts("+g+")", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"name":"x"}`, `{"accountid":"` + g + `","name":"x"}`} {
		if _, err := p.ClassifyBody(m, []byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	for _, body := range []string{
		`{"ownerid@odata.bind":"/systemusers(` + g + `)"}`, `{"@odata.type":"x"}`, `{"a.b":1}`,
		`{"primarycontactid":{"lastname":"x"}}`, `{"contact_customer_accounts":[{}]}`, `[{"name":"x"}]`,
		`{"accountid":"00000000-0000-0000-0000-000000000000"}`,
	} {
		if _, err := p.ClassifyBody(m, []byte(body)); !errors.Is(err, ErrBadBody) {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestDynamicsQuery(t *testing.T) {
	t.Parallel()
	p := mustDynamics(t)
	c := p.Dialect.(Canonicalizer)
	list := Match{Kind: KindList, Action: "list", Module: "accounts"}
	q, extra, err := c.Canonical(list, "$top=5&$filter=name%20eq%20'a'&$select=name,telephone1&$count=true", http.Header{"Prefer": {`odata.include-annotations="*", odata.maxpagesize=10`}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "$select=name%2Ctelephone1&$filter=name%20eq%20%27a%27&$top=5&$count=true"; q != want {
		t.Errorf("canonical = %q, want %q", q, want)
	}
	if got := extra.Get("Prefer"); got != "odata.maxpagesize=10" {
		t.Errorf("Prefer = %q", got)
	}
	owner := cond.Cond{Op: cond.In, Field: "_ownerid_value", Values: []any{"11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"}}
	pushed, _, ok, err := p.Dialect.Push(list, "$filter=name%20ne%20'x'%20or%20_ownerid_value%20ne%20null", nil, owner)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	v, _ := url.ParseQuery(pushed)
	want := "((_ownerid_value eq 11111111-1111-1111-1111-111111111111 or _ownerid_value eq 22222222-2222-2222-2222-222222222222) and (name ne 'x' or _ownerid_value ne null))"
	if v.Get("$filter") != want {
		t.Errorf("pushed $filter = %q, want %q", v.Get("$filter"), want)
	}
	// Not exact: text (Dataverse compares it case-insensitively), an
	// upper-case GUID, False.
	for _, c := range []cond.Cond{
		{Op: cond.Eq, Field: "name", Values: []any{"Shop"}},
		{Op: cond.Eq, Field: "_ownerid_value", Values: []any{"3FA85F64-5717-4562-B3FC-2C963F66AFA6"}},
		{Op: cond.False},
	} {
		if _, _, ok, err := p.Dialect.Push(list, "", nil, c); ok || err != nil {
			t.Errorf("%v pushed: %v %v", c, ok, err)
		}
	}
	num := cond.Cond{Op: cond.And, Args: []cond.Cond{{Op: cond.Eq, Field: "statecode", Values: []any{json.Number("0")}}, {Op: cond.Eq, Field: "donotemail", Values: []any{false}}}}
	if q, _, ok, _ := p.Dialect.Push(list, "", nil, num); !ok || !strings.Contains(q, "statecode%20eq%200%20and%20donotemail%20eq%20false") {
		t.Errorf("numbers and booleans: %q %v", q, ok)
	}
	rec := Match{Kind: KindRecord, Action: "read", Module: "accounts"}
	for _, raw := range []string{"$filter=name%20eq%20'x'", "$top=1", "$expand=primarycontactid", "$orderby=name"} {
		if _, _, err := c.Canonical(rec, raw, nil); !errors.Is(err, ErrBadQuery) {
			t.Errorf("record read with %s: %v", raw, err)
		}
	}
	if q, _, err := p.Dialect.(FieldFetcher).WithFields(list, "$select=name", nil, []string{"_ownerid_value", "name"}); err != nil || q != "$select=name%2C_ownerid_value" {
		t.Errorf("WithFields = %q %v", q, err)
	}
	if q, _, err := p.Dialect.(FieldFetcher).WithFields(list, "$select=name", nil, nil); err != nil || q != "" {
		t.Errorf("WithFields(nil) = %q %v", q, err)
	}
}

// TestODataPushIsIdempotent: a nextLink's $filter already leads with the
// rule; pushing it again leaves the query as it is, so paging through a
// long list does not grow the filter past its limit.
func TestODataPushIsIdempotent(t *testing.T) {
	p := mustBuiltin(t, "dynamics")
	list := Match{Kind: KindList, Action: "list", Module: "accounts"}
	rule := cond.Cond{Op: cond.In, Field: "_ownerid_value", Values: []any{
		"11ff48b4-5006-0b2f-9614-7af63ee37cf0", "d39c3924-7521-26d1-963f-167138c3330a"}}
	for _, raw := range []string{"", "$filter=name%20ne%20'x'%20or%20name%20eq%20'y'", "$select=name&$filter=statecode%20eq%200"} {
		once, _, ok, err := p.Dialect.Push(list, raw, nil, rule)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		again := once
		for i := 0; i < 50; i++ {
			if again, _, ok, err = p.Dialect.Push(list, again, nil, rule); err != nil || !ok {
				t.Fatalf("page %d: %v %v", i, ok, err)
			}
		}
		if again != once {
			t.Errorf("%q: pushed again %q, once %q", raw, again, once)
		}
	}
	// A client filter that only resembles the rule is still ANDed.
	other := cond.Cond{Op: cond.Eq, Field: "_ownerid_value", Values: []any{"11ff48b4-5006-0b2f-9614-7af63ee37cf0"}}
	q, _, _, _ := p.Dialect.Push(list, "", nil, other)
	if got, _, _, _ := p.Dialect.Push(list, q, nil, rule); got == q {
		t.Errorf("another rule's filter taken for this one: %q", got)
	}
}
