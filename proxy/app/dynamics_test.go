package app_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/emulator"
)

// dynSets are the reference policy's classes as Dataverse entity sets,
// with the dataset id (as a GUID) every persona that may read it may read.
var dynSets = []struct{ class, set, id string }{
	{"account", "accounts", "acc-1"},
	{"contact", "contacts", "c-1"},
	{"lead", "leads", "l-1"},
	{"opportunity", "opportunities", "o-1"},
	{"case", "incidents", "cs-1"},
	{"call", "phonecalls", "call-1"},
	{"product", "products", "p-1"},
	{"employee", "new_employees", ""},
	{"user", "systemusers", "u-sales1"},
}

const dynBase = "/api/data/v9.2/"

func dynRequest(set, id, action string) (method, path, body string) {
	key := dynBase + set + "(" + emulator.DynamicsID(id) + ")"
	switch action {
	case "L":
		return "GET", dynBase + set, ""
	case "R":
		return "GET", key, ""
	case "C":
		return "POST", dynBase + set, `{"description":"written by test"}`
	case "U":
		return "PATCH", key, `{"description":"written by test"}`
	case "D":
		return "DELETE", key, ""
	}
	panic("unknown action " + action)
}

// TestDynamicsPersonaModuleAccess is TestPersonaModuleAccess against the
// Dataverse emulator: the same grants table, in Dataverse naming.
func TestDynamicsPersonaModuleAccess(t *testing.T) {
	for _, persona := range []string{"pat", "alice", "morgan", "ivan", "sky", "sam", "sam-nomfa"} {
		e := newEnv(t, "dynamics")
		for _, mod := range dynSets {
			for _, action := range []string{"L", "R", "C", "U", "D"} {
				id := mod.id
				if mod.class == "employee" {
					id = ownEmployee[persona]
				}
				method, path, body := dynRequest(mod.set, id, action)
				t.Run(fmt.Sprintf("%s/%s/%s", persona, mod.set, action), func(t *testing.T) {
					e.upstream.reset()
					r := e.do(method, path, persona, body)
					assertGrantAnswer(t, e, r, persona, mod.class, action, method, true)
				})
			}
		}
	}
}

func dynList(t *testing.T, e *env, persona, path string) []map[string]any {
	t.Helper()
	r := e.do("GET", path, persona, "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s as %s: %d %s", path, persona, r.Status, r.Body)
	}
	vals, ok := r.json(t)["value"].([]any)
	if !ok {
		t.Fatalf("no value array: %s", r.Body)
	}
	var out []map[string]any
	for _, v := range vals {
		out = append(out, v.(map[string]any))
	}
	return out
}

