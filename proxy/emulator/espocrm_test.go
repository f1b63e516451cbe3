package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func espoList(t *testing.T, ex exchange) (float64, []string) {
	t.Helper()
	total, _ := ex.body["total"].(float64)
	return total, ids(t, ex.body["list"])
}

func TestEspoCRMEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, target, body string
		status                     int
		check                      func(t *testing.T, ex exchange)
	}{
		{"list", "GET", "/api/v1/Account", "", 200, func(t *testing.T, ex exchange) {
			total, got := espoList(t, ex)
			if total != 6 || len(got) != 6 {
				t.Fatalf("total %v ids %v", total, got)
			}
			first := ex.body["list"].([]any)[0].(map[string]any)
			if first["assignedUserId"] != "u-sales1" || first["assignedUserName"] != "Alice Sales" || first["phoneNumber"] == nil {
				t.Fatalf("record %v", first)
			}
			if _, snake := first["assigned_user_id"]; snake {
				t.Fatal("EspoCRM records use camelCase")
			}
		}},
		{"paging", "GET", "/api/v1/Account?maxSize=2&offset=2", "", 200, func(t *testing.T, ex exchange) {
			total, got := espoList(t, ex)
			if total != 6 || strings.Join(got, ",") != "acc-3,acc-4" {
				t.Fatalf("total %v ids %v", total, got)
			}
		}},
		{"offset past end", "GET", "/api/v1/Account?offset=50", "", 200, func(t *testing.T, ex exchange) {
			if total, got := espoList(t, ex); total != 6 || len(got) != 0 {
				t.Fatalf("total %v ids %v", total, got)
			}
		}},
		{"default max size", "GET", "/api/v1/Account", "", 200, nil},
		{"where or group", "GET", "/api/v1/Account?where[0][type]=or&where[0][value][0][type]=equals&where[0][value][0][attribute]=assignedUserId&where[0][value][0][value]=u-sales3&where[0][value][1][type]=equals&where[0][value][1][attribute]=id&where[0][value][1][value]=acc-1", "", 200, func(t *testing.T, ex exchange) {
			if total, got := espoList(t, ex); total != 3 || strings.Join(got, ",") != "acc-1,acc-2,acc-6" {
				t.Fatalf("total %v ids %v", total, got)
			}
		}},
		{"where: PHP keeps the last duplicate", "GET", "/api/v1/Account?where[0][type]=equals&where[0][attribute]=assignedUserId&where[0][value]=u-sales1&where%5B0%5D%5Bvalue%5D=u-sales3", "", 200, func(t *testing.T, ex exchange) {
			if total, got := espoList(t, ex); total != 2 || strings.Join(got, ",") != "acc-2,acc-6" {
				t.Fatalf("total %v ids %v", total, got)
			}
		}},
		{"where: PHP ignores variables past max_input_vars", "GET", "/api/v1/Account?" + strings.Repeat("x=1&", 1000) + "where[0][type]=equals&where[0][attribute]=id&where[0][value]=acc-1", "", 200, func(t *testing.T, ex exchange) {
			if total, _ := espoList(t, ex); total != 6 {
				t.Fatalf("total %v: the where past the 1000th variable was read", total)
			}
		}},
		{"max size too big", "GET", "/api/v1/Account?maxSize=201", "", 403, func(t *testing.T, ex exchange) {
			if ex.header.Get("X-Status-Reason") == "" {
				t.Fatal("no X-Status-Reason")
			}
		}},
		{"where equals", "GET", "/api/v1/Contact?where[0][type]=equals&where[0][attribute]=assignedUserId&where[0][value]=u-sales3", "", 200, func(t *testing.T, ex exchange) {
			if total, got := espoList(t, ex); total != 2 || strings.Join(got, ",") != "c-2,c-7" {
				t.Fatalf("total %v ids %v", total, got)
			}
		}},
		{"where in and gt", "GET", "/api/v1/Product?where[0][type]=in&where[0][attribute]=categoryId&where[0][value][]=pc-kitchen&where[0][value][]=pc-garden&where[1][type]=greaterThan&where[1][attribute]=unitPrice&where[1][value]=200&orderBy=unitPrice&order=desc", "", 200, func(t *testing.T, ex exchange) {
			if _, got := espoList(t, ex); strings.Join(got, ",") != "p-6,p-4" {
				t.Fatalf("ids %v", got)
			}
		}},
		{"whereGroup alias", "GET", "/api/v1/Lead?whereGroup[0][type]=isNotNull&whereGroup[0][attribute]=accountName", "", 200, func(t *testing.T, ex exchange) {
			if _, got := espoList(t, ex); strings.Join(got, ",") != "l-3,l-5" {
				t.Fatalf("ids %v", got)
			}
		}},
		{"bad where attribute", "GET", "/api/v1/Account?where[0][type]=equals&where[0][attribute]=nope&where[0][value]=1", "", 400, nil},
		{"bad where type", "GET", "/api/v1/Account?where[0][type]=regex&where[0][attribute]=name&where[0][value]=1", "", 400, nil},
		{"select", "GET", "/api/v1/Employee?select=salary,reportsToId&orderBy=salary&order=asc&maxSize=1", "", 200, func(t *testing.T, ex exchange) {
			rec := ex.body["list"].([]any)[0].(map[string]any)
			if len(rec) != 3 || rec["id"] != "e-sales2" || rec["salary"] != 26800.0 || rec["reportsToId"] != "u-mgr" {
				t.Fatalf("record %v", rec)
			}
		}},
		{"no total", "GET", "/api/v1/Account", "", 200, nil},
		{"read", "GET", "/api/v1/Product/p-1", "", 200, func(t *testing.T, ex exchange) {
			if ex.body["costPrice"] != 310.0 || ex.body["unitPrice"] != 649.0 || ex.body["id"] != "p-1" {
				t.Fatalf("record %v", ex.body)
			}
		}},
		{"read unknown id", "GET", "/api/v1/Account/nope", "", 404, func(t *testing.T, ex exchange) {
			if len(ex.raw) != 0 {
				t.Fatalf("error body %q", ex.raw)
			}
		}},
		{"unknown entity", "GET", "/api/v1/Nope", "", 404, nil},
		{"create", "POST", "/api/v1/Account", `{"name":"New Co","assignedUserId":"u-sales2"}`, 200, func(t *testing.T, ex exchange) {
			if ex.body["name"] != "New Co" || ex.body["id"] == "" || ex.body["assignedUserId"] != "u-sales2" {
				t.Fatalf("record %v", ex.body)
			}
		}},
		{"create bad json", "POST", "/api/v1/Account", `[1]`, 400, nil},
		{"put", "PUT", "/api/v1/Contact/c-1", `{"phoneNumber":"+44 2","id":"c-9"}`, 200, func(t *testing.T, ex exchange) {
			if ex.body["phoneNumber"] != "+44 2" || ex.body["id"] != "c-1" || ex.body["firstName"] != "Pat" {
				t.Fatalf("record %v", ex.body)
			}
		}},
		{"patch", "PATCH", "/api/v1/Contact/c-1", `{"lastName":"Changed"}`, 200, func(t *testing.T, ex exchange) {
			if ex.body["lastName"] != "Changed" || ex.body["name"] != "Pat Changed" {
				t.Fatalf("record %v", ex.body)
			}
		}},
		{"put unknown", "PUT", "/api/v1/Contact/zz", `{}`, 404, nil},
		{"delete", "DELETE", "/api/v1/Task/t-1", "", 200, func(t *testing.T, ex exchange) {
			if string(ex.raw) != "true" {
				t.Fatalf("body %q", ex.raw)
			}
		}},
		{"delete unknown", "DELETE", "/api/v1/Task/zz", "", 404, nil},
		{"related", "GET", "/api/v1/Account/acc-3/contacts", "", 200, func(t *testing.T, ex exchange) {
			if total, got := espoList(t, ex); total != 2 || strings.Join(got, ",") != "c-3,c-4" {
				t.Fatalf("total %v ids %v", total, got)
			}
		}},
		{"related paged", "GET", "/api/v1/Account/acc-3/contacts?maxSize=1&offset=1", "", 200, func(t *testing.T, ex exchange) {
			if total, got := espoList(t, ex); total != 2 || strings.Join(got, ",") != "c-4" {
				t.Fatalf("total %v ids %v", total, got)
			}
		}},
		{"related unknown link", "GET", "/api/v1/Account/acc-3/nope", "", 400, nil},
		{"link", "POST", "/api/v1/Account/acc-4/contacts", `{"id":"c-2"}`, 200, nil},
		{"link ids", "POST", "/api/v1/Account/acc-4/contacts", `{"ids":["c-2","c-3"]}`, 200, nil},
		{"link unknown child", "POST", "/api/v1/Account/acc-4/contacts", `{"id":"zz"}`, 404, nil},
		{"link no id", "POST", "/api/v1/Account/acc-4/contacts", `{}`, 400, nil},
		{"unlink", "DELETE", "/api/v1/Account/acc-1/contacts", `{"id":"c-1"}`, 200, nil},
		{"unlink unrelated", "DELETE", "/api/v1/Account/acc-1/contacts", `{"id":"c-3"}`, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewEspoCRM(DepartmentStore(), EspoOptions{})
			ex := do(t, h, tt.method, tt.target, tt.body, map[string]string{"Content-Type": "application/json"})
			if ex.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", ex.status, tt.status, ex.raw)
			}
			if tt.check != nil {
				tt.check(t, ex)
			}
		})
	}
}

