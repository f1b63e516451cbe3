package emulator

import (
	"crypto/sha1"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/profile"
)

const sfBase = "/services/data/v60.0"

func sfServer(t *testing.T, ds *Dataset) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(NewSalesforce(ds, SalesforceOptions{ClientID: "app", ClientSecret: "sec"}))
	t.Cleanup(srv.Close)
	res, err := http.PostForm(srv.URL+"/services/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"sec"}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok map[string]string
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != 200 || tok["token_type"] != "Bearer" || tok["access_token"] == "" {
		t.Fatalf("token: %d %v %v", res.StatusCode, err, tok)
	}
	if tok["instance_url"] != srv.URL || tok["signature"] == "" || tok["issued_at"] == "" ||
		!strings.HasSuffix(tok["id"], "/"+SalesforceID("User", "crmgate-app-user")) {
		t.Errorf("token response %v", tok)
	}
	return srv, tok["access_token"]
}

// sfDo sends a request and decodes the JSON answer into doc (any shape);
// raw keeps the bytes for member-order checks.
func sfDo(t *testing.T, srv *httptest.Server, tok, method, path, body string, hdr ...string) (int, any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var doc any
	_ = json.Unmarshal(b, &doc)
	return res.StatusCode, doc, string(b)
}

// sfErrCode is the errorCode of a Salesforce error array, "" when the
// body is not one.
func sfErrCode(doc any) string {
	arr, ok := doc.([]any)
	if !ok || len(arr) != 1 {
		return ""
	}
	m, _ := arr[0].(map[string]any)
	if _, ok := m["message"].(string); !ok {
		return ""
	}
	code, _ := m["errorCode"].(string)
	return code
}

func sfQuery(t *testing.T, srv *httptest.Server, tok, soql string, hdr ...string) (int, map[string]any) {
	t.Helper()
	status, doc, _ := sfDo(t, srv, tok, "GET", sfBase+"/query?q="+url.QueryEscape(soql), "", hdr...)
	m, _ := doc.(map[string]any)
	if status == 200 && m == nil {
		t.Fatalf("%s: not an object: %v", soql, doc)
	}
	if status != 200 {
		return status, map[string]any{"error": sfErrCode(doc)}
	}
	return status, m
}

func sfRecords(m map[string]any) []map[string]any {
	var out []map[string]any
	recs, _ := m["records"].([]any)
	for _, r := range recs {
		out = append(out, r.(map[string]any))
	}
	return out
}

func sfColumn(m map[string]any, key string) []string {
	var out []string
	for _, r := range sfRecords(m) {
		s, _ := r[key].(string)
		out = append(out, s)
	}
	return out
}

func TestSalesforceAuth(t *testing.T) {
	t.Parallel()
	srv, tok := sfServer(t, DepartmentStore())
	status, doc, _ := sfDo(t, srv, "", "GET", sfBase+"/query?q=SELECT+Id+FROM+Account", "")
	if status != 401 || sfErrCode(doc) != "INVALID_SESSION_ID" {
		t.Errorf("no token: %d %v", status, doc)
	}
	if status, doc, _ := sfDo(t, srv, tok+"x", "GET", sfBase+"/sobjects/Account/describe", ""); status != 401 || sfErrCode(doc) != "INVALID_SESSION_ID" {
		t.Errorf("unknown token: %d %v", status, doc)
	}
	for _, form := range []url.Values{
		{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"bad"}},
		{"grant_type": {"client_credentials"}, "client_id": {"other"}, "client_secret": {"sec"}},
	} {
		res, err := http.PostForm(srv.URL+"/services/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]string
		_ = json.NewDecoder(res.Body).Decode(&e)
		res.Body.Close()
		if res.StatusCode != 400 || e["error"] != "invalid_client" || e["error_description"] != "invalid client credentials" {
			t.Errorf("%v: %d %v", form, res.StatusCode, e)
		}
	}
	if res, _ := http.PostForm(srv.URL+"/services/oauth2/token", url.Values{"grant_type": {"password"}}); res.StatusCode != 400 {
		t.Errorf("password grant: %d", res.StatusCode)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/services/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "sec")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Errorf("basic auth: %v %v", res.StatusCode, err)
	}

	open := httptest.NewServer(NewSalesforce(DepartmentStore(), SalesforceOptions{}))
	defer open.Close()
	if status, _, _ := sfDo(t, open, "", "GET", sfBase+"/sobjects/Account/describe", ""); status != 200 {
		t.Errorf("auth disabled: %d", status)
	}
}