// TestDynamicsListFiltering: each persona's list holds exactly the rows
// the record rule admits, pushed into $filter (full pages, true counts).
func TestDynamicsListFiltering(t *testing.T) {
	e := newEnv(t, "dynamics")
	owners := func(rows []map[string]any) map[string]bool {
		m := map[string]bool{}
		for _, r := range rows {
			m[fmt.Sprint(r["_ownerid_value"])] = true
		}
		return m
	}
	team := map[string]bool{emulator.DynamicsID("u-sales1"): true, emulator.DynamicsID("u-sales2"): true, emulator.DynamicsID("u-mgr"): true}
	rows := dynList(t, e, "alice", dynBase+"accounts")
	if len(rows) != 4 {
		t.Fatalf("alice sees %d accounts, want 4 (store-12's): %v", len(rows), rows)
	}
	for o := range owners(rows) {
		if !team[o] {
			t.Errorf("alice sees an account owned by %s", o)
		}
	}
	e.upstream.reset()
	r := e.do("GET", dynBase+"accounts?$count=true&$select=name", "alice", "")
	if c := r.json(t)["@odata.count"]; c != float64(4) {
		t.Errorf("@odata.count = %v, want the CRM's true total 4: %s", c, r.Body)
	}
	up := e.upstream.crmRequests()
	if len(up) != 1 {
		t.Fatalf("upstream requests: %v", up)
	}
	q, _ := url.ParseQuery(up[0].Query)
	f := q.Get("$filter")
	for o := range team {
		if !strings.Contains(f, "_ownerid_value eq "+o) {
			t.Errorf("pushed $filter %q lacks owner %s", f, o)
		}
	}
	// A client filter is ANDed after the rule, never instead of it.
	e.upstream.reset()
	rows = dynList(t, e, "alice", dynBase+"accounts?$filter="+url.QueryEscape("name ne 'x' or _ownerid_value eq "+emulator.DynamicsID("u-sales3")))
	for o := range owners(rows) {
		if !team[o] {
			t.Errorf("an or in the client filter reached another team's account (%s)", o)
		}
	}
	q, _ = url.ParseQuery(e.upstream.crmRequests()[0].Query)
	if f := q.Get("$filter"); !strings.HasPrefix(f, "((") || !strings.Contains(f, ") and (") {
		t.Errorf("upstream $filter %q is not (rule) and (client)", f)
	}
	// A row owned by alice's owner team (Dataverse teams own rows too) is
	// hers to see; the team's GUID is in the pushed filter.
	e.ds.Put("Accounts", "acc-t12", map[string]any{"name": "Store-12 walk-in customers", "assigned_user_id": "team-store-12"})
	e.upstream.reset()
	rows = dynList(t, e, "alice", dynBase+"accounts")
	if len(rows) != 5 {
		t.Errorf("alice sees %d accounts with her team's own, want 5", len(rows))
	}
	q, _ = url.ParseQuery(e.upstream.crmRequests()[0].Query)
	if f := q.Get("$filter"); !strings.Contains(f, "_ownerid_value eq "+emulator.DynamicsID("team-store-12")) {
		t.Errorf("pushed $filter %q lacks the owner team", f)
	}
	if rows := dynList(t, e, "pat", dynBase+"accounts"); len(rows) != 1 {
		t.Errorf("pat sees the team's account: %v", rows)
	}
	if r := e.do("GET", dynBase+"teams", "sam", ""); r.Status != 200 || !strings.Contains(string(r.Body), `"name":"store-12"`) {
		t.Errorf("teams: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", dynBase+"teams", "alice", ""); r.Status != http.StatusForbidden {
		t.Errorf("alice lists teams: %d", r.Status)
	}
	// A customer sees her own account only.
	rows = dynList(t, e, "pat", dynBase+"accounts")
	if len(rows) != 1 || rows[0]["accountid"] != emulator.DynamicsID("acc-1") {
		t.Errorf("pat sees %v", rows)
	}
	rows = dynList(t, e, "pat", dynBase+"contacts")
	if len(rows) != 1 {
		t.Errorf("pat sees %d contacts, want her own account's one", len(rows))
	}
}

// TestDynamicsFieldRules: buy prices hidden, phones masked, salaries by
// role, in Dataverse column names; hidden columns may not be selected,
// filtered or sorted on.
func TestDynamicsFieldRules(t *testing.T) {
	e := newEnv(t, "dynamics")
	p1 := dynBase + "products(" + emulator.DynamicsID("p-1") + ")"
	r := e.do("GET", p1, "alice", "")
	if r.Status != 200 || strings.Contains(string(r.Body), "standardcost") || strings.Contains(string(r.Body), "currentcost") {
		t.Errorf("alice reads a product: %d %s", r.Status, r.Body)
	}
	r = e.do("GET", p1, "ivan", "")
	if !strings.Contains(string(r.Body), `"standardcost":310`) {
		t.Errorf("ivan does not see the buy price: %s", r.Body)
	}
	rows := dynList(t, e, "alice", dynBase+"contacts")
	for _, c := range rows {
		if tel, _ := c["telephone1"].(string); tel != "" && !strings.Contains(tel, "*") {
			t.Errorf("alice sees contact phone %q unmasked", tel)
		}
	}
	for _, q := range []string{"$select=name,standardcost", "$filter=standardcost%20gt%20100", "$orderby=currentcost%20desc",
		"$filter=not%20(standardcost%20le%20100)", "$filter=(name%20eq%20'x')%20or%20(standardcost%20gt%201)"} {
		r = e.do("GET", dynBase+"products?"+q, "alice", "")
		if r.Status != http.StatusForbidden {
			t.Errorf("alice ?%s: %d %s", q, r.Status, r.Body)
		}
	}
	// Salary: a line manager sees his reports', sales only her own.
	emp := func(persona, id string) string {
		r := e.do("GET", dynBase+"new_employees("+emulator.DynamicsID(id)+")", persona, "")
		return string(r.Body)
	}
	if b := emp("morgan", "e-sales1"); !strings.Contains(b, "new_salary") {
		t.Errorf("morgan does not see his report's salary: %s", b)
	}
	if b := emp("alice", "e-sales1"); !strings.Contains(b, "new_salary") {
		t.Errorf("alice does not see her own salary: %s", b)
	}
	if r := e.do("GET", dynBase+"new_employees("+emulator.DynamicsID("e-sales2")+")", "alice", ""); r.Status != http.StatusNotFound {
		t.Errorf("alice reads a colleague's personnel record: %d %s", r.Status, r.Body)
	}
}

// TestDynamicsWriteGuards: read-only and hidden columns, other owners'
// rows, binds and deep inserts are refused before the CRM sees them.
func TestDynamicsWriteGuards(t *testing.T) {
	e := newEnv(t, "dynamics")
	cases := []struct {
		name, persona, method, path, body string
		status                            int
	}{
		{"sales writes a buy price", "alice", "PATCH", dynBase + "products(" + emulator.DynamicsID("p-1") + ")", `{"standardcost":1}`, http.StatusForbidden},
		{"inventory writes a salary", "ivan", "PATCH", dynBase + "new_employees(" + emulator.DynamicsID("e-inv") + ")", `{"new_salary":1}`, http.StatusForbidden},
		{"sales updates another team's account", "alice", "PATCH", dynBase + "accounts(" + emulator.DynamicsID("acc-2") + ")", `{"name":"x"}`, http.StatusNotFound},
		{"upsert of an unknown id", "alice", "PATCH", dynBase + "accounts(00000000-0000-0000-0000-00000000abcd)", `{"name":"x"}`, http.StatusNotFound},
		{"owner reassigned by bind", "alice", "PATCH", dynBase + "accounts(" + emulator.DynamicsID("acc-1") + ")", `{"ownerid@odata.bind":"/systemusers(` + emulator.DynamicsID("u-sales3") + `)"}`, http.StatusBadRequest},
		{"contact bound to another account", "alice", "POST", dynBase + "contacts", `{"lastname":"x","parentcustomerid_account@odata.bind":"/accounts(` + emulator.DynamicsID("acc-2") + `)"}`, http.StatusBadRequest},
		{"deep insert of a case", "alice", "POST", dynBase + "accounts", `{"name":"x","incident_customer_accounts":[{"title":"y"}]}`, http.StatusBadRequest},
		{"client-chosen id on create", "alice", "POST", dynBase + "accounts", `{"name":"x","accountid":"00000000-0000-0000-0000-00000000abcd"}`, http.StatusBadRequest},
		{"customer deletes her account", "pat", "DELETE", dynBase + "accounts(" + emulator.DynamicsID("acc-1") + ")", ``, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.upstream.reset()
			r := e.do(c.method, c.path, c.persona, c.body)
			if r.Status != c.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, c.status)
			}
			for _, s := range e.upstream.crmRequests() {
				if s.Method == c.method {
					t.Fatalf("refused write reached the CRM: %+v", s)
				}
			}
		})
	}
	// A create answers with the new row's URL at crmgate, not at the CRM.
	r0 := e.do("POST", dynBase+"accounts", "alice", `{"name":"new shop"}`)
	if id := r0.Header.Get("OData-EntityId"); r0.Status != http.StatusNoContent || !strings.HasPrefix(id, "http://127.0.0.1:1/api/data/v9.2/accounts(") {
		t.Errorf("create: %d, OData-EntityId %q", r0.Status, id)
	}
	// An allowed write goes through and is visible.
	r := e.do("PATCH", dynBase+"accounts("+emulator.DynamicsID("acc-1")+")", "alice", `{"name":"renamed"}`)
	if r.Status != http.StatusNoContent {
		t.Fatalf("alice renames her account: %d %s", r.Status, r.Body)
	}
}

