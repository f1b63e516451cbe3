package app_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/config"
)

// crmNames maps the test's logical names to each CRM's spelling.
type crmNames struct {
	crm                                      string
	accounts, contacts, products, employees  string
	leads, cases                             string
	cost, price, phone, email, salary, accID string
	listPath                                 func(string) string
	recordPath                               func(module, id string) string
	records                                  func(t *testing.T, body map[string]any) []map[string]any
	record                                   func(t *testing.T, body map[string]any) map[string]any
	update                                   func(module, id, attrs string) (method, path, body string)
}

var suite = crmNames{
	crm: "suitecrm8", accounts: "Accounts", contacts: "Contacts", products: "AOS_Products", employees: "Employees",
	leads: "Leads", cases: "Cases",
	cost: "cost", price: "price", phone: "phone_work", email: "email1", salary: "salary_c", accID: "account_id",
	listPath:   func(m string) string { return "/Api/V8/module/" + m },
	recordPath: func(m, id string) string { return "/Api/V8/module/" + m + "/" + id },
	records: func(t *testing.T, body map[string]any) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, r := range body["data"].([]any) {
			rec := r.(map[string]any)
			attrs, _ := rec["attributes"].(map[string]any)
			flat := map[string]any{"id": rec["id"]}
			for k, v := range attrs {
				flat[k] = v
			}
			out = append(out, flat)
		}
		return out
	},
	record: func(t *testing.T, body map[string]any) map[string]any {
		t.Helper()
		rec := body["data"].(map[string]any)
		flat := map[string]any{"id": rec["id"]}
		for k, v := range rec["attributes"].(map[string]any) {
			flat[k] = v
		}
		return flat
	},
	update: func(m, id, attrs string) (string, string, string) {
		return "PATCH", "/Api/V8/module", `{"data":{"type":"` + m + `","id":"` + id + `","attributes":{` + attrs + `}}}`
	},
}

var espo = crmNames{
	crm: "espocrm", accounts: "Account", contacts: "Contact", products: "Product", employees: "Employee",
	leads: "Lead", cases: "Case",
	cost: "costPrice", price: "unitPrice", phone: "phoneNumber", email: "emailAddress", salary: "salary", accID: "accountId",
	listPath:   func(m string) string { return "/api/v1/" + m },
	recordPath: func(m, id string) string { return "/api/v1/" + m + "/" + id },
	records: func(t *testing.T, body map[string]any) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, r := range body["list"].([]any) {
			out = append(out, r.(map[string]any))
		}
		return out
	},
	record: func(t *testing.T, body map[string]any) map[string]any { return body },
	update: func(m, id, attrs string) (string, string, string) {
		return "PUT", "/api/v1/" + m + "/" + id, "{" + attrs + "}"
	},
}

func ids(recs []map[string]any) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r["id"].(string))
	}
	sort.Strings(out)
	return out
}

func forBothCRMs(t *testing.T, f func(t *testing.T, n crmNames, e *env)) {
	for _, n := range []crmNames{suite, espo} {
		t.Run(n.crm, func(t *testing.T) {
			f(t, n, newEnv(t, n.crm))
		})
	}
}