func TestSalesforceQuery(t *testing.T) {
	t.Parallel()
	srv, tok := sfServer(t, DepartmentStore())
	_, m := sfQuery(t, srv, tok, "SELECT Id, name FROM account WHERE industry = 'retail' ORDER BY Name DESC LIMIT 2")
	if m["totalSize"] != float64(2) || m["done"] != true || m["nextRecordsUrl"] != nil {
		t.Fatalf("envelope %v", m)
	}
	recs := sfRecords(m)
	if got := sfColumn(m, "name"); strings.Join(got, "|") != "Riley household|Quinn family" {
		t.Errorf("names as written %v", got)
	}
	attrs, _ := recs[0]["attributes"].(map[string]any)
	if id := SalesforceID("Account", "acc-2"); recs[0]["Id"] != id || attrs["type"] != "Account" || attrs["url"] != sfBase+"/sobjects/Account/"+id || recs[0]["Name"] != nil || len(recs[0]) != 3 {
		t.Errorf("record %v", recs[0])
	}
	_, _, raw := sfDo(t, srv, tok, "GET", sfBase+"/query?q="+url.QueryEscape("SELECT name, Id FROM Account LIMIT 1"), "")
	if !strings.Contains(raw, `"records":[{"attributes":{"type":"Account","url":`) || !regexp.MustCompile(`"},"name":"[^"]+","Id":"001`).MatchString(raw) {
		t.Errorf("member order: %s", raw)
	}

	for _, c := range []struct {
		soql string
		want []string // values of the first selected field, in order
	}{
		{"SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1", []string{"Harbour Hotel Group", "Northwind Catering Ltd"}},
		{"SELECT Name FROM Account WHERE OwnerId = '" + SalesforceID("User", "u-sales1") + "'", []string{"Pat Customer household", "Greenfield Primary School"}},
		{"SELECT Name FROM Account WHERE OwnerId = '" + SalesforceID("User", "u-sales1")[:15] + "'", []string{"Pat Customer household", "Greenfield Primary School"}},
		{"SELECT Name FROM Account WHERE Name LIKE '%HOUSE%'", []string{"Pat Customer household", "Riley household"}},
		{"SELECT Name FROM Account WHERE Name LIKE 'r_ley%'", []string{"Riley household"}},
		{"SELECT Name FROM Account WHERE NOT (Industry = 'Retail') OR Name = 'quinn FAMILY'", []string{"Northwind Catering Ltd", "Greenfield Primary School", "Harbour Hotel Group", "Quinn family"}},
		{"SELECT Name FROM Opportunity WHERE Amount > 10000 AND Probability >= 80 ORDER BY Amount DESC", []string{"Catering equipment contract", "Classroom furniture"}},
		{"SELECT Name FROM Opportunity WHERE CloseDate < 2026-03-01 ORDER BY CloseDate", []string{"Garden set", "Classroom furniture"}},
		{"SELECT Subject FROM Event WHERE StartDateTime > 2026-03-05T00:00:00Z", []string{"Kitchen design consultation", "Hotel supplier review"}},
		{"SELECT Subject FROM Event WHERE StartDateTime = 2026-03-10T11:00:00+01:00", []string{"Kitchen design consultation"}},
		{"SELECT LastName FROM Lead WHERE Company = null", []string{"Hughes", "Wright", "Patel"}},
		{"SELECT LastName FROM Lead WHERE Company != null", []string{"Khan", "Evans"}},
		{"SELECT LastName FROM Lead WHERE Status IN ('new', 'DEAD')", []string{"Hughes", "Evans"}},
		{"SELECT LastName FROM Lead WHERE Status NOT IN ('new', 'DEAD') AND Company != 'khan interiors'", []string{"Wright", "Patel"}},
		{"SELECT Company FROM Lead ORDER BY Company, LastName", []string{"", "", "", "Evans Builders", "Khan Interiors"}},
		{"SELECT Company FROM Lead ORDER BY Company NULLS LAST", []string{"Evans Builders", "Khan Interiors", "", "", ""}},
		{"SELECT Company FROM Lead ORDER BY Company DESC NULLS LAST", []string{"Khan Interiors", "Evans Builders", "", "", ""}},
		{"SELECT Name FROM User WHERE ManagerId = '" + SalesforceID("User", "u-mgr") + "' AND IsActive = true", []string{"Alice Sales", "Bob Sales"}},
		{"SELECT Name FROM Employee__c WHERE Salary__c >= 51000 ORDER BY Salary__c", []string{"Dana Park", "Morgan Lee", "Sam Admin"}},
		{"SELECT CaseNumber FROM Case WHERE Priority = 'P1'", []string{"00001001", "00001005"}},
	} {
		status, m := sfQuery(t, srv, tok, c.soql)
		q, _ := profile.ParseSOQL(c.soql)
		got := sfColumn(m, q.Fields[0])
		if status != 200 || strings.Join(got, "|") != strings.Join(c.want, "|") || m["totalSize"] != float64(len(c.want)) {
			t.Errorf("%s: %d %q, want %q (%v)", c.soql, status, got, c.want, m)
		}
	}

	for _, c := range []struct{ soql, code string }{
		{"SELECT Id FROM Widget", "INVALID_TYPE"},
		{"SELECT Id, Nope FROM Account", "INVALID_FIELD"},
		{"SELECT Id FROM Account WHERE Nope = 'x'", "INVALID_FIELD"},
		{"SELECT Id FROM Account ORDER BY Nope", "INVALID_FIELD"},
		{"SELECT Id FROM Opportunity WHERE Amount = '5'", "INVALID_FIELD"},
		{"SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD"},
		{"SELECT Id FROM Account WHERE OwnerId = 'u-sales1'", "INVALID_QUERY_FILTER_OPERATOR"},
		{"SELECT Id FROM Account WHERE CreatedDate = TODAY", "MALFORMED_QUERY"},
		{"SELECT Id, id FROM Account", "MALFORMED_QUERY"},
		{"SELECT FROM Account", "MALFORMED_QUERY"},
	} {
		if status, m := sfQuery(t, srv, tok, c.soql); status != 400 || m["error"] != c.code {
			t.Errorf("%s: %d %v, want 400 %s", c.soql, status, m, c.code)
		}
	}
	_, doc, _ := sfDo(t, srv, tok, "GET", sfBase+"/query?q="+url.QueryEscape("SELECT Id, Nope FROM Account"), "")
	if msg := doc.([]any)[0].(map[string]any)["message"].(string); !strings.HasPrefix(msg, "No such column 'Nope' on entity 'Account'.") {
		t.Errorf("message %q", msg)
	}
	if status, doc, _ := sfDo(t, srv, tok, "GET", sfBase+"/query?q=SELECT+Id+FROM+Account&q=SELECT+Id+FROM+Lead", ""); status != 400 || sfErrCode(doc) != "MALFORMED_QUERY" {
		t.Errorf("two q: %d %v", status, doc)
	}
}

