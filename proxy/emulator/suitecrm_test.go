package emulator

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

type exchange struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func do(t *testing.T, h http.Handler, method, target, body string, hdr map[string]string) exchange {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	raw, _ := io.ReadAll(res.Body)
	ex := exchange{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &ex.body); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, target, raw, err)
		}
	}
	return ex
}

func path(doc map[string]any, keys ...string) any {
	var cur any = doc
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func ids(t *testing.T, list any) []string {
	t.Helper()
	arr, ok := list.([]any)
	if !ok {
		t.Fatalf("not a list: %#v", list)
	}
	out := make([]string, 0, len(arr))
	for _, it := range arr {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

func TestSuiteCRMEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, target, body string
		status                     int
		check                      func(t *testing.T, ex exchange)
	}{
		{"list", "GET", "/Api/V8/module/Accounts", "", 200, func(t *testing.T, ex exchange) {
			if got := ids(t, ex.body["data"]); len(got) != 6 || got[0] != "acc-1" {
				t.Fatalf("ids %v", got)
			}
			if path(ex.body, "meta", "total-pages") != 1.0 {
				t.Fatalf("meta %v", ex.body["meta"])
			}
			first := ex.body["data"].([]any)[0].(map[string]any)
			if first["type"] != "Account" || path(first, "attributes", "assigned_user_id") != "u-sales1" {
				t.Fatalf("record %v", first)
			}
			if _, ok := path(first, "attributes").(map[string]any)["id"]; ok {
				t.Fatal("id belongs outside attributes")
			}
			if path(first, "relationships", "Contacts", "links", "related") == nil {
				t.Fatalf("relationships %v", first["relationships"])
			}
		}},
		{"paging", "GET", "/Api/V8/module/Accounts?page[size]=4&page[number]=2", "", 200, func(t *testing.T, ex exchange) {
			if got := ids(t, ex.body["data"]); strings.Join(got, ",") != "acc-5,acc-6" {
				t.Fatalf("page 2: %v", got)
			}
			if path(ex.body, "meta", "total-pages") != 2.0 || path(ex.body, "meta", "records-on-this-page") != 2.0 {
				t.Fatalf("meta %v", ex.body["meta"])
			}
			if path(ex.body, "links", "next") != nil || path(ex.body, "links", "prev") == nil {
				t.Fatalf("links %v", ex.body["links"])
			}
			prev, _ := url.Parse(path(ex.body, "links", "prev").(string))
			if prev.Query().Get("page[number]") != "1" {
				t.Fatalf("prev link %v", prev)
			}
		}},
		{"filter eq", "GET", "/Api/V8/module/Contacts?filter[assigned_user_id][eq]=u-sales2", "", 200, func(t *testing.T, ex exchange) {
			if got := strings.Join(ids(t, ex.body["data"]), ","); got != "c-3,c-4" {
				t.Fatalf("ids %s", got)
			}
		}},
		{"filter and", "GET", "/Api/V8/module/Contacts?filter[operator]=and&filter[assigned_user_id][eq]=u-sales2&filter[first_name][eq]=Sam", "", 200, func(t *testing.T, ex exchange) {
			if got := strings.Join(ids(t, ex.body["data"]), ","); got != "c-4" {
				t.Fatalf("ids %s", got)
			}
		}},
		{"filter: PHP keeps the last duplicate", "GET", "/Api/V8/module/Contacts?filter[assigned_user_id][eq]=u-sales1&filter%5Bassigned_user_id%5D%5Beq%5D=u-sales2", "", 200, func(t *testing.T, ex exchange) {
			if got := strings.Join(ids(t, ex.body["data"]), ","); got != "c-3,c-4" {
				t.Fatalf("ids %s", got)
			}
		}},
		{"filter: a later scalar replaces the array", "GET", "/Api/V8/module/Contacts?filter[assigned_user_id][eq]=u-sales2&filter=x", "", 400, nil},
		{"filter or", "GET", "/Api/V8/module/Accounts?filter[operator]=or&filter[assigned_user_id][eq]=u-sales2&filter[assigned_user_id][neq]=u-sales2", "", 200, func(t *testing.T, ex exchange) {
			if n := len(ids(t, ex.body["data"])); n != 6 {
				t.Fatalf("or: %d", n)
			}
		}},
		{"filter gt numeric", "GET", "/Api/V8/module/AOS_Products?filter[price][gt]=200&sort=-price", "", 200, func(t *testing.T, ex exchange) {
			if got := strings.Join(ids(t, ex.body["data"]), ","); got != "p-6,p-1,p-4" {
				t.Fatalf("ids %s", got)
			}
		}},
		{"fields", "GET", "/Api/V8/module/Contacts/c-1?fields[Contacts]=name,phone_work", "", 200, func(t *testing.T, ex exchange) {
			attrs := path(ex.body, "data", "attributes").(map[string]any)
			if len(attrs) != 2 || attrs["phone_work"] != "+44 20 7946 0001" || attrs["name"] != "Pat Customer" {
				t.Fatalf("attrs %v", attrs)
			}
		}},
		{"read", "GET", "/Api/V8/module/AOS_Products/p-1", "", 200, func(t *testing.T, ex exchange) {
			if path(ex.body, "data", "attributes", "cost") != "310" || path(ex.body, "data", "attributes", "price") != "649" {
				t.Fatalf("data %v", ex.body["data"])
			}
			if ex.header.Get("Content-Type") != "application/vnd.api+json" {
				t.Fatalf("content type %q", ex.header.Get("Content-Type"))
			}
		}},
		{"read decimal", "GET", "/Api/V8/module/AOS_Products/p-2", "", 200, func(t *testing.T, ex exchange) {
			if path(ex.body, "data", "attributes", "cost") != "18.500000" {
				t.Fatalf("cost %v", path(ex.body, "data", "attributes", "cost"))
			}
		}},
		{"read unknown id", "GET", "/Api/V8/module/Accounts/nope", "", 404, func(t *testing.T, ex exchange) {
			if path(ex.body, "errors", "status") != 404.0 || path(ex.body, "errors", "detail") == nil {
				t.Fatalf("errors %v", ex.body)
			}
		}},
		{"unknown module", "GET", "/Api/V8/module/Nope", "", 400, nil},
		{"module is case-sensitive", "GET", "/Api/V8/module/accounts", "", 400, nil},
		{"bad filter field", "GET", "/Api/V8/module/Accounts?filter[nope][eq]=1", "", 400, nil},
		{"bad page", "GET", "/Api/V8/module/Accounts?page[size]=0", "", 400, nil},
		{"bad sort", "GET", "/Api/V8/module/Accounts?sort=nope", "", 400, nil},
		{"create", "POST", "/Api/V8/module", `{"data":{"type":"Accounts","attributes":{"name":"New Co","assigned_user_id":"u-sales2"}}}`, 201, func(t *testing.T, ex exchange) {
			if path(ex.body, "data", "attributes", "name") != "New Co" || path(ex.body, "data", "id") == "" {
				t.Fatalf("created %v", ex.body)
			}
		}},
		{"create with id", "POST", "/Api/V8/module", `{"data":{"type":"Leads","id":"l-new","attributes":{"first_name":"Neo"}}}`, 201, func(t *testing.T, ex exchange) {
			if path(ex.body, "data", "id") != "l-new" {
				t.Fatalf("created %v", ex.body)
			}
		}},
		{"create existing id", "POST", "/Api/V8/module", `{"data":{"type":"Leads","id":"l-1","attributes":{}}}`, 409, nil},
		{"create bad attribute", "POST", "/Api/V8/module", `{"data":{"type":"Leads","attributes":{"nope":1}}}`, 400, nil},
		{"create bad json", "POST", "/Api/V8/module", `{`, 400, nil},
		{"update", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":"c-2","attributes":{"phone_work":"+44 1"}}}`, 200, func(t *testing.T, ex exchange) {
			if path(ex.body, "data", "attributes", "phone_work") != "+44 1" || path(ex.body, "data", "attributes", "first_name") != "Riley" {
				t.Fatalf("updated %v", ex.body)
			}
		}},
		{"update unknown id", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":"zz","attributes":{}}}`, 404, nil},
		{"delete", "DELETE", "/Api/V8/module/Tasks/t-5", "", 200, func(t *testing.T, ex exchange) {
			if path(ex.body, "meta", "message") != "Record with id t-5 is deleted" {
				t.Fatalf("body %v", ex.body)
			}
		}},
		{"delete unknown", "DELETE", "/Api/V8/module/Tasks/zz", "", 404, nil},
		{"related", "GET", "/Api/V8/module/Accounts/acc-3/relationships/contacts", "", 200, func(t *testing.T, ex exchange) {
			if got := strings.Join(ids(t, ex.body["data"]), ","); got != "c-3,c-4" {
				t.Fatalf("related %s", got)
			}
		}},
		{"related unknown link", "GET", "/Api/V8/module/Accounts/acc-3/relationships/nope", "", 400, nil},
		{"related unknown parent", "GET", "/Api/V8/module/Accounts/zz/relationships/contacts", "", 404, nil},
		{"relate", "POST", "/Api/V8/module/Accounts/acc-4/relationships", `{"data":{"type":"Cases","id":"cs-5"}}`, 201, nil},
		{"relate by link", "POST", "/Api/V8/module/Accounts/acc-4/relationships/opportunities", `{"data":{"type":"Opportunities","id":"o-5"}}`, 201, nil},
		{"unrelate", "DELETE", "/Api/V8/module/Accounts/acc-1/relationships/contacts/c-1", "", 200, nil},
		{"unrelate not related", "DELETE", "/Api/V8/module/Accounts/acc-1/relationships/contacts/c-3", "", 404, nil},
		{"meta modules", "GET", "/Api/V8/meta/modules", "", 200, func(t *testing.T, ex exchange) {
			if path(ex.body, "data", "attributes", "AOS_Products") == nil {
				t.Fatalf("modules %v", ex.body)
			}
		}},
		{"meta fields", "GET", "/Api/V8/meta/fields/Employees", "", 200, func(t *testing.T, ex exchange) {
			if path(ex.body, "data", "attributes", "salary_c", "type") != "currency" {
				t.Fatalf("fields %v", ex.body)
			}
		}},
		{"unknown route", "GET", "/Api/V8/nope", "", 404, nil},
		{"logout", "POST", "/Api/V8/logout", "", 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewSuiteCRM(DepartmentStore(), SuiteOptions{})
			ex := do(t, h, tt.method, tt.target, tt.body, map[string]string{"Content-Type": jsonAPI})
			if ex.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", ex.status, tt.status, ex.raw)
			}
			if tt.check != nil {
				tt.check(t, ex)
			}
		})
	}
}

