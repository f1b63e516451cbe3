package app_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkListPushdown is issue 12's figure: one 50-record page of
// Accounts through crmgate with the record rule pushed into SuiteCRM's
// filter, through crmgate filtering after the CRM answers, and through the
// bare proxy, in one run. The policy is the reference policy with sales
// seeing the records they own, a rule SuiteCRM's filter can carry exactly
// (the team rule cannot, so with it both crmgate rows would do the same
// work). records/op is what the client gets: the pushed-down page is full,
// the filtered-after page keeps only alice's share of the 50, so a client
// needs about six of those requests for one full page.
func BenchmarkListPushdown(b *testing.B) {
	up := newBenchUpstream(b, 1000)
	idpURL, iss := newBenchIssuer(b)
	policy := ownRecordsPolicy(b)
	const path = "/Api/V8/module/Accounts?page[size]=50"
	targets := []benchTarget{
		{name: "bare-reverseproxy", handler: bareProxy(up), auth: func(*http.Request) {}},
		buildCrmgate(b, up, idpURL, iss, crmgateMode{name: "crmgate-pushdown", log: true}, policy),
		buildCrmgate(b, up, idpURL, iss, crmgateMode{name: "crmgate-filter-after", log: true, noPushdown: true}, policy),
	}
	client := benchClient()
	var bareRPS float64
	for _, t := range targets {
		srv := httptest.NewServer(t.handler)
		b.Cleanup(srv.Close)
		target := srv.URL + path
		sh := benchShape{name: "list-50", path: path, leak: `"assigned_user_id":"u-sales3"`}
		checkTarget(b, client, target, t, sh)
		n := pageRecords(b, client, target, t)
		switch {
		case t.name == "crmgate-pushdown" && n != 50:
			b.Fatalf("%s: %d records, want a full page of 50", t.name, n)
		case t.name == "crmgate-filter-after" && (n == 0 || n >= 50):
			b.Fatalf("%s: %d records, want alice's share of 50", t.name, n)
		}
		b.Run(t.name, func(b *testing.B) {
			rps := runParallelGets(b, client, target, t.auth)
			b.ReportMetric(float64(n), "records/op")
			// What a client paging for records gets per second.
			b.ReportMetric(rps*float64(n), "records/s")
			if t.name == "bare-reverseproxy" {
				bareRPS = rps
			} else if bareRPS > 0 {
				b.ReportMetric(rps/bareRPS, "x-bare")
			}
		})
	}
}

// pageRecords counts the records of one JSON:API list answer.
func pageRecords(b *testing.B, client *http.Client, url string, t benchTarget) int {
	b.Helper()
	_, body := benchGet(b, client, url, t.auth)
	var doc struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		b.Fatalf("%s: %v", t.name, err)
	}
	return len(doc.Data)
}