func TestSalesforceQueryLikeEscapesAndIncludes(t *testing.T) {
	t.Parallel()
	ds := DepartmentStore()
	ds.Put("Leads", "l-x1", map[string]any{"first_name": "A", "last_name": "Pct", "account_name": "100% wool_co", "lead_source": "Web Site;Walk In"})
	ds.Put("Leads", "l-x2", map[string]any{"first_name": "B", "last_name": "Wild", "account_name": "1000 woolXco", "lead_source": "Walk In"})
	srv, tok := sfServer(t, ds)
	for soql, want := range map[string]string{
		`SELECT LastName FROM Lead WHERE Company LIKE '100\% wool\_co'`:                         "Pct",
		`SELECT LastName FROM Lead WHERE Company LIKE '100_ wool_co'`:                           "Pct|Wild",
		`SELECT LastName FROM Lead WHERE Company LIKE '100\%%'`:                                 "Pct",
		`SELECT LastName FROM Lead WHERE LeadSource INCLUDES ('walk in;web site')`:              "Pct",
		`SELECT LastName FROM Lead WHERE LeadSource INCLUDES ('Trade Show', 'Walk In')`:         "Wright|Khan|Pct|Wild",
		`SELECT LastName FROM Lead WHERE LeadSource EXCLUDES ('Walk In') AND Company LIKE '1%'`: "",
	} {
		if _, m := sfQuery(t, srv, tok, soql); strings.Join(sfColumn(m, "LastName"), "|") != want {
			t.Errorf("%s: %v, want %q", soql, sfColumn(m, "LastName"), want)
		}
	}
}