func TestEspoCRMAPIKey(t *testing.T) {
	t.Parallel()
	h := NewEspoCRM(DepartmentStore(), EspoOptions{APIKey: "k-123"})
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"missing", nil, 401},
		{"wrong", map[string]string{"X-Api-Key": "k-124"}, 401},
		{"prefix", map[string]string{"X-Api-Key": "k-12"}, 401},
		{"bearer instead", map[string]string{"Authorization": "Bearer k-123"}, 401},
		{"right", map[string]string{"X-Api-Key": "k-123"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if ex := do(t, h, "GET", "/api/v1/Account", "", tt.hdr); ex.status != tt.status {
				t.Fatalf("status %d, want %d", ex.status, tt.status)
			}
		})
	}
}

func TestEspoCRMNoTotalHeader(t *testing.T) {
	t.Parallel()
	h := NewEspoCRM(DepartmentStore(), EspoOptions{})
	ex := do(t, h, "GET", "/api/v1/Account", "", map[string]string{"X-No-Total": "true"})
	if ex.body["total"] != -1.0 {
		t.Fatalf("total %v", ex.body["total"])
	}
}

func TestSameDataBothCRMs(t *testing.T) {
	t.Parallel()
	ds := DepartmentStore()
	suite := NewSuiteCRM(ds, SuiteOptions{})
	espo := NewEspoCRM(ds, EspoOptions{})
	s := do(t, suite, "GET", "/Api/V8/module/Employees/e-sales1", "", nil)
	e := do(t, espo, "GET", "/api/v1/Employee/e-sales1", "", nil)
	if path(s.body, "data", "attributes", "salary_c") != "27500" || e.body["salary"] != 27500.0 {
		t.Fatalf("salary: suite %v espo %v", path(s.body, "data", "attributes", "salary_c"), e.body["salary"])
	}
	if path(s.body, "data", "attributes", "reports_to_id") != e.body["reportsToId"] {
		t.Fatal("reports-to differs between renderings")
	}
	do(t, espo, "PUT", "/api/v1/Employee/e-sales1", `{"salary":30000}`, nil)
	s = do(t, suite, "GET", "/Api/V8/module/Employees/e-sales1", "", nil)
	if path(s.body, "data", "attributes", "salary_c") != "30000" {
		t.Fatalf("write through Espo not visible through Suite: %v", s.body)
	}
}

