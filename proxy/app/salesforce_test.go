package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/profile"
)

const sfBase = "/services/data/" + profile.SalesforceAPIVersion

// sfObjects are the reference policy's classes as Salesforce objects,
// with a record every persona allowed to read it may read and the bodies
// a create and an update send (each object's required fields). Calls are
// Tasks in Salesforce; the reference policy's call class has no object.
var sfObjects = []struct {
	class, object, id, create, update string
}{
	// Cases first: an admin's create names acc-1, which the admin deletes
	// with the Account row.
	{"case", "Case", "cs-1", `{"Subject":"written by test","AccountId":"` + emulator.SalesforceID("Account", "acc-1") + `"}`, `{"Description":"written by test"}`},
	{"account", "Account", "acc-1", `{"Name":"written by test"}`, `{"Description":"written by test"}`},
	{"contact", "Contact", "c-1", `{"LastName":"written by test"}`, `{"Description":"written by test"}`},
	{"lead", "Lead", "l-1", `{"LastName":"written by test","Company":"Test Ltd"}`, `{"Description":"written by test"}`},
	{"opportunity", "Opportunity", "o-1", `{"Name":"written by test","StageName":"Prospecting","CloseDate":"2026-12-31"}`, `{"Description":"written by test"}`},
	{"product", "Product2", "p-1", `{"Name":"written by test"}`, `{"Description":"written by test"}`},
	{"employee", "Employee__c", "", `{"Last_Name__c":"written by test"}`, `{"Title__c":"written by test"}`},
	{"user", "User", "u-sales1", `{"LastName":"Test","Username":"test@store.example","Email":"test@store.example"}`, `{"Title":"written by test"}`},
}

// sfQuery is the /query path of a SOQL query.
func sfQuery(soql string) string {
	return sfBase + "/query?q=" + strings.ReplaceAll(url.QueryEscape(soql), "+", "%20")
}

func sfRecordPath(object, datasetID string) string {
	return sfBase + "/sobjects/" + object + "/" + emulator.SalesforceID(object, datasetID)
}

// TestSalesforcePersonaModuleAccess is TestPersonaModuleAccess against the
// Salesforce emulator: every persona × object × action, lists as SOQL
// queries classified by their FROM object.
func TestSalesforcePersonaModuleAccess(t *testing.T) {
	for _, persona := range []string{"pat", "alice", "morgan", "ivan", "sky", "sam", "sam-nomfa"} {
		e := newEnv(t, "salesforce")
		for _, obj := range sfObjects {
			for _, action := range []string{"L", "R", "C", "U", "D"} {
				id := obj.id
				if obj.class == "employee" {
					id = ownEmployee[persona]
				}
				var method, path, body string
				switch action {
				case "L":
					method, path = "GET", sfQuery("SELECT Id FROM "+obj.object)
				case "R":
					method, path = "GET", sfRecordPath(obj.object, id)
				case "C":
					method, path, body = "POST", sfBase+"/sobjects/"+obj.object, obj.create
				case "U":
					method, path, body = "PATCH", sfRecordPath(obj.object, id), obj.update
				case "D":
					method, path = "DELETE", sfRecordPath(obj.object, id)
				}
				t.Run(fmt.Sprintf("%s/%s/%s", persona, obj.object, action), func(t *testing.T) {
					e.upstream.reset()
					r := e.do(method, path, persona, body)
					assertGrantAnswer(t, e, r, persona, obj.class, action, method, true)
				})
			}
		}
	}
}

// sfRecords runs a query as persona and returns the records and the
// envelope.
func sfRecords(t *testing.T, e *env, persona, path string) ([]map[string]any, map[string]any) {
	t.Helper()
	r := e.do("GET", path, persona, "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s as %s: %d %s", path, persona, r.Status, r.Body)
	}
	doc := r.json(t)
	recs, ok := doc["records"].([]any)
	if !ok {
		t.Fatalf("no records array: %s", r.Body)
	}
	var out []map[string]any
	for _, v := range recs {
		out = append(out, v.(map[string]any))
	}
	return out, doc
}

