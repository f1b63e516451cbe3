package profile_test

import (
	"context"
	"net/http"
	"runtime"
	"testing"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
	refpolicy "github.com/crmgate/crmgate/rego"
)

// hubBenchSearch is a typical client search: two ORed groups, a sort, a
// property list, a page.
const hubBenchSearch = `{"filterGroups":[{"filters":[{"propertyName":"lifecyclestage","operator":"EQ","value":"customer"},` +
	`{"propertyName":"createdate","operator":"GTE","value":"1700000000000"}]},` +
	`{"filters":[{"propertyName":"city","operator":"IN","values":["london","bristol"]}]}],` +
	`"sorts":[{"propertyName":"createdate","direction":"DESCENDING"}],"properties":["firstname","lastname","email","phone"],"limit":50}`

// BenchmarkHubSpotSearch is the cost crmgate adds to a HubSpot search
// before it is sent: "rewrite" reads the body's fields, asks for the rule's
// property and distributes the rule into every group; "decide+rewrite"
// adds the module decision and the record rule's compiled pushdown for the
// subject (as the proxy does per request, policy caches warm).
func BenchmarkHubSpotSearch(b *testing.B) {
	p, err := profile.Builtin("hubspot")
	if err != nil {
		b.Fatal(err)
	}
	m, err := p.Classify(http.MethodPost, "/crm/v3/objects/contacts/search", nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e, err := policy.Load(ctx, policy.Options{Source: policy.Source{FS: refpolicy.FS}})
	if err != nil {
		b.Fatal(err)
	}
	in := benchAlice("hubspot", "contacts", m.Path)
	in.Request.Method = http.MethodPost
	body := []byte(hubBenchSearch)
	ff := p.Dialect.(profile.FieldFetcher)
	rewrite := func(b *testing.B, f *policy.RecordFilter) []byte {
		if _, err := p.ListQueryFields("", body); err != nil {
			b.Fatal(err)
		}
		_, nb, err := ff.WithFields(m, "", body, f.Fields())
		if err != nil {
			b.Fatal(err)
		}
		_, out, ok, err := p.Dialect.Push(m, "", nb, f.Pushdown().Cond)
		if err != nil || !ok {
			b.Fatalf("push: %v %v", ok, err)
		}
		return out
	}
	f, err := e.RecordFilter(ctx, in)
	if err != nil {
		b.Fatal(err)
	}
	// The policy's load leaves garbage behind; collect it before timing.
	runtime.GC()
	b.Run("rewrite", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rewrite(b, f)
		}
	})
	b.Run("decide+rewrite", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := e.Decide(ctx, in)
			if err != nil || !d.Allow {
				b.Fatalf("decide: %v %v", d.Allow, err)
			}
			f, err := e.RecordFilter(ctx, in)
			if err != nil {
				b.Fatal(err)
			}
			rewrite(b, f)
		}
	})
}