func TestDepartmentStoreIDs(t *testing.T) {
	t.Parallel()
	ds := DepartmentStore()
	tests := []struct {
		module, id, field string
		want              any
	}{
		{"Users", "u-admin", "name", "Sam Admin"},
		{"Users", "u-mgr", "department", "store-12"},
		{"Users", "u-mgr", "reports_to_id", "u-admin"},
		{"Users", "u-sales1", "reports_to_id", "u-mgr"},
		{"Users", "u-sales3", "department", "store-7"},
		{"Users", "u-sales3", "reports_to_id", "u-mgr7"},
		{"Users", "u-inv", "department", "warehouse"},
		{"Accounts", "acc-1", "assigned_user_id", "u-sales1"},
		{"Accounts", "acc-2", "assigned_user_id", "u-sales3"},
		{"Accounts", "acc-3", "assigned_user_id", "u-sales2"},
		{"Contacts", "c-1", "phone_work", "+44 20 7946 0001"},
		{"Contacts", "c-1", "account_id", "acc-1"},
		{"Contacts", "c-2", "account_id", "acc-2"},
		{"Contacts", "c-3", "assigned_user_id", "u-sales2"},
		{"Product", "p-1", "assigned_user_id", "u-inv"},
		{"Employee", "e-mgr", "reports_to_id", "u-admin"},
	}
	for _, tt := range tests {
		t.Run(tt.module+"/"+tt.id+"/"+tt.field, func(t *testing.T) {
			t.Parallel()
			rec, ok := ds.Get(tt.module, tt.id)
			if !ok || rec[tt.field] != tt.want {
				t.Fatalf("%s %s: %v = %v, want %v", tt.module, tt.id, tt.field, rec[tt.field], tt.want)
			}
		})
	}
	owners := map[string]bool{}
	for _, rec := range ds.snapshot("Contacts") {
		owners[rec["assigned_user_id"].(string)] = true
	}
	if len(owners) < 3 {
		t.Fatalf("contacts need mixed owners, got %v", owners)
	}
}