func TestSuiteCRMWritesPersist(t *testing.T) {
	t.Parallel()
	ds := DepartmentStore()
	h := NewSuiteCRM(ds, SuiteOptions{})
	do(t, h, "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":"c-1","attributes":{"assigned_user_id":"u-sales2"}}}`, nil)
	if rec, _ := ds.Get("Contacts", "c-1"); rec["assigned_user_id"] != "u-sales2" {
		t.Fatalf("update not stored: %v", rec)
	}
	do(t, h, "DELETE", "/Api/V8/module/Contacts/c-1", "", nil)
	if _, ok := ds.Get("Contacts", "c-1"); ok {
		t.Fatal("delete not stored")
	}
	do(t, h, "POST", "/Api/V8/module/Accounts/acc-4/relationships", `{"data":{"type":"Contacts","id":"c-2"}}`, nil)
	if rec, _ := ds.Get("Contacts", "c-2"); rec["account_id"] != "acc-4" {
		t.Fatalf("relate not stored: %v", rec)
	}
	if DepartmentStore().Count("Contacts") != 7 {
		t.Fatal("DepartmentStore must return a fresh copy")
	}
}

func TestSuiteCRMOAuth(t *testing.T) {
	t.Parallel()
	h := NewSuiteCRM(DepartmentStore(), SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret"})
	form := func(id, secret, grant string) string {
		return url.Values{"grant_type": {grant}, "client_id": {id}, "client_secret": {secret}}.Encode()
	}
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if ex := do(t, h, "GET", "/Api/V8/module/Accounts", "", nil); ex.status != 401 {
		t.Fatalf("no token: %d", ex.status)
	}
	if ex := do(t, h, "GET", "/Api/V8/module/Accounts", "", map[string]string{"Authorization": "Bearer forged"}); ex.status != 401 {
		t.Fatalf("forged token: %d", ex.status)
	}
	if ex := do(t, h, "POST", "/Api/access_token", form("crmgate", "wrong", "client_credentials"), formHdr); ex.status != 401 || ex.body["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", ex.status, ex.body)
	}
	if ex := do(t, h, "POST", "/Api/access_token", form("other", "s3cret", "client_credentials"), formHdr); ex.status != 401 {
		t.Fatalf("wrong client: %d", ex.status)
	}
	if ex := do(t, h, "POST", "/Api/access_token", form("crmgate", "s3cret", "password"), formHdr); ex.status != 400 {
		t.Fatalf("wrong grant: %d", ex.status)
	}
	ex := do(t, h, "POST", "/Api/access_token", form("crmgate", "s3cret", "client_credentials"), formHdr)
	if ex.status != 200 || ex.body["token_type"] != "Bearer" || ex.body["expires_in"] != 3600.0 {
		t.Fatalf("token: %d %v", ex.status, ex.body)
	}
	auth := map[string]string{"Authorization": "Bearer " + ex.body["access_token"].(string)}
	if ex := do(t, h, "GET", "/Api/V8/module/Accounts", "", auth); ex.status != 200 {
		t.Fatalf("with token: %d", ex.status)
	}
	if ex := do(t, h, "POST", "/Api/V8/logout", "", auth); ex.status != 200 {
		t.Fatalf("logout: %d", ex.status)
	}
	if ex := do(t, h, "GET", "/Api/V8/module/Accounts", "", auth); ex.status != 401 {
		t.Fatalf("token after logout: %d", ex.status)
	}
	other := NewSuiteCRM(DepartmentStore(), SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret"})
	if ex := do(t, other, "GET", "/Api/V8/module/Accounts", "", auth); ex.status != 401 {
		t.Fatalf("a token from another emulator instance: %d", ex.status)
	}
}

func TestGzip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		h      http.Handler
		target string
		accept string
		gz     bool
	}{
		{"suite on, accepted", NewSuiteCRM(DepartmentStore(), SuiteOptions{Gzip: true}), "/Api/V8/module/Accounts", "gzip, deflate", true},
		{"suite on, q=0", NewSuiteCRM(DepartmentStore(), SuiteOptions{Gzip: true}), "/Api/V8/module/Accounts", "gzip;q=0", false},
		{"suite on, q=0.5", NewSuiteCRM(DepartmentStore(), SuiteOptions{Gzip: true}), "/Api/V8/module/Accounts", "gzip;q=0.5", true},
		{"suite on, not accepted", NewSuiteCRM(DepartmentStore(), SuiteOptions{Gzip: true}), "/Api/V8/module/Accounts", "", false},
		{"suite off", NewSuiteCRM(DepartmentStore(), SuiteOptions{}), "/Api/V8/module/Accounts", "gzip", false},
		{"espo on", NewEspoCRM(DepartmentStore(), EspoOptions{Gzip: true}), "/api/v1/Account", "gzip", true},
		{"espo off", NewEspoCRM(DepartmentStore(), EspoOptions{}), "/api/v1/Account", "gzip", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("GET", tt.target, nil)
			if tt.accept != "" {
				req.Header.Set("Accept-Encoding", tt.accept)
			}
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, req)
			var body io.Reader = rec.Body
			if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tt.gz {
				t.Fatalf("gzip = %v, want %v", got, tt.gz)
			}
			if tt.gz {
				zr, err := gzip.NewReader(rec.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			var doc map[string]any
			if err := json.NewDecoder(body).Decode(&doc); err != nil {
				t.Fatalf("decode: %v", err)
			}
		})
	}
}