// upstreamSOQL is the query crmgate sent the CRM last.
func upstreamSOQL(t *testing.T, e *env) string {
	t.Helper()
	up := e.upstream.crmRequests()
	if len(up) == 0 {
		t.Fatal("nothing reached the CRM")
	}
	q, err := url.ParseQuery(up[len(up)-1].Query)
	if err != nil {
		t.Fatal(err)
	}
	return q.Get("q")
}

// TestSalesforceListFiltering: each persona's query answers exactly the
// records the rule admits, with the rule as the first WHERE term (full
// pages, Salesforce's own totalSize), and no OR of the client's reaches
// past it.
func TestSalesforceListFiltering(t *testing.T) {
	e := newEnv(t, "salesforce")
	team := map[string]bool{}
	for _, u := range []string{"u-sales1", "u-sales2", "u-mgr"} {
		team[emulator.SalesforceID("User", u)] = true
	}
	recs, doc := sfRecords(t, e, "alice", sfQuery("SELECT Name FROM Account"))
	if len(recs) != 4 || doc["totalSize"] != float64(4) || doc["done"] != true {
		t.Fatalf("alice sees %d accounts (totalSize %v), want store-12's 4: %v", len(recs), doc["totalSize"], recs)
	}
	for _, r := range recs {
		if !team[fmt.Sprint(r["OwnerId"])] {
			t.Errorf("alice sees an account owned by %v", r["OwnerId"])
		}
		if attrs, _ := r["attributes"].(map[string]any); attrs["type"] != "Account" {
			t.Errorf("record attributes %v", r["attributes"])
		}
	}
	soql := upstreamSOQL(t, e)
	if !strings.HasPrefix(soql, "SELECT Name, OwnerId FROM Account WHERE OwnerId IN (") {
		t.Errorf("upstream query %q does not carry the rule", soql)
	}
	// A client OR is parenthesised after the rule, never beside it.
	e.upstream.reset()
	other := emulator.SalesforceID("User", "u-sales3")
	recs, _ = sfRecords(t, e, "alice", sfQuery("SELECT Name, OwnerId FROM Account WHERE Name != 'x' OR OwnerId = '"+other+"'"))
	for _, r := range recs {
		if !team[fmt.Sprint(r["OwnerId"])] {
			t.Errorf("an OR in the client's WHERE reached another team's account (%v)", r["OwnerId"])
		}
	}
	if soql := upstreamSOQL(t, e); !strings.Contains(soql, ") AND (Name != 'x' OR OwnerId = '"+other+"')") {
		t.Errorf("upstream query %q is not (rule) AND (client)", soql)
	}
	// Spelled in any case, the rule's owner field is the rule's.
	e.upstream.reset()
	recs, _ = sfRecords(t, e, "alice", sfQuery("select name, ownerid from account"))
	if len(recs) != 4 {
		t.Errorf("lower-case query: %d records", len(recs))
	}
	if soql := upstreamSOQL(t, e); !strings.HasPrefix(soql, "SELECT name, OwnerId FROM Account WHERE") {
		t.Errorf("upstream query %q", soql)
	}
	// A customer: her own account and its contacts.
	recs, _ = sfRecords(t, e, "pat", sfQuery("SELECT Id, Name FROM Account"))
	if len(recs) != 1 || recs[0]["Id"] != emulator.SalesforceID("Account", "acc-1") {
		t.Errorf("pat sees %v", recs)
	}
	recs, _ = sfRecords(t, e, "pat", sfQuery("SELECT LastName FROM Contact"))
	if len(recs) != 1 {
		t.Errorf("pat sees %d contacts, want her account's one", len(recs))
	}
	// Without pushdown the same records come back, the total hidden.
	off := newEnv(t, "salesforce", pushdownOff)
	recs, doc = sfRecords(t, off, "alice", sfQuery("SELECT Name FROM Account"))
	if len(recs) != 4 {
		t.Errorf("filtered after: %d records", len(recs))
	}
	if _, ok := doc["totalSize"]; ok && doc["totalSize"] != float64(4) {
		t.Errorf("filtered after, yet the CRM's totalSize passed: %v", doc["totalSize"])
	}
}