func TestAddSynthetic(t *testing.T) {
	t.Parallel()
	ds := DepartmentStore()
	ds.AddSynthetic("Accounts", 1000, 7)
	if n := ds.Count("Account"); n != 1006 {
		t.Fatalf("count %d", n)
	}
	again := DepartmentStore()
	again.AddSynthetic("Account", 1000, 7)
	a, _ := ds.Get("Accounts", "syn-account-7-500")
	b, _ := again.Get("Accounts", "syn-account-7-500")
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed must give the same records")
	}
	h := NewEspoCRM(ds, EspoOptions{MaxSize: 1000})
	ex := do(t, h, "GET", "/api/v1/Account?offset=6&maxSize=1000", "", nil)
	list := ex.body["list"].([]any)
	raw, _ := json.Marshal(list)
	if per := len(raw) / len(list); per < 800 || per > 1400 {
		t.Fatalf("synthetic record size %d bytes, want about 1 KB", per)
	}
	owners := map[any]int{}
	for _, r := range list {
		owners[r.(map[string]any)["assignedUserId"]]++
	}
	if len(owners) < 5 {
		t.Fatalf("owners not mixed: %v", owners)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	ds := DepartmentStore()
	suite := NewSuiteCRM(ds, SuiteOptions{})
	espo := NewEspoCRM(ds, EspoOptions{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			espo.ServeHTTP(w, r)
			return
		}
		suite.ServeHTTP(w, r)
	}))
	defer srv.Close()
	done := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func(i int) {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 20; j++ {
				var req *http.Request
				switch (i + j) % 3 {
				case 0:
					req, _ = http.NewRequest("GET", srv.URL+"/Api/V8/module/Contacts", nil)
				case 1:
					req, _ = http.NewRequest("PUT", srv.URL+"/api/v1/Contact/c-1", strings.NewReader(fmt.Sprintf(`{"phoneNumber":"%d"}`, j)))
				default:
					req, _ = http.NewRequest("POST", srv.URL+"/api/v1/Task", strings.NewReader(`{"name":"x"}`))
				}
				res, err := http.DefaultClient.Do(req)
				if err == nil {
					res.Body.Close()
				}
			}
		}(i)
	}
	for i := 0; i < 8; i++ {
		<-done
	}
}