// TestListsAreFilteredToVisibleRecords: lists of mixed ownership come back
// with exactly the records the record rule allows.
func TestListsAreFilteredToVisibleRecords(t *testing.T) {
	forBothCRMs(t, func(t *testing.T, n crmNames, e *env) {
		cases := []struct {
			persona, module string
			want            []string
		}{
			{"pat", n.accounts, []string{"acc-1"}},
			{"pat", n.contacts, []string{"c-1"}},
			{"pat", n.cases, []string{"cs-1"}},
			{"alice", n.accounts, []string{"acc-1", "acc-3", "acc-4", "acc-5"}},
			{"alice", n.employees, []string{"e-sales1"}},
			{"morgan", n.employees, []string{"e-mgr", "e-sales1", "e-sales2"}},
			{"ivan", n.employees, []string{"e-inv"}},
			{"sam", n.accounts, []string{"acc-1", "acc-2", "acc-3", "acc-4", "acc-5", "acc-6"}},
		}
		for _, c := range cases {
			t.Run(c.persona+"/"+c.module, func(t *testing.T) {
				r := e.do("GET", n.listPath(c.module), c.persona, "")
				if r.Status != http.StatusOK {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				got := ids(n.records(t, r.json(t)))
				if !slices.Equal(got, c.want) {
					t.Fatalf("ids = %v, want %v", got, c.want)
				}
			})
		}
	})
}

// TestListCountsDoNotRevealFilteredRecords: the envelope's totals may not
// tell a customer how many other customers there are. With the record rule
// pushed into the CRM's query the CRM counts only the customer's own
// records, and its totals pass through; without pushdown they are removed
// or rewritten.
func TestListCountsDoNotRevealFilteredRecords(t *testing.T) {
	forBothCRMs(t, func(t *testing.T, n crmNames, e *env) {
		body := e.do("GET", n.listPath(n.accounts), "pat", "").json(t)
		if n.crm == "espocrm" {
			if total := body["total"]; total != float64(1) {
				t.Errorf("pushed-down total = %v, want the customer's 1", total)
			}
		} else if meta, _ := body["meta"].(map[string]any); meta["total-pages"] != float64(1) || meta["records-on-this-page"] != float64(1) {
			t.Errorf("pushed-down meta = %v, want the customer's counts", meta)
		}
	})
	forBothCRMs(t, func(t *testing.T, n crmNames, e *env) {
		e = newEnv(t, n.crm, func(c *config.Config) { off := false; c.CRM.Pushdown = &off })
		body := e.do("GET", n.listPath(n.accounts), "pat", "").json(t)
		if n.crm == "espocrm" {
			if total := body["total"]; total != float64(-2) && total != float64(-1) && total != float64(1) {
				t.Errorf("total = %v reveals the unfiltered count", total)
			}
			return
		}
		meta, _ := body["meta"].(map[string]any)
		if _, ok := meta["total-pages"]; ok {
			t.Errorf("meta.total-pages kept: %v", meta)
		}
		if v, ok := meta["records-on-this-page"]; ok && v != float64(1) {
			t.Errorf("records-on-this-page = %v", v)
		}
	})
}

// TestFieldsHiddenAndMasked: buy prices hidden from sales, visible to
// inventory; contact phone and email masked for sales.
func TestFieldsHiddenAndMasked(t *testing.T) {
	forBothCRMs(t, func(t *testing.T, n crmNames, e *env) {
		t.Run("sales never sees buy prices", func(t *testing.T) {
			for _, path := range []string{n.recordPath(n.products, "p-1"), n.listPath(n.products)} {
				r := e.do("GET", path, "alice", "")
				if r.Status != http.StatusOK {
					t.Fatalf("%s: %d %s", path, r.Status, r.Body)
				}
				if strings.Contains(string(r.Body), `"`+n.cost+`"`) {
					t.Fatalf("%s: buy price field in response: %s", path, r.Body)
				}
				if !strings.Contains(string(r.Body), `"`+n.price+`"`) {
					t.Fatalf("%s: sell price missing: %s", path, r.Body)
				}
			}
		})
		t.Run("sales cannot ask for buy prices by sparse fieldset", func(t *testing.T) {
			q := "?fields[AOS_Products]=cost,name"
			if n.crm == "espocrm" {
				q = "?select=costPrice,name"
			}
			r := e.do("GET", n.listPath(n.products)+q, "alice", "")
			if strings.Contains(string(r.Body), `"`+n.cost+`"`) {
				t.Fatalf("buy price in response: %s", r.Body)
			}
		})
		t.Run("inventory sees buy prices", func(t *testing.T) {
			rec := n.record(t, e.do("GET", n.recordPath(n.products, "p-1"), "ivan", "").json(t))
			if _, ok := rec[n.cost]; !ok {
				t.Fatalf("inventory manager lost the buy price: %v", rec)
			}
		})
		t.Run("contact phone and email masked for sales", func(t *testing.T) {
			rec := n.record(t, e.do("GET", n.recordPath(n.contacts, "c-1"), "alice", "").json(t))
			phone, _ := rec[n.phone].(string)
			if !strings.HasPrefix(phone, "*") || !strings.HasSuffix(phone, "0001") {
				t.Errorf("phone = %q, want last 4 only", phone)
			}
			if email, _ := rec[n.email].(string); strings.Contains(email, "pat.customer") {
				t.Errorf("email not masked: %q", email)
			}
			r := e.do("GET", n.listPath(n.contacts), "alice", "")
			if strings.Contains(string(r.Body), "7946 0001") {
				t.Errorf("a full phone number left in the list: %s", r.Body)
			}
		})
		t.Run("salary hidden from a manager for team members who are not reports", func(t *testing.T) {
			r := e.do("GET", n.listPath(n.employees), "morgan", "")
			for _, rec := range n.records(t, r.json(t)) {
				_, has := rec[n.salary]
				if !has {
					t.Errorf("%v: salary of own/report missing", rec["id"])
				}
			}
		})
	})
}

// TestSingleRecordReadsObeyTheRecordRule: a record outside the subject's
// view answers 404 (its existence is not confirmed).
func TestSingleRecordReadsObeyTheRecordRule(t *testing.T) {
	forBothCRMs(t, func(t *testing.T, n crmNames, e *env) {
		for _, c := range []struct {
			persona, module, id string
			status              int
		}{
			{"pat", n.accounts, "acc-1", 200},
			{"alice", n.accounts, "acc-3", 200}, // team
			{"alice", n.accounts, "acc-2", 404}, // another store
			{"alice", n.employees, "e-sales1", 200},
			{"morgan", n.employees, "e-sales3", 404}, // another store's employee
			{"alice", n.employees, "e-sales2", 404},  // a team mate's personnel record
		} {
			r := e.do("GET", n.recordPath(c.module, c.id), c.persona, "")
			if r.Status != c.status {
				t.Errorf("%s reads %s/%s: %d, want %d: %s", c.persona, c.module, c.id, r.Status, c.status, r.Body)
			}
			if c.status == 404 && strings.Contains(string(r.Body), c.id) {
				t.Errorf("404 body names the record: %s", r.Body)
			}
		}
	})
}

// TestWritesToOtherPeoplesRecords: the target is fetched and checked before
// the write reaches the CRM.
func TestWritesToOtherPeoplesRecords(t *testing.T) {
	forBothCRMs(t, func(t *testing.T, n crmNames, e *env) {
		writes := func() []seen {
			var out []seen
			for _, s := range e.upstream.crmRequests() {
				if s.Method != "GET" {
					out = append(out, s)
				}
			}
			return out
		}
		cases := []struct {
			name, persona, method, path, body string
			status                            int
		}{
			{"update an invisible account", "alice", "", n.accounts + "/acc-2", `"name":"mine now"`, 404},
			{"update a team account", "alice", "", n.accounts + "/acc-3", `"name":"Northwind"`, 200},
			{"delete another store's lead", "alice", "DELETE", n.recordPath(n.leads, "l-2"), "", 404},
			{"delete a team mate's lead", "alice", "DELETE", n.recordPath(n.leads, "l-3"), "", 403},
			{"delete own lead", "alice", "DELETE", n.recordPath(n.leads, "l-1"), "", 200},
			{"customer updates another customer's case", "pat", "", n.cases + "/cs-2", `"name":"hello"`, 404},
			{"customer updates own case", "pat", "", n.cases + "/cs-1", `"name":"still damaged"`, 200},
			{"nonexistent record", "alice", "", n.accounts + "/acc-99", `"name":"x"`, 404},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.upstream.reset()
				method, path, body := c.method, c.path, c.body
				if method == "" {
					mod, id, _ := strings.Cut(c.path, "/")
					method, path, body = n.update(mod, id, c.body)
				}
				r := e.do(method, path, c.persona, body)
				if r.Status != c.status {
					t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
				}
				if got := writes(); (c.status == 200) != (len(got) == 1) {
					t.Fatalf("%d write(s) reached the CRM for a %d", len(got), c.status)
				}
			})
		}
	})
}