// TestSalesforceFieldRules: buy prices hidden, phones masked, salaries by
// role, in Salesforce field names; hidden fields may not be selected,
// filtered or sorted on, through any clause.
func TestSalesforceFieldRules(t *testing.T) {
	e := newEnv(t, "salesforce")
	p1 := sfRecordPath("Product2", "p-1")
	r := e.do("GET", p1, "alice", "")
	if r.Status != 200 || strings.Contains(string(r.Body), "Cost__c") || !strings.Contains(string(r.Body), `"Name":"Oak dining table"`) {
		t.Errorf("alice reads a product: %d %s", r.Status, r.Body)
	}
	if r = e.do("GET", p1, "ivan", ""); !strings.Contains(string(r.Body), `"Cost__c":310`) {
		t.Errorf("ivan does not see the buy price: %s", r.Body)
	}
	// A customer sees the catalogue's allow-list only.
	r = e.do("GET", p1, "pat", "")
	if r.Status != 200 || strings.Contains(string(r.Body), "Cost__c") || !strings.Contains(string(r.Body), `"ProductCode"`) {
		t.Errorf("pat reads a product: %d %s", r.Status, r.Body)
	}
	recs, _ := sfRecords(t, e, "alice", sfQuery("SELECT LastName, Phone, MobilePhone, Email FROM Contact"))
	if len(recs) == 0 {
		t.Fatal("no contacts")
	}
	for _, c := range recs {
		for _, f := range []string{"Phone", "MobilePhone", "Email"} {
			if v, _ := c[f].(string); v != "" && !strings.Contains(v, "*") {
				t.Errorf("alice sees contact %s %q unmasked", f, v)
			}
		}
	}
	for _, q := range []string{
		"SELECT Name, Cost__c FROM Product2",
		"SELECT Name, cost__C FROM Product2",
		"SELECT Name FROM Product2 WHERE Cost__c > 100",
		"SELECT Name FROM Product2 WHERE NOT (Cost__c <= 100)",
		"SELECT Name FROM Product2 WHERE Name = 'x' OR (Cost__c > 1 AND Name != 'y')",
		"SELECT Name FROM Product2 WHERE Cost__c IN (310, 311)",
		"SELECT Name FROM Product2 ORDER BY Cost__c DESC",
		"SELECT LastName FROM Contact WHERE Phone LIKE '+44%'",
		"SELECT LastName FROM Contact ORDER BY Email",
	} {
		e.upstream.reset()
		r := e.do("GET", sfQuery(q), "alice", "")
		assertProblem(t, r, http.StatusForbidden, "hidden-field-query")
		assertNothingUpstream(t, e)
	}
	if r := e.do("GET", p1+"?fields=Name,Cost__c", "alice", ""); r.Status != http.StatusForbidden {
		t.Errorf("alice asks for the buy price by fields=: %d %s", r.Status, r.Body)
	}
	// Salary: a line manager sees his report's, sales only her own.
	emp := func(persona, id string) response { return e.do("GET", sfRecordPath("Employee__c", id), persona, "") }
	if r := emp("morgan", "e-sales1"); !strings.Contains(string(r.Body), "Salary__c") {
		t.Errorf("morgan does not see his report's salary: %s", r.Body)
	}
	if r := emp("alice", "e-sales1"); !strings.Contains(string(r.Body), "Salary__c") {
		t.Errorf("alice does not see her own salary: %s", r.Body)
	}
	if r := emp("alice", "e-sales2"); r.Status != http.StatusNotFound {
		t.Errorf("alice reads a colleague's personnel record: %d %s", r.Status, r.Body)
	}
	recs, _ = sfRecords(t, e, "morgan", sfQuery("SELECT Name, Salary__c FROM Employee__c"))
	if len(recs) < 3 {
		t.Errorf("morgan lists %d personnel records", len(recs))
	}
}

