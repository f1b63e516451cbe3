package profile

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy/cond"
)

// FuzzODataQuery holds the dynamics dialect to "nothing the rule hides is
// selectable": for any raw query string, either crmgate refuses it, or
// the query it forwards (classification, canonical rewrite and the pushed
// record rule, as the proxy chains them) names no hidden column in
// $select, $filter or $orderby, carries exactly one $filter whose root is
// the pushed rule or (rule) and (client), uses only the options crmgate
// reads, and reads back to itself. QueryFields and the rewrite must agree
// on what they accept.
func FuzzODataQuery(f *testing.F) {
	for _, s := range []string{
		"", "$select=name", "$filter=name%20eq%20'x'", "$filter=name eq 'x'' or 1 eq 1 or '''",
		"$filter=not%20(standardcost%20le%20100)", "$orderby=name desc,accountid", "$top=5&$count=true",
		"$filter=(a eq 1 or b eq 2) and not c eq 3", "$filter=contains(name,'a')", "$select=*",
		"$filter=a eq 1&$filter=b eq 2", "$Filter=a eq 1", "%24filter=StandardCost gt 1", "$expand=primarycontactid",
		"$filter=_ownerid_value eq 3fa85f64-5717-4562-b3fc-2c963f66afa6", "$skiptoken=%3Ccookie pagenumber=%222%22 /%3E",
		"$filter=%28name%20ne%20'x'%29%20or%20%28name%20eq%20'y'%29", "$filter=a/any(c: c/b eq 1)", "$apply=groupby((name))",
		"$filter=createdon gt 2026-01-01T00:00:00Z", "$filter=x eq null or y ne -1.5e3", "$select=name,CurrentCost",
	} {
		f.Add(s)
	}
	p, err := Builtin("dynamics")
	if err != nil {
		f.Fatal(err)
	}
	d := p.Dialect.(odataQuery)
	hidden := []string{"standardcost", "currentcost", "new_salary"}
	isHidden := func(name string) bool {
		for _, part := range FieldRefParts(name) {
			for _, h := range hidden {
				if strings.EqualFold(part, h) {
					return true
				}
			}
		}
		return false
	}
	rule := cond.Cond{Op: cond.Or, Args: []cond.Cond{
		{Op: cond.In, Field: "_ownerid_value", Values: []any{"11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"}},
		{Op: cond.Eq, Field: "accountid", Values: []any{"33333333-3333-3333-3333-333333333333"}},
	}}
	ruleExpr, ok := odataCond(rule)
	if !ok {
		f.Fatal("rule does not translate")
	}
	want := ruleExpr.String()
	m := Match{Kind: KindList, Action: "list", Module: "products"}
	f.Fuzz(func(t *testing.T, raw string) {
		fields, ferr := d.QueryFields(raw, nil)
		_, _, cerr := d.Canonical(m, raw, nil)
		if (ferr == nil) != (cerr == nil) {
			t.Fatalf("QueryFields and Canonical disagree on %q: %v / %v", raw, ferr, cerr)
		}
		if ferr != nil {
			if !errors.Is(ferr, ErrBadQuery) {
				t.Fatalf("refusal of %q is not ErrBadQuery: %v", raw, ferr)
			}
			return
		}
		for _, qf := range fields {
			if isHidden(qf.Name) {
				return // the proxy refuses it (guardQuery)
			}
		}
		up, _, ok, err := d.Push(m, raw, nil, rule)
		if err != nil || !ok {
			t.Fatalf("accepted query %q not pushed: %v %v", raw, ok, err)
		}
		up, _, err = d.WithFields(m, up, nil, []string{"_ownerid_value", "accountid"})
		if err != nil {
			t.Fatalf("WithFields(%q): %v", up, err)
		}
		vals, err := url.ParseQuery(up)
		if err != nil {
			t.Fatalf("forwarded query %q does not parse: %v", up, err)
		}
		for k, vs := range vals {
			if !odataOptions[KindList][k] || len(vs) != 1 {
				t.Fatalf("forwarded query %q has option %q ×%d", up, k, len(vs))
			}
		}
		if len(vals["$filter"]) != 1 {
			t.Fatalf("forwarded query %q lacks the pushed $filter", up)
		}
		e, err := ParseODataFilter(vals.Get("$filter"))
		if err != nil {
			t.Fatalf("forwarded $filter %q does not parse: %v", vals.Get("$filter"), err)
		}
		if e.String() != want && !(e.Op == ODataAnd && e.Args[0].String() == want) {
			t.Fatalf("forwarded $filter %q is not the rule %q ANDed with the client's", e.String(), want)
		}
		names := e.Fields(nil)
		names = append(names, strings.Split(vals.Get("$select"), ",")...)
		for _, o := range strings.Split(vals.Get("$orderby"), ",") {
			n, _, _ := strings.Cut(o, " ")
			names = append(names, n)
		}
		for _, n := range names {
			if isHidden(n) {
				t.Fatalf("forwarded query %q names hidden column %q (from %q)", up, n, raw)
			}
		}
		again, _, err := d.Canonical(m, up, nil)
		if err != nil || again != up {
			t.Fatalf("forwarded query %q does not read back to itself: %q %v", up, again, err)
		}
	})
}
