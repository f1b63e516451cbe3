package profile

import (
	"testing"

	"github.com/crmgate/crmgate/policy/cond"
)

func BenchmarkClassify(b *testing.B) {
	p := mustBuiltin(b, "suitecrm8")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Classify("GET", "/Api/V8/module/accounts/7f3c0a4e-1b2c-4d5e-8f90-123456789abc/relationships/contacts", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassifyBody(b *testing.B) {
	p := mustBuiltin(b, "suitecrm8")
	m, err := p.Classify("PATCH", "/Api/V8/module", nil)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"data":{"type":"Contacts","id":"c-1","attributes":{"phone_work":"+44 20 7946 0001","email1":"pat@example.net","first_name":"Pat"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ClassifyBody(m, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkODataRewrite is the dynamics profile's share of a list request:
// reading the query's fields for the guard, the canonical rewrite, the
// record rule (a team of three owners) pushed into $filter and the rule's
// columns added to $select.
func BenchmarkODataRewrite(b *testing.B) {
	p := mustBuiltin(b, "dynamics")
	d := p.Dialect.(odataQuery)
	m := Match{Kind: KindList, Action: "list", Module: "accounts"}
	raw := "$select=name,telephone1,address1_city&$filter=" +
		"(contains(name,'shop')%20or%20startswith(name,'north'))%20and%20statecode%20eq%200%20and%20createdon%20gt%202026-01-01T00:00:00Z" +
		"&$orderby=name%20asc,createdon%20desc&$top=50&$count=true"
	rule := cond.Cond{Op: cond.In, Field: "_ownerid_value", Values: []any{
		"11ff48b4-5006-0b2f-9614-7af63ee37cf0", "d39c3924-7521-26d1-963f-167138c3330a", "e3baa50c-7f4d-a636-daed-ade50b546e2f"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.QueryFields(raw, nil); err != nil {
			b.Fatal(err)
		}
		if _, _, err := d.Canonical(m, raw, nil); err != nil {
			b.Fatal(err)
		}
		q, _, ok, err := d.Push(m, raw, nil, rule)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		if _, _, err := d.WithFields(m, q, nil, []string{"_ownerid_value"}); err != nil {
			b.Fatal(err)
		}
	}
}