// TestWriteGuards: read-only fields, escaped and duplicate keys, policy
// bounds on values.
func TestWriteGuards(t *testing.T) {
	forBothCRMs(t, func(t *testing.T, n crmNames, e *env) {
		cost := n.cost
		escaped := strings.Replace(cost, "s", `\u0073`, 1)
		cases := []struct {
			name, persona, attrs string
			status               int
			field                string
		}{
			{"sales writes a buy price", "alice", `"name":"x","` + cost + `":1`, 403, cost},
			{"escaped spelling of the buy price", "alice", `"name":"x","` + escaped + `":1`, 403, cost},
			{"case spelling of the buy price", "alice", `"name":"x","` + strings.ToUpper(cost) + `":1`, 403, strings.ToUpper(cost)},
			{"duplicate keys", "alice", `"name":"x","name":"y"`, 400, ""},
			{"sales writes a salary-like field on an account", "alice", `"name":"x","` + n.salary + `":1`, 403, n.salary},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.upstream.reset()
				method, path, body := n.update(n.accounts, "acc-1", c.attrs)
				r := e.do(method, path, c.persona, body)
				if r.Status != c.status {
					t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
				}
				if c.field != "" {
					var p struct{ Fields []string }
					_ = json.Unmarshal(r.Body, &p)
					if !slices.Contains(p.Fields, c.field) {
						t.Errorf("problem fields %v do not name %q", p.Fields, c.field)
					}
				}
				for _, s := range e.upstream.crmRequests() {
					if s.Method != "GET" {
						t.Fatalf("a refused write reached the CRM: %s %s", s.Method, s.Path)
					}
				}
			})
		}
		t.Run("customer files a case for another account", func(t *testing.T) {
			e.upstream.reset()
			var method, path, body string
			if n.crm == "suitecrm8" {
				method, path, body = "POST", "/Api/V8/module", `{"data":{"type":"Cases","attributes":{"name":"x","account_id":"acc-2"}}}`
			} else {
				method, path, body = "POST", "/api/v1/Case", `{"name":"x","accountId":"acc-2"}`
			}
			r := e.do(method, path, "pat", body)
			assertProblem(t, r, http.StatusForbidden, "forbidden")
			assertNothingUpstream(t, e)
		})
	})
}