func TestSalesforceQueryBatches(t *testing.T) {
	t.Parallel()
	ds := DepartmentStore()
	ds.AddSynthetic("Accounts", 450, 1)
	srv, tok := sfServer(t, ds)
	if _, m := sfQuery(t, srv, tok, "SELECT Id FROM Account"); m["totalSize"] != float64(456) || m["done"] != true || len(sfRecords(m)) != 456 {
		t.Fatalf("default batch: %v %v", m["totalSize"], m["done"])
	}
	_, m := sfQuery(t, srv, tok, "SELECT Id FROM Account", "Sforce-Query-Options", "batchSize=200")
	seen := map[string]bool{}
	next := regexp.MustCompile(`^` + regexp.QuoteMeta(sfBase) + `/query/(01g[0-9A-Za-z]{15})-(\d+)$`)
	for i, wantNext := range []string{"200", "400", ""} {
		if m["totalSize"] != float64(456) || m["done"] != (wantNext == "") {
			t.Fatalf("batch %d: %v %v", i, m["totalSize"], m["done"])
		}
		for _, id := range sfColumn(m, "Id") {
			seen[id] = true
		}
		if wantNext == "" {
			if _, ok := m["nextRecordsUrl"]; ok || len(sfRecords(m)) != 56 {
				t.Errorf("last batch: %d records, next %v", len(sfRecords(m)), m["nextRecordsUrl"])
			}
			break
		}
		u, _ := m["nextRecordsUrl"].(string)
		sm := next.FindStringSubmatch(u)
		if sm == nil || sm[2] != wantNext || !profile.IsSalesforceID(sm[1]) || len(sfRecords(m)) != 200 {
			t.Fatalf("batch %d: next %q, %d records", i, u, len(sfRecords(m)))
		}
		_, doc, _ := sfDo(t, srv, tok, "GET", u, "")
		m, _ = doc.(map[string]any)
	}
	if len(seen) != 456 {
		t.Errorf("%d distinct ids over the batches", len(seen))
	}
	if _, m := sfQuery(t, srv, tok, "SELECT Id FROM Account LIMIT 300", "Sforce-Query-Options", "batchSize=50"); m["totalSize"] != float64(300) || len(sfRecords(m)) != 200 {
		t.Errorf("LIMIT with batch floor: %v, %d records", m["totalSize"], len(sfRecords(m)))
	}
	if status, doc, _ := sfDo(t, srv, tok, "GET", sfBase+"/query/01gAAAAAAAAAAAAAAA-200", ""); status != 400 || sfErrCode(doc) != "INVALID_QUERY_LOCATOR" {
		t.Errorf("unknown locator: %d %v", status, doc)
	}
}