// TestDynamicsPagingAndRelated: nextLink is rewritten to crmgate's
// address and paging through it reaches every row the rule admits once;
// related lists are judged by the related table's policy.
func TestDynamicsPagingAndRelated(t *testing.T) {
	e := newEnv(t, "dynamics")
	e.ds.AddSynthetic("Accounts", 30, 7)
	seen := map[string]bool{}
	path := dynBase + "accounts?$select=name"
	for i := 0; path != "" && i < 20; i++ {
		r := e.do("GET", path, "alice", "", "Prefer", "odata.maxpagesize=4")
		if r.Status != 200 {
			t.Fatalf("page %d: %d %s", i, r.Status, r.Body)
		}
		doc := r.json(t)
		for _, v := range doc["value"].([]any) {
			id := v.(map[string]any)["accountid"].(string)
			if seen[id] {
				t.Fatalf("row %s twice", id)
			}
			seen[id] = true
		}
		next, _ := doc["@odata.nextLink"].(string)
		if next == "" {
			break
		}
		// The harness's public_url (demo.Config) is http://127.0.0.1:1.
		if !strings.HasPrefix(next, "http://127.0.0.1:1/api/data/v9.2/accounts?") {
			t.Fatalf("nextLink %q does not point at crmgate", next)
		}
		u, err := url.Parse(next)
		if err != nil {
			t.Fatal(err)
		}
		path = u.RequestURI()
		if ctx, _ := doc["@odata.context"].(string); !strings.HasPrefix(ctx, "http://127.0.0.1:1/") {
			t.Errorf("@odata.context names the CRM: %s", ctx)
		}
	}
	want := 0
	for _, rec := range e.ds.Snapshot("Accounts") {
		if o, _ := rec["assigned_user_id"].(string); o == "u-sales1" || o == "u-sales2" || o == "u-mgr" {
			want++
		}
	}
	if len(seen) != want || want < 5 {
		t.Errorf("paging reached %d rows, want %d", len(seen), want)
	}
	// Every page went to Dataverse with the one $filter of the first:
	// the rule is not ANDed again onto a nextLink that carries it.
	filters := map[string]bool{}
	for _, s := range e.upstream.crmRequests() {
		q, _ := url.ParseQuery(s.Query)
		filters[q.Get("$filter")] = true
	}
	if len(filters) != 1 {
		t.Errorf("the pages' $filters differ: %v", filters)
	}
	acc1 := emulator.DynamicsID("acc-1")
	if r := e.do("GET", dynBase+"accounts("+acc1+")/incident_customer_accounts", "alice", ""); r.Status != http.StatusForbidden {
		t.Errorf("sales reads cases through an account: %d %s", r.Status, r.Body)
	}
	rows := dynList(t, e, "alice", dynBase+"accounts("+acc1+")/contact_customer_accounts")
	if len(rows) == 0 {
		t.Fatal("no contacts through the account")
	}
	for _, c := range rows {
		if tel, _ := c["telephone1"].(string); tel != "" && !strings.Contains(tel, "*") {
			t.Errorf("related contact phone %q not masked by the contacts rules", tel)
		}
	}
}

