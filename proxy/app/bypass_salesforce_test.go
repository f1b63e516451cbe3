package app_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/profile"
)

// salesforceAttacks (issue 13) try to get round the salesforce profile:
// SOQL that would name hidden fields or escape the rule (comments, nested
// selects, semi-joins, relationship paths, FIELDS(), aggregates, AND/OR
// precedence, string escapes, encoded names), resources that replay or
// batch requests (unsigned or forged queryMore cursors, queryAll, search,
// composite; TestSalesforceQueryMore has the signed ones), method
// tunnelling (_HttpMethod, X-HTTP-Method-Override), id and path tricks,
// and write bodies that set lookups crmgate would not see. Each is
// refused before Salesforce sees it, or reaches Salesforce with alice's
// team rule as the first WHERE term and leaks nothing.
func salesforceAttacks() []attack {
	b := sfBase
	id := emulator.SalesforceID
	acc1, acc2 := id("Account", "acc-1"), id("Account", "acc-2")
	other := []string{"Riley household", "Quinn family", acc2, id("Account", "acc-6")}
	buy := []string{`"Cost__c":`, "310", "820"}
	owners := []string{id("User", "u-sales1"), id("User", "u-sales2"), id("User", "u-mgr")}
	slices.Sort(owners)
	rule := "OwnerId IN ('" + strings.Join(owners, "', '") + "')"
	q := func(soql string) string { return b + "/query?q=" + url.QueryEscape(soql) }
	sf := func(name, method, path, body string, status int, kind string, leak []string) attack {
		return attack{name: "salesforce/" + name, crm: "salesforce", method: method, path: path, persona: "alice",
			body: body, status: status, kind: kind, leak: leak}
	}
	bad := func(name, path string) attack { return sf(name, "GET", path, "", 400, "bad-request", other) }
	unknown := func(name, method, path string) attack { return sf(name, method, path, "", 404, "not-found", other) }
	hidden := func(name, path string) attack { return sf(name, "GET", path, "", 403, "hidden-field-query", buy) }
	// pass reaches Salesforce once with a query whose WHERE starts with
	// the rule, ANDed with the client's whole condition.
	pass := func(name, path string) attack {
		a := sf(name, "GET", path, "", 200, "", other)
		a.reach = func(t *testing.T, got []seen) {
			t.Helper()
			if len(got) != 1 || got[0].Path != b+"/query" {
				t.Fatalf("the CRM received %v, want one GET %s/query", got, b)
			}
			v, err := url.ParseQuery(got[0].Query)
			if err != nil || len(v) != 1 || len(v["q"]) != 1 {
				t.Fatalf("upstream query %q is not one q", got[0].Query)
			}
			parsed, err := profile.ParseSOQL(v.Get("q"))
			if err != nil {
				t.Fatalf("upstream SOQL %q: %v", v.Get("q"), err)
			}
			w := parsed.Where
			if w == nil {
				t.Fatalf("upstream SOQL %q has no WHERE", v.Get("q"))
			}
			if w.String() != rule && (w.Op != profile.SOQLAnd || len(w.Args) != 2 || w.Args[0].String() != rule) {
				t.Errorf("upstream WHERE %q is not (%s) AND (client)", w, rule)
			}
		}
		return a
	}
	readBy := func(name, path, canonical string) attack {
		a := sf(name, "GET", path, "", 404, "not-found", []string{"Riley household", "+44 161"})
		a.reach = reached("GET " + canonical)
		return a
	}
	withHdr := func(a attack, kv ...string) attack { a.hdr = append(a.hdr, kv...); return a }
	return []attack{
		// SOQL crmgate does not classify.
		bad("line comment", q("SELECT Name FROM Account -- WHERE OwnerId = 'x'")),
		bad("block comment", q("SELECT Name FROM Account /* AND OwnerId = 'x' */")),
		bad("FIELDS(ALL)", q("SELECT FIELDS(ALL) FROM Product2 LIMIT 200")),
		bad("FIELDS(STANDARD), lower case", q("select fields(standard) from Contact")),
		bad("sub-query in SELECT", q("SELECT Name, (SELECT Phone FROM Contacts) FROM Account")),
		bad("semi-join", q("SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE Phone LIKE '+44 161%')")),
		bad("anti-join", q("SELECT Name FROM Account WHERE Id NOT IN (SELECT AccountId FROM Opportunity)")),
		bad("relationship path in SELECT", q("SELECT LastName, Account.Phone FROM Contact")),
		bad("relationship path in WHERE", q("SELECT LastName FROM Contact WHERE Account.OwnerId = '"+id("User", "u-sales3")+"'")),
		bad("relationship path in ORDER BY", q("SELECT LastName FROM Contact ORDER BY Owner.Name")),
		bad("TYPEOF", q("SELECT TYPEOF What WHEN Account THEN Phone END FROM Task")),
		bad("COUNT()", q("SELECT COUNT() FROM Account")),
		bad("aggregate of a buy price", q("SELECT SUM(Cost__c) FROM Product2")),
		bad("toLabel", q("SELECT toLabel(Status) FROM Case")),
		bad("GROUP BY owner", q("SELECT OwnerId FROM Account GROUP BY OwnerId")),
		bad("USING SCOPE", q("SELECT Name FROM Account USING SCOPE Everything")),
		bad("WITH", q("SELECT Name FROM Account WITH SECURITY_ENFORCED")),
		bad("FOR UPDATE", q("SELECT Name FROM Account FOR UPDATE")),
		bad("ALL ROWS", q("SELECT Name FROM Account ALL ROWS")),
		bad("object alias", q("SELECT a.Name FROM Account a")),
		bad("AND and OR without parentheses", q("SELECT Name FROM Account WHERE Name = 'x' AND Type = 'y' OR Name != null")),
		bad("OR then AND without parentheses", q("SELECT Name FROM Account WHERE Name != null OR Name = 'x' AND Type = 'y'")),
		bad("bind variable", q("SELECT Name FROM Account WHERE OwnerId = :me")),
		bad("two objects", q("SELECT Name FROM Account, Contact")),
		bad("statement after the query", q("SELECT Name FROM Account; SELECT Name FROM Contact")),
		bad("unterminated string swallowing the rule", q("SELECT Name FROM Account WHERE Name = 'x")),
		bad("invalid escape", q(`SELECT Name FROM Account WHERE Name = 'x\' OR Name != \q'`)),
		bad("OFFSET beyond Salesforce's", q("SELECT Name FROM Account LIMIT 10 OFFSET 2001")),
		bad("q twice", q("SELECT Name FROM Account")+"&q="+url.QueryEscape("SELECT Name FROM Contact")),
		bad("q twice, once encoded", q("SELECT Name FROM Account")+"&%71="+url.QueryEscape("SELECT Name FROM Contact")),
		bad("q without a value", b+"/query?q"),
		bad("another parameter", q("SELECT Name FROM Account")+"&batchSize=2000"),
		bad("fields on a list", b+"/query?fields=Name"),
		bad("fields with a path", b+"/sobjects/Account/"+acc1+"?fields=Name,Owner.Email"),
		bad("fields twice", b+"/sobjects/Account/"+acc1+"?fields=Name&fields=Phone"),
		// Hidden fields, in every clause and spelling.
		hidden("SELECT a buy price", q("SELECT Name, Cost__c FROM Product2")),
		hidden("SELECT a buy price, case variant", q("SELECT Name, COST__C FROM Product2")),
		hidden("WHERE on a buy price", q("SELECT Name FROM Product2 WHERE Cost__c > 100")),
		hidden("WHERE NOT", q("SELECT Name FROM Product2 WHERE NOT (Cost__c <= 100)")),
		hidden("OR precedence", q("SELECT Name FROM Product2 WHERE Name = 'x' OR (Cost__c > 1 AND Name != 'y')")),
		hidden("IN list", q("SELECT Name FROM Product2 WHERE Cost__c IN (310, 820)")),
		hidden("ORDER BY", q("SELECT Name FROM Product2 ORDER BY Name, Cost__c DESC NULLS LAST")),
		hidden("percent-encoded name", b+"/query?q=SELECT%20Name%20FROM%20Product2%20WHERE%20%43ost__c%20%3E%20100"),
		hidden("fields= on a read", b+"/sobjects/Product2/"+id("Product2", "p-1")+"?fields=Name,Cost__c"),
		sf("LIKE on a masked phone", "GET", q("SELECT LastName FROM Contact WHERE Phone LIKE '+44 161%'"), "", 403, "hidden-field-query", []string{"+44 161"}),
		// The rule holds whatever the client's WHERE says.
		pass("OR with another owner", q("SELECT Name, OwnerId FROM Account WHERE Name != 'x' OR OwnerId = '"+id("User", "u-sales3")+"'")),
		pass("NOT own owner", q("SELECT Name FROM Account WHERE NOT (OwnerId = '"+owners[0]+"')")),
		pass("asking for another store's account", q("SELECT Name FROM Account WHERE Name = 'Riley household'")),
		pass("escaped quote that looks like an OR", q(`SELECT Name FROM Account WHERE Name = 'x\' OR Name != \'y'`)),
		pass("encoded parentheses", b+"/query?q=SELECT%20Name%20FROM%20Account%20WHERE%20%28Name%20!%3D%20'x'%20OR%20Name%20%3D%20'y'%29"),
		pass("+ for spaces", b+"/query?q=SELECT+Name+FROM+Account+WHERE+Name+!%3D+'x'+OR+OwnerId+!%3D+null"),
		pass("object and keywords in lower case", q("select name from account where name != null order by name")),
		pass("null comparisons", q("SELECT Name FROM Account WHERE OwnerId = null OR OwnerId != null")),
		pass("LIMIT and OFFSET", q("SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1")),
		pass("IN with another owner", q("SELECT Name FROM Account WHERE OwnerId IN ('"+id("User", "u-sales3")+"', '"+owners[0]+"')")),
		// Resources that replay, batch or search.
		bad("queryMore without crmgate's signature", b+"/query/01gD0000002HU6KIAW-2000"),
		sf("queryMore with a forged signature", "GET", b+"/query/01gD0000002HU6KIAW-2000?object=Account&exp=99999999999&sig="+strings.Repeat("A", 43), "", 404, "not-found", other),
		bad("queryMore with a query", b+"/query/01gD0000002HU6KIAW-2000?object=Account&exp=1&sig=x&q=SELECT+Name+FROM+Account"),
		bad("queryMore signature given twice", b+"/query/01gD0000002HU6KIAW-2000?object=Account&exp=1&sig=x&sig=y"),
		sf("queryMore for an object alice may not list", "GET", b+"/query/01gD0000002HU6KIAW-2000?object=Case&exp=99999999999&sig=x", "", 403, "forbidden", other),
		unknown("queryAll", "GET", b+"/queryAll?q=SELECT+Name+FROM+Account"),
		unknown("SOSL search", "GET", b+"/search?q=FIND+%7BRiley%7D"),
		unknown("parameterized search", "GET", b+"/parameterizedSearch?q=Riley"),
		unknown("composite", "POST", b+"/composite"),
		unknown("composite batch", "POST", b+"/composite/batch"),
		unknown("composite tree", "POST", b+"/composite/tree/Account"),
		unknown("sObject collections", "PATCH", b+"/composite/sobjects"),
		unknown("global describe", "GET", b+"/sobjects"),
		unknown("recent items", "GET", b+"/sobjects/Account"),
		unknown("describe", "GET", b+"/sobjects/Account/describe"),
		unknown("approvalLayouts (15 letters, shaped like an id)", "GET", b+"/sobjects/Account/approvalLayouts"),
		unknown("tooling query", "GET", b+"/tooling/query?q=SELECT+Id+FROM+ApexClass"),
		unknown("Apex REST", "GET", "/services/apexrest/accounts"),
		unknown("query in the path's version slot", "GET", "/services/data/query?q=SELECT+Name+FROM+Account"),
		// Ids and paths.
		readBy("another store's record by id", b+"/sobjects/Account/"+acc2, b+"/sobjects/Account/"+acc2),
		readBy("object name in lower case", b+"/sobjects/account/"+acc2, b+"/sobjects/Account/"+acc2),
		bad("15-character id", b+"/sobjects/Account/"+acc2[:15]),
		bad("id with a wrong checksum", b+"/sobjects/Account/"+acc2[:15]+"AAA"),
		bad("upsert by external id", b+"/sobjects/Account/AccountNumber/ACC-2"),
		bad("API version without a minor", "/services/data/v62/query?q=SELECT+Name+FROM+Account"),
		bad("encoded slash", b+"/sobjects/Account/"+acc1+"%2F..%2F"+acc2),
		bad("trailing slash", b+"/query/?q=SELECT+Name+FROM+Account"),
		sf("lookup relationship read as a list", "GET", b+"/sobjects/Contact/"+id("Contact", "c-1")+"/Account", "", 403, "forbidden", other),
		// Method tunnelling.
		sf("_HttpMethod on a create", "POST", b+"/sobjects/Account?_HttpMethod=DELETE", `{"Name":"x"}`, 400, "bad-request", nil),
		sf("_HttpMethod percent-encoded", "POST", b+"/sobjects/Account?%5FHttpMethod=PATCH", `{"Name":"x"}`, 400, "bad-request", nil),
		withHdr(sf("X-HTTP-Method-Override", "POST", b+"/sobjects/Account", `{"Name":"x"}`, 400, "bad-request", nil), "X-HTTP-Method-Override", "DELETE"),
		withHdr(sf("X-HTTP-Method on a read", "GET", b+"/sobjects/Account/"+acc1, "", 400, "bad-request", nil), "X-HTTP-Method", "DELETE"),
		// Write bodies that reach other records.
		sf("lookup set through an external id", "POST", b+"/sobjects/Contact", `{"LastName":"x","Account":{"AccountNumber":"ACC-2"}}`, 400, "bad-request", nil),
		sf("attributes naming another object", "PATCH", b+"/sobjects/Account/"+acc1, `{"attributes":{"type":"Case"},"Name":"x"}`, 400, "bad-request", nil),
		sf("client-chosen id", "POST", b+"/sobjects/Account", `{"Name":"x","id":"`+acc2+`"}`, 400, "bad-request", nil),
		func() attack {
			// The target check reads the record; the write never follows.
			a := sf("another team's record given to alice", "PATCH", b+"/sobjects/Account/"+acc2, `{"OwnerId":"`+owners[0]+`"}`, 404, "not-found", nil)
			a.reach = reached("GET " + b + "/sobjects/Account/" + acc2)
			return a
		}(),
	}
}

func TestBypassSalesforce(t *testing.T) {
	cases := salesforceAttacks()
	if len(cases) < 40 {
		t.Fatalf("%d salesforce bypass cases, issue 13 asks for at least 40", len(cases))
	}
	runAttacks(t, cases)
}