func TestSalesforceRecords(t *testing.T) {
	t.Parallel()
	ds := DepartmentStore()
	srv, tok := sfServer(t, ds)
	acc := SalesforceID("Account", "acc-1")
	status, doc, raw := sfDo(t, srv, tok, "GET", sfBase+"/sobjects/account/"+acc+"?fields=name,Phone", "")
	if rec, _ := doc.(map[string]any); status != 200 || len(rec) != 4 || rec["Name"] != "Pat Customer household" || rec["Phone"] != "+44 20 7946 0001" || rec["Id"] != acc ||
		!strings.HasPrefix(raw, `{"attributes":{"type":"Account","url":"`+sfBase+`/sobjects/Account/`+acc+`"},"Id"`) {
		t.Errorf("read with fields: %d %s", status, raw)
	}
	_, doc, _ = sfDo(t, srv, tok, "GET", sfBase+"/sobjects/Account/"+acc[:15], "")
	if rec, _ := doc.(map[string]any); rec["OwnerId"] != SalesforceID("User", "u-sales1") || rec["CreatedDate"] != "2026-03-02T10:00:00.000+0000" ||
		rec["Description"] != nil || rec["BillingCity"] != "London" {
		t.Errorf("full read by 15-char id: %v", rec)
	}
	for _, p := range []string{"/sobjects/Account/" + SalesforceID("Account", "acc-none"), "/sobjects/Account/acc-1",
		"/sobjects/Contact/" + acc, "/sobjects/Widget/" + acc, "/sobjects/Account/" + acc + "/Nope", "/queryAll?q=SELECT+Id+FROM+Account", "/limits"} {
		if status, doc, _ := sfDo(t, srv, tok, "GET", sfBase+p, ""); status != 404 || sfErrCode(doc) != "NOT_FOUND" {
			t.Errorf("GET %s: %d %v", p, status, doc)
		}
	}
	if status, doc, _ := sfDo(t, srv, tok, "GET", sfBase+"/sobjects/Account/"+acc+"?fields=Nope", ""); status != 400 || sfErrCode(doc) != "INVALID_FIELD" {
		t.Errorf("fields=Nope: %d %v", status, doc)
	}
	for _, p := range []string{"/services/data/v60/sobjects/Account/" + acc, "/services/data/latest/query?q=x", "/elsewhere"} {
		if status, doc, _ := sfDo(t, srv, tok, "GET", p, ""); status != 404 || sfErrCode(doc) != "NOT_FOUND" {
			t.Errorf("GET %s: %d %v", p, status, doc)
		}
	}

	status, doc, _ = sfDo(t, srv, tok, "POST", sfBase+"/sobjects/Contact", `{"FirstName":"Ada","lastname":"Lovelace","AccountId":"`+acc+`","Birthdate":"1815-12-10"}`)
	created, _ := doc.(map[string]any)
	id, _ := created["id"].(string)
	if status != 201 || created["success"] != true || len(created["errors"].([]any)) != 0 || !strings.HasPrefix(id, "003") || !profile.IsSalesforceID(id) {
		t.Fatalf("create: %d %v", status, doc)
	}
	_, doc, _ = sfDo(t, srv, tok, "GET", sfBase+"/sobjects/Contact/"+id, "")
	if rec, _ := doc.(map[string]any); rec["Name"] != "Ada Lovelace" || rec["AccountId"] != acc || rec["OwnerId"] != SalesforceID("User", "crmgate-app-user") || rec["Birthdate"] != "1815-12-10" {
		t.Errorf("created record %v", rec)
	}
	for body, code := range map[string]string{
		`{"Id":"` + acc + `","LastName":"X"}`:                                  "INVALID_FIELD_FOR_INSERT_UPDATE",
		`{"Name":"X Y","LastName":"Y"}`:                                        "INVALID_FIELD_FOR_INSERT_UPDATE",
		`{"LastName":"X","Shoe_Size__c":9}`:                                    "INVALID_FIELD",
		`{"FirstName":"X"}`:                                                    "REQUIRED_FIELD_MISSING",
		`{"LastName":"X","AccountId":"` + SalesforceID("Account", "no") + `"}`: "INVALID_CROSS_REFERENCE_KEY",
		`{"LastName":"X","AccountId":"acc-1"}`:                                 "MALFORMED_ID",
		`{"LastName":7}`:                                                       "JSON_PARSER_ERROR",
		`[{"LastName":"X"}]`:                                                   "JSON_PARSER_ERROR",
	} {
		if status, doc, _ := sfDo(t, srv, tok, "POST", sfBase+"/sobjects/Contact", body); status != 400 || sfErrCode(doc) != code {
			t.Errorf("create %s: %d %v, want %s", body, status, doc, code)
		}
	}

	if status, _, _ := sfDo(t, srv, tok, "PATCH", sfBase+"/sobjects/Contact/"+id, `{"Phone":"+44 1","OwnerId":"`+SalesforceID("User", "u-sales2")+`"}`); status != 204 {
		t.Errorf("update: %d", status)
	}
	if rec, _ := ds.Get("Contacts", "new-000001"); rec["phone_work"] != "+44 1" || rec["assigned_user_id"] != "u-sales2" {
		t.Errorf("dataset after update %v", rec)
	}
	// Method override: the tunnelled PATCH and DELETE take effect.
	if status, _, _ := sfDo(t, srv, tok, "POST", sfBase+"/sobjects/Contact/"+id+"?_HttpMethod=PATCH", `{"MobilePhone":"+44 7"}`); status != 204 {
		t.Errorf("tunnelled PATCH: %d", status)
	}
	if _, doc, _ := sfDo(t, srv, tok, "GET", sfBase+"/sobjects/Contact/"+id+"?fields=MobilePhone,Phone", ""); doc.(map[string]any)["MobilePhone"] != "+44 7" || doc.(map[string]any)["Phone"] != "+44 1" {
		t.Errorf("after tunnelled PATCH %v", doc)
	}
	if status, doc, _ := sfDo(t, srv, tok, "PUT", sfBase+"/sobjects/Contact/"+id, `{}`); status != 405 || sfErrCode(doc) != "METHOD_NOT_ALLOWED" {
		t.Errorf("PUT: %d %v", status, doc)
	}
	if status, _, _ := sfDo(t, srv, tok, "POST", sfBase+"/sobjects/Contact/"+id+"?_HttpMethod=DELETE", ""); status != 204 {
		t.Errorf("tunnelled DELETE: %d", status)
	}
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		if status, doc, _ := sfDo(t, srv, tok, m, sfBase+"/sobjects/Contact/"+id, `{"Phone":"x"}`); status != 404 || sfErrCode(doc) != "NOT_FOUND" {
			t.Errorf("%s after delete: %d %v", m, status, doc)
		}
	}
	if status, _, _ := sfDo(t, srv, tok, "DELETE", sfBase+"/sobjects/Case/"+SalesforceID("Case", "cs-3"), ""); status != 204 || ds.Count("Cases") != 4 {
		t.Errorf("delete case: %d, %d left", status, ds.Count("Cases"))
	}
	_, doc, _ = sfDo(t, srv, tok, "POST", sfBase+"/sobjects/Case", `{"Subject":"Late","AccountId":"`+acc+`"}`)
	_, doc, _ = sfDo(t, srv, tok, "GET", sfBase+"/sobjects/Case/"+doc.(map[string]any)["id"].(string)+"?fields=CaseNumber", "")
	if doc.(map[string]any)["CaseNumber"] != "00001006" {
		t.Errorf("new case number %v", doc)
	}
}

