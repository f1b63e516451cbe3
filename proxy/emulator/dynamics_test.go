package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func dynServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(NewDynamics(DepartmentStore(), DynamicsOptions{Tenant: "t1", ClientID: "app", ClientSecret: "sec"}))
	t.Cleanup(srv.Close)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"sec"}, "scope": {srv.URL + "/.default"}}
	res, err := http.PostForm(srv.URL+"/t1/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != 200 || tok.TokenType != "Bearer" {
		t.Fatalf("token: %d %v %+v", res.StatusCode, err, tok)
	}
	return srv, tok.AccessToken
}

func dynDo(t *testing.T, srv *httptest.Server, tok, method, path, body string, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var doc map[string]any
	_ = json.Unmarshal(b, &doc)
	return res, doc
}

func TestDynamicsEmulator(t *testing.T) {
	t.Parallel()
	srv, tok := dynServer(t)
	const b = "/api/data/v9.2/"
	if res, _ := dynDo(t, srv, "", "GET", b+"accounts", ""); res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	for _, form := range []url.Values{
		{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"bad"}, "scope": {"x/.default"}},
		{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"sec"}, "scope": {"x"}},
		{"grant_type": {"password"}},
	} {
		if res, err := http.PostForm(srv.URL+"/t1/oauth2/v2.0/token", form); err != nil || res.StatusCode < 400 {
			t.Errorf("token for %v: %v %v", form, res.StatusCode, err)
		}
	}
	res, doc := dynDo(t, srv, tok, "GET", b+"accounts?$count=true&$select=name&$filter="+url.QueryEscape("_ownerid_value eq "+DynamicsID("u-sales1")), "")
	if res.StatusCode != 200 || doc["@odata.count"] != float64(2) || !strings.HasSuffix(doc["@odata.context"].(string), "/$metadata#accounts") {
		t.Fatalf("list: %d %v", res.StatusCode, doc)
	}
	row := doc["value"].([]any)[0].(map[string]any)
	if row["accountid"] != DynamicsID("acc-1") || row["name"] != "Pat Customer household" || row["@odata.etag"] == nil || row["telephone1"] != nil {
		t.Errorf("row %v", row)
	}
	// Text compares case-insensitively, as Dataverse's collation does.
	_, doc = dynDo(t, srv, tok, "GET", b+"accounts?$filter="+url.QueryEscape("name eq 'QUINN FAMILY'"), "")
	if n := len(doc["value"].([]any)); n != 1 {
		t.Errorf("case-insensitive match: %d rows", n)
	}
	// Paging: a cookie in $skiptoken, the query kept in the nextLink.
	res, doc = dynDo(t, srv, tok, "GET", b+"contacts?$select=lastname&$orderby=lastname", "", "Prefer", "odata.maxpagesize=3")
	next, _ := doc["@odata.nextLink"].(string)
	if res.StatusCode != 200 || len(doc["value"].([]any)) != 3 || !strings.Contains(next, "%24skiptoken=") || !strings.Contains(next, "%24orderby=lastname") {
		t.Fatalf("page 1: %v", doc)
	}
	u, _ := url.Parse(next)
	_, doc = dynDo(t, srv, tok, "GET", u.RequestURI(), "", "Prefer", "odata.maxpagesize=3")
	if first := doc["value"].([]any)[0].(map[string]any)["lastname"]; first != "Lowe" {
		t.Errorf("page 2 starts with %v", first)
	}
	// Errors: Dataverse's error body and codes.
	res, doc = dynDo(t, srv, tok, "GET", b+"accounts(00000000-0000-0000-0000-000000000001)", "")
	if e, _ := doc["error"].(map[string]any); res.StatusCode != 404 || e["code"] != "0x80040217" {
		t.Errorf("missing row: %d %v", res.StatusCode, doc)
	}
	for _, q := range []string{"$filter=nosuch%20eq%201", "$filter=name%20eq", "$expand=primarycontactid", "$select=nosuch"} {
		if res, doc = dynDo(t, srv, tok, "GET", b+"accounts?"+q, ""); res.StatusCode != 400 || doc["error"] == nil {
			t.Errorf("%s: %d %v", q, res.StatusCode, doc)
		}
	}
	// Create: 204 and OData-EntityId; lookups cannot be written directly.
	res, _ = dynDo(t, srv, tok, "POST", b+"accounts", `{"name":"New shop"}`)
	id := res.Header.Get("OData-EntityId")
	if res.StatusCode != 204 || !strings.HasPrefix(id, srv.URL+b+"accounts(") {
		t.Fatalf("create: %d %q", res.StatusCode, id)
	}
	if res, doc = dynDo(t, srv, tok, "POST", b+"accounts", `{"_ownerid_value":"`+DynamicsID("u-sales1")+`"}`); res.StatusCode != 400 {
		t.Errorf("lookup write: %d %v", res.StatusCode, doc)
	}
	// PATCH: update; If-Match: * refuses to create; without it, upsert.
	acc1 := b + "accounts(" + DynamicsID("acc-1") + ")"
	if res, _ = dynDo(t, srv, tok, "PATCH", acc1, `{"name":"Renamed"}`, "If-Match", "*"); res.StatusCode != 204 {
		t.Errorf("update: %d", res.StatusCode)
	}
	if _, doc = dynDo(t, srv, tok, "GET", acc1+"?$select=name", ""); doc["name"] != "Renamed" {
		t.Errorf("after update: %v", doc)
	}
	fresh := b + "accounts(00000000-0000-0000-0000-0000000000ff)"
	if res, _ = dynDo(t, srv, tok, "PATCH", fresh, `{"name":"x"}`, "If-Match", "*"); res.StatusCode != 404 {
		t.Errorf("If-Match * on a missing row: %d", res.StatusCode)
	}
	if res, _ = dynDo(t, srv, tok, "PATCH", fresh, `{"name":"x"}`); res.StatusCode != 204 {
		t.Errorf("upsert: %d", res.StatusCode)
	}
	if res, _ = dynDo(t, srv, tok, "GET", fresh, ""); res.StatusCode != 200 {
		t.Errorf("upserted row: %d", res.StatusCode)
	}
	if res, _ = dynDo(t, srv, tok, "DELETE", fresh, ""); res.StatusCode != 204 {
		t.Errorf("delete: %d", res.StatusCode)
	}
	// Related rows through a collection-valued navigation property.
	_, doc = dynDo(t, srv, tok, "GET", acc1+"/contact_customer_accounts", "")
	if v := doc["value"].([]any); len(v) != 1 || v[0].(map[string]any)["contactid"] != DynamicsID("c-1") {
		t.Errorf("related: %v", doc)
	}
	// Products carry both buy prices.
	_, doc = dynDo(t, srv, tok, "GET", b+"products("+DynamicsID("p-1")+")", "")
	if doc["standardcost"] != float64(310) || doc["currentcost"] != float64(310) || doc["price"] != float64(649) {
		t.Errorf("product: %v", doc)
	}
}
