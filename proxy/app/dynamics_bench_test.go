package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/crmgate/crmgate/proxy/emulator"
)

// BenchmarkDynamicsList is a Dataverse list through the whole pipeline
// (bearer check, classification and the OData parse, module decision,
// record-rule compile, pushdown into $filter, the emulator's answer,
// redaction and the record rule on each row), pushed down and filtered
// after, and the emulator alone, in one run: the difference between the
// first two and the third is crmgate's decision + rewrite + enforcement.
func BenchmarkDynamicsList(b *testing.B) {
	q := "?$select=name,telephone1&$filter=" + url.QueryEscape("contains(name,'a') or address1_city eq 'London'") + "&$top=50"
	for _, c := range []struct {
		name string
		opts []envOption
	}{{"pushdown", nil}, {"filter-after", []envOption{pushdownOff}}} {
		e := newEnvWithPolicy(b, "dynamics", unbudgetedPolicy(b), c.opts...)
		e.ds.AddSynthetic("Accounts", 50, 1)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := e.do("GET", dynBase+"accounts"+q, "alice", ""); r.Status != http.StatusOK {
					b.Fatalf("%d %s", r.Status, r.Body)
				}
			}
		})
	}
	// The emulator alone, asked the query crmgate pushes (no token).
	ds := emulator.DepartmentStore()
	ds.AddSynthetic("Accounts", 50, 1)
	srv := httptest.NewServer(emulator.NewDynamics(ds, emulator.DynamicsOptions{}))
	b.Cleanup(srv.Close)
	team := "(_ownerid_value eq " + emulator.DynamicsID("u-sales1") + " or _ownerid_value eq " + emulator.DynamicsID("u-sales2") +
		" or _ownerid_value eq " + emulator.DynamicsID("u-mgr") + ") and (contains(name,'a') or address1_city eq 'London')"
	direct := srv.URL + dynBase + "accounts?$select=name,telephone1,_ownerid_value&$filter=" + url.QueryEscape(team) + "&$top=50"
	benchDirect(b, srv, direct)
}

// benchDirect is the "emulator-direct" sub-benchmark: the CRM emulator
// asked u itself, without crmgate, as the baseline of a pipeline
// benchmark.
func benchDirect(b *testing.B, srv *httptest.Server, u string) {
	b.Run("emulator-direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := srv.Client().Get(u)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatal(res.Status)
			}
		}
	})
}
