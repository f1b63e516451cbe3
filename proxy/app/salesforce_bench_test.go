package app_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/crmgate/crmgate/proxy/emulator"
)

// BenchmarkSalesforceQuery is a 50-record SOQL query through the whole
// pipeline (bearer check, classification by FROM and the SOQL parse,
// module decision, record-rule compile, the rule as first WHERE term, the
// emulator's answer, redaction and the record rule on each record),
// pushed down and filtered after, and the emulator alone asked the query
// crmgate forwards: the difference is crmgate's decision, rewrite and
// enforcement.
func BenchmarkSalesforceQuery(b *testing.B) {
	soql := "SELECT Name, Phone, BillingCity FROM Account WHERE Name LIKE '%a%' OR BillingCity = 'London' LIMIT 50"
	for _, c := range []struct {
		name string
		opts []envOption
	}{{"pushdown", nil}, {"filter-after", []envOption{pushdownOff}}} {
		e := newEnvWithPolicy(b, "salesforce", unbudgetedPolicy(b), c.opts...)
		e.ds.AddSynthetic("Accounts", 200, 1)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := e.do("GET", sfQuery(soql), "alice", ""); r.Status != http.StatusOK {
					b.Fatalf("%d %s", r.Status, r.Body)
				}
			}
		})
	}
	ds := emulator.DepartmentStore()
	ds.AddSynthetic("Accounts", 200, 1)
	srv := httptest.NewServer(emulator.NewSalesforce(ds, emulator.SalesforceOptions{}))
	b.Cleanup(srv.Close)
	id := emulator.SalesforceID
	pushed := "SELECT Name, Phone, BillingCity, OwnerId FROM Account WHERE OwnerId IN ('" + id("User", "u-mgr") + "', '" +
		id("User", "u-sales1") + "', '" + id("User", "u-sales2") + "') AND (Name LIKE '%a%' OR BillingCity = 'London') LIMIT 50"
	direct := srv.URL + sfBase + "/query?q=" + url.QueryEscape(pushed)
	benchDirect(b, srv, direct)
}
