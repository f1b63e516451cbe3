package profile_test

import (
	"context"
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
	refpolicy "github.com/crmgate/crmgate/rego"
)

// benchAlice is the policy input of a request by alice (sales, store-12)
// on a Tuesday morning in Berlin, inside the reference policy's working
// hours, so the context rules allow it.
func benchAlice(crm, module, path string) *policy.Input {
	return &policy.Input{
		Subject: &policy.Subject{ID: "alice", Roles: []string{"sales"}, Teams: []string{"store-12"},
			Attributes: map[string]any{"crm_user_id": "u-sales1"}, Auth: "bearer"},
		Resource: policy.Resource{CRM: crm, Module: module, Action: "list"},
		Request: policy.Request{Method: "GET", Path: path, RemoteIP: "203.0.113.7",
			Time: time.Date(2026, 12, 8, 9, 30, 0, 0, time.UTC)},
	}
}

// sfBenchQuery is a typical client query: an OR group, a date, a sort
// and a page.
const sfBenchQuery = "SELECT Name, Phone, BillingCity FROM Account WHERE (Name LIKE 'North%' OR BillingCity = 'London') " +
	"AND CreatedDate > 2026-01-01T00:00:00Z ORDER BY Name ASC, CreatedDate DESC LIMIT 50"

// BenchmarkSOQLDecideRewrite is the cost crmgate adds to a Salesforce
// query before it is sent: "rewrite" classifies the query by its FROM,
// parses it for the fields it names, writes it canonically, adds the
// rule's fields to SELECT and makes the rule the first WHERE term;
// "decide+rewrite" adds the module decision and the record rule's
// compiled pushdown for the subject (as the proxy does per request,
// policy caches warm).
func BenchmarkSOQLDecideRewrite(b *testing.B) {
	p, err := profile.Builtin("salesforce")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e, err := policy.Load(ctx, policy.Options{Source: policy.Source{FS: refpolicy.FS}})
	if err != nil {
		b.Fatal(err)
	}
	raw := "q=" + url.QueryEscape(sfBenchQuery)
	c := p.Dialect.(profile.Canonicalizer)
	ff := p.Dialect.(profile.FieldFetcher)
	rewrite := func(b *testing.B, f *policy.RecordFilter) string {
		m, err := p.Classify(http.MethodGet, "/services/data/v62.0/query", nil)
		if err == nil {
			m, err = p.ClassifyQuery(m, raw)
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.ListQueryFields(raw, nil); err != nil {
			b.Fatal(err)
		}
		q, _, err := c.Canonical(m, raw, nil)
		if err != nil {
			b.Fatal(err)
		}
		if q, _, err = ff.WithFields(m, q, nil, f.Fields()); err != nil {
			b.Fatal(err)
		}
		q, _, ok, err := p.Dialect.Push(m, q, nil, f.Pushdown().Cond)
		if err != nil || !ok {
			b.Fatalf("push: %v %v", ok, err)
		}
		return q
	}
	in := benchAlice("salesforce", "Account", "/services/data/v62.0/query")
	f, err := e.RecordFilter(ctx, in)
	if err != nil {
		b.Fatal(err)
	}
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