// TestSalesforceWriteGuards: read-only and hidden fields, other owners'
// records, lookups set through external ids and method tunnels are
// refused before Salesforce sees them.
func TestSalesforceWriteGuards(t *testing.T) {
	e := newEnv(t, "salesforce")
	acc2 := emulator.SalesforceID("Account", "acc-2")
	cases := []struct {
		name, persona, method, path, body string
		status                            int
	}{
		{"sales writes a buy price", "alice", "PATCH", sfRecordPath("Product2", "p-1"), `{"Cost__c":1}`, http.StatusForbidden},
		{"inventory writes a salary", "ivan", "PATCH", sfRecordPath("Employee__c", "e-inv"), `{"Salary__c":1}`, http.StatusForbidden},
		{"sales updates another team's account", "alice", "PATCH", sfRecordPath("Account", "acc-2"), `{"Name":"x"}`, http.StatusNotFound},
		{"sales deletes another team's lead", "alice", "DELETE", sfRecordPath("Lead", "l-2"), ``, http.StatusNotFound},
		{"customer moves her case to another account", "pat", "PATCH", sfRecordPath("Case", "cs-1"), `{"AccountId":"` + acc2 + `"}`, http.StatusForbidden},
		{"customer files a case for another account", "pat", "POST", sfBase + "/sobjects/Case", `{"Subject":"x","AccountId":"` + acc2 + `"}`, http.StatusForbidden},
		{"lookup through an external id", "alice", "POST", sfBase + "/sobjects/Contact", `{"LastName":"x","Account":{"AccountNumber":"A-2"}}`, http.StatusBadRequest},
		{"attributes member", "alice", "POST", sfBase + "/sobjects/Contact", `{"attributes":{"type":"Case"},"LastName":"x"}`, http.StatusBadRequest},
		{"client-chosen id on create", "alice", "POST", sfBase + "/sobjects/Account", `{"Name":"x","Id":"` + acc2 + `"}`, http.StatusBadRequest},
		// No POST route takes a record path: refused as unknown before the
		// parameter is read.
		{"_HttpMethod tunnel", "alice", "POST", sfRecordPath("Account", "acc-2") + "?_HttpMethod=DELETE", ``, http.StatusNotFound},
		{"_HttpMethod tunnel on create", "pat", "POST", sfBase + "/sobjects/Account?_HttpMethod=PATCH", `{"Name":"x"}`, http.StatusBadRequest},
		{"composite", "sam", "POST", sfBase + "/composite", `{"compositeRequest":[]}`, http.StatusNotFound},
		{"customer deletes her account", "pat", "DELETE", sfRecordPath("Account", "acc-1"), ``, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.upstream.reset()
			r := e.do(c.method, c.path, c.persona, c.body)
			if r.Status != c.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, c.status)
			}
			for _, s := range e.upstream.crmRequests() {
				if s.Method != http.MethodGet {
					t.Fatalf("refused write reached the CRM: %+v", s)
				}
			}
		})
	}
	// An allowed write goes through; a create answers Salesforce's envelope.
	r := e.do("POST", sfBase+"/sobjects/Account", "alice", `{"Name":"new shop"}`)
	var created struct {
		ID      string `json:"id"`
		Success bool   `json:"success"`
	}
	if err := json.Unmarshal(r.Body, &created); r.Status != http.StatusCreated || err != nil || !created.Success || !profile.IsSalesforceID(created.ID) {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if r := e.do("PATCH", sfRecordPath("Account", "acc-1"), "alice", `{"Name":"renamed"}`); r.Status != http.StatusNoContent {
		t.Fatalf("alice renames her account: %d %s", r.Status, r.Body)
	}
}

