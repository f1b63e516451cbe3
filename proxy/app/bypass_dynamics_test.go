package app_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/emulator"
)

// dynamicsAttacks (issue 13) try to get round the dynamics profile: OData
// $filter games (or/not precedence, string escapes, encoded parentheses,
// lambdas, navigation paths, query functions, aliases), options that
// would name hidden columns or bypass the parser ($expand, $apply,
// $select=*, fetchXml, duplicates and case variants), method tunnelling
// and $batch, OData key and path tricks, write bodies that bind or deep
// insert, and @odata.nextLink pointing elsewhere. Each is refused before
// the CRM sees it, or reaches the CRM with alice's team rule ANDed in
// front of the client's filter and leaks nothing.
func dynamicsAttacks() []attack {
	const b = "/api/data/v9.2/"
	g := emulator.DynamicsID
	acc1, acc2 := g("acc-1"), g("acc-2")
	other := []string{"Riley household", "Quinn family", acc2, g("acc-6")}
	// A problem names the refused column; its values must not appear.
	buy := []string{`"standardcost":`, `"currentcost":`, "310", "820"}
	// alice's team rule as crmgate writes it: her team's users and its
	// owner team, sorted (cond.In), as an or-chain.
	owners := []string{g("u-sales1"), g("u-sales2"), g("u-mgr"), g("team-store-12")}
	slices.Sort(owners)
	rule := "_ownerid_value eq " + owners[0]
	for _, o := range owners[1:] {
		rule = "(" + rule + " or _ownerid_value eq " + o + ")"
	}
	dyn := func(name, method, path, body string, status int, kind string, leak []string) attack {
		return attack{name: "dynamics/" + name, crm: "dynamics", method: method, path: path, persona: "alice",
			body: body, status: status, kind: kind, leak: leak}
	}
	bad := func(name, path string) attack { return dyn(name, "GET", path, "", 400, "bad-request", other) }
	hidden := func(name, query string) attack {
		return dyn(name, "GET", b+"products?"+query, "", 403, "hidden-field-query", buy)
	}
	// pass reaches the CRM once, $filter = (rule) and (client) or the
	// rule alone, nothing else of the client's spelling.
	pass := func(name, path string) attack {
		a := dyn(name, "GET", path, "", 200, "", other)
		want, _, _ := strings.Cut(path, "?")
		want = strings.Replace(want, "/Accounts", "/accounts", 1)
		a.reach = func(t *testing.T, got []seen) {
			t.Helper()
			if len(got) != 1 || got[0].Path != want {
				t.Fatalf("the CRM received %v, want one GET %s", got, want)
			}
			q, err := url.ParseQuery(got[0].Query)
			if err != nil || len(q["$filter"]) != 1 {
				t.Fatalf("upstream query %q has no single $filter", got[0].Query)
			}
			if p := got[0].Header.Values("Prefer"); len(p) > 1 || len(p) == 1 && !strings.HasPrefix(p[0], "odata.maxpagesize=") {
				t.Errorf("Prefer %q reached the CRM", p)
			}
			f := q.Get("$filter")
			if f != rule && !strings.HasPrefix(f, "("+rule+" and (") && !strings.HasPrefix(f, "("+rule+" and ") {
				t.Errorf("upstream $filter %q does not start with the rule %q", f, rule)
			}
		}
		return a
	}
	// readBy reaches the CRM as the canonical read and answers 404.
	readBy := func(name, path, canonical string) attack {
		a := dyn(name, "GET", path, "", 404, "not-found", []string{"Riley household", "+44 161"})
		a.reach = reached("GET " + canonical)
		return a
	}
	withHdr := func(a attack, kv ...string) attack { a.hdr = append(a.hdr, kv...); return a }
	elsewhere := func(name, link string) attack {
		a := dyn("nextLink "+name, "GET", b+"accounts", "", 200, "", []string{"evil.example", "attacker", "@odata.nextLink"})
		a.upstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
			_, _ = w.Write([]byte(`{"@odata.context":"` + link + `","value":[],"@odata.nextLink":"` + link + `"}`))
		})
		a.reach = func(t *testing.T, got []seen) {}
		return a
	}
	esc := url.QueryEscape
	return []attack{
		// Options crmgate does not classify.
		bad("$expand single-valued", b+"accounts?$expand=primarycontactid"),
		bad("$expand with $select of a masked phone", b+"accounts?$expand=contact_customer_accounts($select=telephone1)"),
		bad("$expand nested", b+"accounts?$expand=primarycontactid($expand=parentcustomerid_account)"),
		bad("$expand on one row", b+"accounts("+acc1+")?$expand=incident_customer_accounts"),
		bad("$select=*", b+"products?$select=*"),
		bad("$apply aggregate of a buy price", b+"products?$apply="+esc("aggregate(standardcost with sum as total)")),
		bad("$apply groupby owner", b+"accounts?$apply="+esc("groupby((_ownerid_value))")),
		bad("$search", b+"accounts?$search=Riley"),
		bad("$skip", b+"accounts?$skip=1"),
		bad("fetchXml", b+"accounts?fetchXml="+esc(`<fetch><entity name="account"><attribute name="name"/></entity></fetch>`)),
		bad("savedQuery", b+"accounts?savedQuery=00000000-0000-0000-00aa-000010001001"),
		bad("userQuery", b+"accounts?userQuery=00000000-0000-0000-00aa-000010001001"),
		bad("$filter duplicated", b+"accounts?$filter="+esc("name eq 'a'")+"&$filter="+esc("name eq 'b'")),
		bad("$filter duplicated by an encoded $", b+"accounts?$filter="+esc("name eq 'a'")+"&%24filter="+esc("name ne 'b'")),
		bad("$Filter case variant", b+"accounts?$Filter="+esc("name ne 'x'")),
		bad("filter without $ (OData 4.01)", b+"accounts?filter="+esc("name ne 'x'")),
		bad("parameter alias", b+"accounts?$filter="+esc("name eq @p1")+"&@p1="+esc("'x'")),
		bad("lambda any over a navigation", b+"accounts?$filter="+esc("contact_customer_accounts/any(c: c/telephone1 ne null)")),
		bad("navigation path", b+"contacts?$filter="+esc("parentcustomerid_account/name eq 'Riley household'")),
		bad("query function", b+"accounts?$filter="+esc("Microsoft.Dynamics.CRM.EqualUserId(PropertyName='ownerid')")),
		bad("in operator", b+"accounts?$filter="+esc("_ownerid_value in ("+g("u-sales3")+")")),
		bad("unbalanced parens", b+"accounts?$filter="+esc("(name eq 'x')) or (name ne 'y'")),
		bad("trailing text", b+"accounts?$filter="+esc("name eq 'x' junk")),
		bad("upper-case operator", b+"accounts?$filter="+esc("name EQ 'x'")),
		bad("bare true", b+"accounts?$filter=true"),
		bad("unterminated string", b+"accounts?$filter="+esc("name eq 'x")),
		bad("$top beyond a page", b+"accounts?$top=5001"),
		bad("$top as an exponent", b+"accounts?$top=1e3"),
		bad("$count upper-case", b+"accounts?$count=TRUE"),
		withHdr(bad("two maxpagesizes", b+"accounts"), "Prefer", "odata.maxpagesize=1,odata.maxpagesize=9"),
		dyn("query on a write", "PATCH", b+"accounts("+acc1+")?$select=name", `{"name":"x"}`, 400, "bad-request", nil),
		// Hidden columns: filtered, sorted or selected, directly or in a
		// group that or/not would otherwise hide.
		hidden("$orderby a buy price", "$orderby="+esc("standardcost desc")),
		hidden("$orderby second key", "$orderby="+esc("name,currentcost")),
		hidden("$filter not", "$filter="+esc("not (standardcost le 100)")),
		hidden("$filter or precedence", "$filter="+esc("name eq 'x' or standardcost gt 1")),
		hidden("$filter contains, case variant", "$filter="+esc("contains(StandardCost,'3')")),
		hidden("$filter percent-encoded name", "$filter=%73tandardcost%20gt%20100"),
		hidden("$select a buy price", "$select=name,currentcost"),
		// The rule holds whatever the client's filter says.
		pass("or with another owner", b+"accounts?$filter="+esc("name ne 'x' or _ownerid_value eq "+g("u-sales3"))),
		pass("not own owner", b+"accounts?$filter="+esc("not (_ownerid_value eq "+g("u-sales1")+")")),
		pass("asking for another store's account", b+"accounts?$filter="+esc("name eq 'Riley household'")),
		pass("encoded parentheses", b+"accounts?$filter=%28name%20ne%20'x'%29%20or%20%28name%20eq%20'y'%29"),
		pass("quote escape that looks like an or", b+"accounts?$filter="+esc("name eq 'x'' or 1 eq 1 or '''")),
		pass("null comparisons", b+"accounts?$filter="+esc("_ownerid_value ne null or name ne null")),
		pass("entity set case variant", b+"Accounts?$select=name"),
		pass("+ for spaces", b+"accounts?$filter=name+ne+'x'+or+_ownerid_value+eq+"+g("u-sales3")),
		withHdr(pass("include-annotations is not forwarded", b+"accounts?$select=name"), "Prefer", `odata.include-annotations="*"`),
		func() attack {
			a := dyn("one row's @odata.context names no CRM address", "GET", b+"accounts("+acc1+")", "", 200, "", []string{"$metadata"})
			a.reach = reached("GET " + b + "accounts(" + acc1 + ")")
			return a
		}(),
		// Keys and paths.
		readBy("another store's row by key", b+"accounts("+acc2+")", b+"accounts("+acc2+")"),
		readBy("upper-case GUID key", b+"ACCOUNTS("+strings.ToUpper(acc2)+")", b+"accounts("+acc2+")"),
		bad("alternate key", b+"accounts(accountnumber='ACC-2')"),
		bad("GUID in braces", b+"accounts({"+acc2+"})"),
		bad("encoded parentheses in the key", b+"accounts%28"+acc2+"%29"),
		bad("dot-dot after a key", b+"accounts("+acc1+")/.."),
		bad("encoded slash", b+"accounts("+acc1+")%2F..%2Faccounts("+acc2+")"),
		bad("$batch", b+"$batch"),
		dyn("$batch POST", "POST", b+"$batch", "--batch_1\r\nContent-Type: application/http\r\n\r\nGET accounts HTTP/1.1\r\n\r\n--batch_1--", 400, "bad-request", other),
		bad("$metadata", b+"$metadata"),
		bad("$ref", b+"accounts("+acc1+")/contact_customer_accounts/$ref"),
		bad("key with trailing text", b+"accounts("+acc1+")x"),
		dyn("single-valued navigation", "GET", b+"accounts("+acc1+")/primarycontactid", "", 403, "forbidden", other),
		dyn("function WhoAmI", "GET", b+"WhoAmI", "", 404, "not-found", nil),
		dyn("another API version", "GET", "/api/data/v9.0/accounts", "", 404, "not-found", other),
		dyn("property path", "GET", b+"accounts("+acc2+")/name/$value", "", 400, "bad-request", other),
		// Method tunnelling.
		withHdr(dyn("X-HTTP-Method DELETE", "GET", b+"accounts("+acc1+")", "", 400, "bad-request", nil), "X-HTTP-Method", "DELETE"),
		withHdr(dyn("X-HTTP-Method-Override PATCH", "POST", b+"accounts", `{"name":"x"}`, 400, "bad-request", nil), "X-HTTP-Method-Override", "PATCH"),
		// Write bodies that reach other rows.
		dyn("owner reassigned by bind", "PATCH", b+"accounts("+acc1+")", `{"ownerid@odata.bind":"/systemusers(`+g("u-sales3")+`)"}`, 400, "bad-request", nil),
		dyn("type annotation", "PATCH", b+"accounts("+acc1+")", `{"@odata.type":"Microsoft.Dynamics.CRM.contact","name":"x"}`, 400, "bad-request", nil),
		dyn("deep insert", "POST", b+"accounts", `{"name":"x","primarycontactid":{"lastname":"y"}}`, 400, "bad-request", nil),
		// Links the CRM writes never send the client elsewhere.
		elsewhere("to another host", "https://evil.example/api/data/v9.2/accounts?$skiptoken=1"),
		elsewhere("with userinfo", "http://attacker@127.0.0.1/api/data/v9.2/accounts"),
		elsewhere("relative", "//evil.example/api/data/v9.2/accounts"),
	}
}

func TestBypassDynamics(t *testing.T) {
	cases := dynamicsAttacks()
	if len(cases) < 40 {
		t.Fatalf("%d dynamics bypass cases, issue 13 asks for at least 40", len(cases))
	}
	runAttacks(t, cases)
}