func TestSalesforceChildrenAndDescribe(t *testing.T) {
	t.Parallel()
	srv, tok := sfServer(t, DepartmentStore())
	acc := SalesforceID("Account", "acc-3")
	for rel, want := range map[string]string{"Contacts": "Jordan Baker|Sam Lowe", "opportunities": "Catering equipment contract"} {
		_, doc, _ := sfDo(t, srv, tok, "GET", sfBase+"/sobjects/Account/"+acc+"/"+rel, "")
		m, _ := doc.(map[string]any)
		if strings.Join(sfColumn(m, "Name"), "|") != want || m["done"] != true || m["totalSize"] != float64(strings.Count(want, "|")+1) {
			t.Errorf("%s: %v", rel, doc)
		}
	}
	_, doc, _ := sfDo(t, srv, tok, "GET", sfBase+"/sobjects/Account/"+acc+"/Tasks?fields=Subject", "")
	if m, _ := doc.(map[string]any); strings.Join(sfColumn(m, "Subject"), "|") != "Chase invoice" || len(sfRecords(m)[0]) != 3 {
		t.Errorf("Tasks: %v", doc)
	}
	_, doc, _ = sfDo(t, srv, tok, "GET", sfBase+"/sobjects/Contact/"+SalesforceID("Contact", "c-3")+"/Cases", "")
	if m, _ := doc.(map[string]any); m["totalSize"] != float64(0) || m["records"] == nil {
		t.Errorf("Contact Cases: %v", doc)
	}
	_, doc, _ = sfDo(t, srv, tok, "GET", sfBase+"/sobjects/employee__C/describe", "")
	d, _ := doc.(map[string]any)
	var manager map[string]any
	for _, f := range d["fields"].([]any) {
		if f.(map[string]any)["name"] == "Manager__c" {
			manager = f.(map[string]any)
		}
	}
	if d["name"] != "Employee__c" || d["keyPrefix"] != "a00" || manager["type"] != "reference" || manager["referenceTo"].([]any)[0] != "User" {
		t.Errorf("describe %v", d)
	}
}