// TestSalesforceRelatedAndPaging: child relationships are judged by the
// child object's policy; paging with LIMIT/OFFSET reaches every record the
// rule admits exactly once, pushed down or filtered after; a locator
// crmgate did not sign is refused (TestSalesforceQueryMore signs them).
func TestSalesforceRelatedAndPaging(t *testing.T) {
	acc1 := emulator.SalesforceID("Account", "acc-1")
	e := newEnv(t, "salesforce")
	if r := e.do("GET", sfBase+"/sobjects/Account/"+acc1+"/Cases", "alice", ""); r.Status != http.StatusForbidden {
		t.Errorf("sales reads cases through an account: %d %s", r.Status, r.Body)
	}
	recs, _ := sfRecords(t, e, "alice", sfBase+"/sobjects/Account/"+acc1+"/Contacts")
	if len(recs) == 0 {
		t.Fatal("no contacts through the account")
	}
	for _, c := range recs {
		if tel, _ := c["Phone"].(string); tel != "" && !strings.Contains(tel, "*") {
			t.Errorf("related contact phone %q not masked by the contact rules", tel)
		}
	}
	if r := e.do("GET", sfBase+"/sobjects/Account/"+acc1+"/Cases", "sky", ""); r.Status != http.StatusOK {
		t.Errorf("support reads an account's cases: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", sfBase+"/sobjects/Account/"+acc1+"/Owner", "alice", ""); r.Status != http.StatusForbidden {
		t.Errorf("a lookup relationship read as a list: %d %s", r.Status, r.Body)
	}
	e.upstream.reset()
	if r := e.do("GET", sfBase+"/query/01gD0000002HU6KIAW-2000", "sam", ""); r.Status != http.StatusBadRequest {
		t.Errorf("queryMore without crmgate's signature: %d %s", r.Status, r.Body)
	}
	assertNothingUpstream(t, e)

	on := newEnvWithPolicy(t, "salesforce", unbudgetedPolicy(t))
	off := newEnvWithPolicy(t, "salesforce", unbudgetedPolicy(t), pushdownOff)
	for _, env := range []*env{on, off} {
		for _, m := range []string{"Accounts", "Contacts", "Cases", "Opportunities"} {
			env.ds.AddSynthetic(m, 25, 3)
		}
	}
	exact, total := 0, 0
	for _, persona := range []string{"pat", "alice", "morgan", "sky", "sam"} {
		for _, obj := range []struct{ class, object string }{{"account", "Account"}, {"contact", "Contact"}, {"case", "Case"}, {"opportunity", "Opportunity"}} {
			if !strings.Contains(moduleGrants[persona][obj.class], "L") {
				continue
			}
			for _, size := range []int{1, 4, 20} {
				got, counted := sfReachable(t, on, persona, obj.object, size)
				want, offCounted := sfReachable(t, off, persona, obj.object, size)
				if offCounted && persona != "sam" {
					t.Errorf("%s %s: filtered after, yet totalSize passed", persona, obj.object)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s %s size %d: pushed down reaches %d records, filtered after %d", persona, obj.object, size, len(got), len(want))
				}
				if counted {
					exact++
				}
				total++
			}
		}
	}
	t.Logf("salesforce: %d of %d persona × object × page size lists pushed down exactly", exact, total)
	if exact != total {
		t.Errorf("only %d of %d lists exact: the reference rules all translate into SOQL", exact, total)
	}
}

// sfReachable pages through an object's records with LIMIT and OFFSET
// (ordered by Id) over every offset the CRM holds records for, and returns
// the ids reached (sorted, each once) and whether every page carried
// totalSize. Filtered after, a page may be short or empty with more to
// come, so the walk does not stop at the first short page; pushed down,
// the pages must be full up to the end, which totalSize says.
func sfReachable(t *testing.T, e *env, persona, object string, size int) ([]string, bool) {
	t.Helper()
	var ids []string
	counted := true
	n := e.ds.Count(map[string]string{"Account": "Accounts", "Contact": "Contacts", "Case": "Cases", "Opportunity": "Opportunities"}[object])
	for offset := 0; offset < n; offset += size {
		recs, doc := sfRecords(t, e, persona, sfQuery(fmt.Sprintf("SELECT Id FROM %s ORDER BY Id LIMIT %d OFFSET %d", object, size, offset)))
		total, ok := doc["totalSize"].(float64)
		counted = counted && ok
		if ok && len(recs) != min(size, max(0, int(total))) && offset == 0 {
			t.Errorf("%s %s: first page holds %d of %d, totalSize %v", persona, object, len(recs), size, total)
		}
		for _, r := range recs {
			id := r["Id"].(string)
			if slices.Contains(ids, id) {
				t.Errorf("%s %s size %d: %s on two pages", persona, object, size, id)
			}
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, counted
}

// TestSalesforcePolicyIDs: the policy data's Salesforce ids are the
// emulator's, so persona rules name the records the emulator serves.
func TestSalesforcePolicyIDs(t *testing.T) {
	b, err := os.ReadFile("../../rego/data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		D struct {
			IDs map[string]map[string]string `json:"crm_ids"`
		} `json:"crmgate_data"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	ids := data.D.IDs["salesforce"]
	if len(ids) < 20 {
		t.Fatalf("crm_ids.salesforce has %d entries", len(ids))
	}
	objects := map[string]string{"u-": "User", "e-": "Employee__c", "acc-": "Account", "c-": "Contact"}
	for k, v := range ids {
		var object string
		for prefix, o := range objects {
			if strings.HasPrefix(k, prefix) {
				object = o
			}
		}
		if want := emulator.SalesforceID(object, k); v != want || !profile.IsSalesforceID(v) {
			t.Errorf("crm_ids.salesforce[%s] = %s, the emulator's %s id is %s", k, v, object, want)
		}
	}
}

// TestSalesforceQueryMore: a query's continuation (nextRecordsUrl) comes
// back signed for the subject and object, paging through it reaches every
// record the rule admits once, and the link is refused to anyone else,
// tampered with, for another object or once expired, before Salesforce
// sees it.
func TestSalesforceQueryMore(t *testing.T) {
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	e := newEnvAt(t, "salesforce", unbudgetedPolicy(t), now)
	e.ds.AddSynthetic("Accounts", 900, 5)
	want := 0
	team := map[string]bool{"u-sales1": true, "u-sales2": true, "u-mgr": true}
	for _, rec := range e.ds.Snapshot("Accounts") {
		if team[fmt.Sprint(rec["assigned_user_id"])] {
			want++
		}
	}
	seen := map[string]bool{}
	path, next := sfQuery("SELECT Name FROM Account"), ""
	for pages := 0; path != ""; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		r := e.do("GET", path, "alice", "", "Sforce-Query-Options", "batchSize=200")
		if r.Status != http.StatusOK {
			t.Fatalf("page %d %s: %d %s", pages, path, r.Status, r.Body)
		}
		doc := r.json(t)
		for _, v := range doc["records"].([]any) {
			id := v.(map[string]any)["attributes"].(map[string]any)["url"].(string)
			if seen[id] {
				t.Fatalf("record %s twice", id)
			}
			seen[id] = true
		}
		path, _ = doc["nextRecordsUrl"].(string)
		if path != "" {
			next = path
			if doc["done"] != false || !strings.Contains(path, "sig=") || !strings.HasPrefix(path, sfBase+"/query/") {
				t.Fatalf("continuation %q (done %v)", path, doc["done"])
			}
		}
	}
	if len(seen) != want || want <= 400 || next == "" {
		t.Fatalf("queryMore reached %d records, the rule admits %d (last link %q)", len(seen), want, next)
	}
	u, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	other := func(k, v string) string {
		c := url.Values{}
		for name, vs := range q {
			c[name] = vs
		}
		c.Set(k, v)
		return u.Path + "?" + c.Encode()
	}
	refused := []struct {
		name, persona, path string
		status              int
	}{
		{"another user of the same team", "morgan", next, http.StatusNotFound},
		{"the admin", "sam", next, http.StatusNotFound},
		{"another object", "alice", other("object", "Contact"), http.StatusNotFound},
		{"a later expiry", "alice", other("exp", "99999999999"), http.StatusNotFound},
		{"a forged signature", "alice", other("sig", strings.Repeat("A", 43)), http.StatusNotFound},
		{"another locator", "alice", strings.Replace(next, "-", "-1", 1), http.StatusNotFound},
		{"the bare locator", "alice", u.Path, http.StatusBadRequest},
		{"a parameter added", "alice", next + "&q=SELECT+Name+FROM+Contact", http.StatusBadRequest},
		{"no token", "", next, http.StatusUnauthorized},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			e.upstream.reset()
			r := e.do("GET", c.path, c.persona, "")
			if r.Status != c.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, c.status)
			}
			assertNothingUpstream(t, e)
		})
	}
	// The signature expires: paging slower than that starts over.
	mu.Lock()
	clock = clock.Add(31 * time.Minute)
	mu.Unlock()
	e.upstream.reset()
	if r := e.do("GET", next, "alice", ""); r.Status != http.StatusNotFound {
		t.Fatalf("expired cursor: %d %s", r.Status, r.Body)
	}
	assertNothingUpstream(t, e)
	// The decision log says why continuations were filtered after.
	assertLogged(t, e, "none", "a continuation of an earlier query, whose own query crmgate does not see")
}