// TestUninspectableResponsesAreRefused: a compressed or non-JSON answer on
// a route that needs redaction never reaches the client unread.
func TestUninspectableResponsesAreRefused(t *testing.T) {
	t.Run("gzip from the CRM is decoded and redacted", func(t *testing.T) {
		e := newEnvGzip(t)
		r := e.do("GET", "/Api/V8/module/AOS_Products/p-1", "alice", "")
		if r.Status != 200 || strings.Contains(string(r.Body), `"cost"`) || r.Header.Get("Content-Encoding") != "" {
			t.Fatalf("status %d, encoding %q: %s", r.Status, r.Header.Get("Content-Encoding"), r.Body)
		}
	})
	t.Run("html instead of json", func(t *testing.T) {
		up := newStatic(t, "text/html", "<html>cost: 12.00</html>")
		e := newEnv(t, "espocrm", func(c *config.Config) { c.Upstream.URL = up })
		r := e.do("GET", "/api/v1/Product/p-1", "alice", "")
		assertProblem(t, r, http.StatusBadGateway, "upstream-response")
	})
	t.Run("json that is not the profile's shape", func(t *testing.T) {
		up := newStatic(t, "application/json", `{"unexpected":[{"costPrice":12}]}`)
		e := newEnv(t, "espocrm", func(c *config.Config) { c.Upstream.URL = up })
		r := e.do("GET", "/api/v1/Product", "alice", "")
		if r.Status == 200 || strings.Contains(string(r.Body), "costPrice") {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	})
	t.Run("duplicate keys in the response", func(t *testing.T) {
		up := newStatic(t, "application/json", `{"id":"p-1","name":"a","name":"b"}`)
		e := newEnv(t, "espocrm", func(c *config.Config) { c.Upstream.URL = up })
		assertProblem(t, e.do("GET", "/api/v1/Product/p-1", "alice", ""), http.StatusBadGateway, "upstream-response")
	})
	t.Run("unknown content encoding", func(t *testing.T) {
		up := newStaticEncoded(t, "application/json", "br", `{"id":"p-1"}`)
		e := newEnv(t, "espocrm", func(c *config.Config) { c.Upstream.URL = up })
		assertProblem(t, e.do("GET", "/api/v1/Product/p-1", "alice", ""), http.StatusBadGateway, "upstream-response")
	})
}

// TestDecisionLogRecordsWhatWasRead: auditors can answer "who read record
// acc-1".
func TestDecisionLogRecordsWhatWasRead(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	e.do("GET", "/Api/V8/module/Accounts", "alice", "")
	lines := e.flushLog()
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	l := lines[0]
	got, _ := l["record_ids"].([]any)
	var gotIDs []string
	for _, v := range got {
		gotIDs = append(gotIDs, v.(string))
	}
	sort.Strings(gotIDs)
	if !slices.Equal(gotIDs, []string{"acc-1", "acc-3", "acc-4", "acc-5"}) {
		t.Errorf("record_ids = %v", gotIDs)
	}
	if l["records_returned"] != float64(4) || l["records_filtered"] != float64(2) {
		t.Errorf("returned/filtered = %v/%v", l["records_returned"], l["records_filtered"])
	}
}