// dynReachable pages through a Dataverse list by its nextLinks and
// returns every id reached, the pages it took and whether every page
// carried @odata.count.
func dynReachable(t *testing.T, e *env, persona, set, key string, size int) ([]string, int, bool, int) {
	t.Helper()
	var ids []string
	counted, count := true, -1
	path := dynBase + set + "?$count=true"
	for n := 1; ; n++ {
		if n > 500 {
			t.Fatalf("%s %s: paging does not end", persona, set)
		}
		r := e.do("GET", path, persona, "", "Prefer", fmt.Sprintf("odata.maxpagesize=%d", size))
		if r.Status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", persona, path, r.Status, r.Body)
		}
		doc := r.json(t)
		for _, v := range doc["value"].([]any) {
			ids = append(ids, v.(map[string]any)[key].(string))
		}
		c, ok := doc["@odata.count"].(float64)
		counted = counted && ok
		if ok {
			count = int(c)
		}
		next, _ := doc["@odata.nextLink"].(string)
		if next == "" {
			return ids, n, counted, count
		}
		u, err := url.Parse(next)
		if err != nil {
			t.Fatal(err)
		}
		path = u.RequestURI()
	}
}

// TestDynamicsPushdownDifferential: for every persona, table and page
// size, paging with the rule pushed into $filter reaches exactly the rows
// paging without pushdown reaches; pushed-down pages are full and carry
// the CRM's true @odata.count, filtered-after ones none.
func TestDynamicsPushdownDifferential(t *testing.T) {
	on := newEnv(t, "dynamics")
	off := newEnv(t, "dynamics", pushdownOff)
	for _, e := range []*env{on, off} {
		for _, m := range []string{"Accounts", "Contacts", "Cases", "Opportunities"} {
			e.ds.AddSynthetic(m, 25, 3)
		}
	}
	keys := map[string]string{"accounts": "accountid", "contacts": "contactid", "incidents": "incidentid", "opportunities": "opportunityid"}
	classes := map[string]string{"accounts": "account", "contacts": "contact", "incidents": "case", "opportunities": "opportunity"}
	exacts, total := 0, 0
	for _, persona := range []string{"pat", "alice", "morgan", "sky", "sam"} {
		for _, set := range []string{"accounts", "contacts", "incidents", "opportunities"} {
			if !strings.Contains(moduleGrants[persona][classes[set]], "L") {
				continue
			}
			for _, size := range []int{1, 4, 20} {
				got, pages, counted, count := dynReachable(t, on, persona, set, keys[set], size)
				want, _, offCounted, _ := dynReachable(t, off, persona, set, keys[set], size)
				if offCounted && persona != "sam" {
					t.Errorf("%s %s: filtered after, yet @odata.count passed", persona, set)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s %s size %d: pushed down reaches %d rows, filtered after %d", persona, set, size, len(got), len(want))
				}
				if counted {
					exacts++
					if count != len(got) || pages != max(1, (len(got)+size-1)/size) {
						t.Errorf("%s %s size %d: count %d, %d pages for %d rows", persona, set, size, count, pages, len(got))
					}
				}
				total++
			}
		}
	}
	t.Logf("dynamics: %d of %d persona × table × size lists pushed down exactly", exacts, total)
	if exacts != total {
		t.Errorf("only %d of %d lists exact: the reference rules all translate into $filter", exacts, total)
	}
}