func TestSalesforceID(t *testing.T) {
	t.Parallel()
	// The documented recipe, recomputed here so that policy data written
	// by hand keeps matching the emulator.
	sum := sha1.Sum([]byte("u-sales1"))
	body := ""
	for _, c := range sum[:12] {
		body += string(sfAlnum[int(c)%62])
	}
	id := SalesforceID("User", "u-sales1")
	if id != "005"+body+profile.SalesforceIDSuffix("005"+body) || !profile.IsSalesforceID(id) || id != SalesforceID("User", "u-sales1") {
		t.Errorf("SalesforceID(User, u-sales1) = %q", id)
	}
	if emp := SalesforceID("Employee__c", "u-sales1"); emp[:3] != "a00" || emp[3:15] != id[3:15] || emp == id {
		t.Errorf("employee id %q vs user id %q", emp, id)
	}
	if SalesforceID("Widget", "x") != "" || SalesforceObjectOf("Meetings") != "Event" || SalesforceObjectOf("Product") != "Product2" || SalesforceObjectOf("Calls") != "" {
		t.Error("unknown object or module mapping")
	}
	ds := DepartmentStore()
	seen := map[string]string{}
	for _, o := range sfObjects {
		for _, rec := range ds.Snapshot(o.module) {
			id := SalesforceID(o.name, rec["id"].(string))
			if !profile.IsSalesforceID(id) || !strings.HasPrefix(id, sfPrefixes[o.name]) || seen[id] != "" {
				t.Errorf("%s %v: %q (also %s)", o.name, rec["id"], id, seen[id])
			}
			seen[id] = o.name
		}
	}
	if len(seen) < 50 {
		t.Errorf("only %d ids", len(seen))
	}
}
