package app_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestRelatedRecordsUnderTheirOwnModule: the records of a related list are
// judged by their own module's policy (allow for list, field rules, record
// rule), not by the parent's.
func TestRelatedRecordsUnderTheirOwnModule(t *testing.T) {
	forBothCRMs(t, func(t *testing.T, n crmNames, e *env) {
		related := func(parent, id, link string) string {
			if n.crm == "espocrm" {
				return "/api/v1/" + parent + "/" + id + "/" + link
			}
			return "/Api/V8/module/" + parent + "/" + id + "/relationships/" + link
		}
		// A contact of alice's account owned by another store.
		e.ds.Put("Contacts", "c-9", map[string]any{"first_name": "Other", "last_name": "Store", "account_id": "acc-1",
			"assigned_user_id": "u-sales3", "phone_work": "+44 161 496 0999", "phone_mobile": "+44 7700 900999"})

		t.Run("sales may not list cases through an account", func(t *testing.T) {
			e.upstream.reset()
			r := e.do("GET", related(n.accounts, "acc-1", "cases"), "alice", "")
			assertProblem(t, r, http.StatusForbidden, "forbidden")
			assertNothingUpstream(t, e)
		})
		t.Run("contacts through an account are judged as contacts", func(t *testing.T) {
			r := e.do("GET", related(n.accounts, "acc-1", "contacts"), "alice", "")
			if r.Status != http.StatusOK {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			got := ids(n.records(t, r.json(t)))
			if !slices.Equal(got, []string{"c-1"}) {
				t.Errorf("ids = %v, want [c-1]: the other store's c-9 is refused by the Contacts record rule", got)
			}
			body := string(r.Body)
			for _, leak := range []string{"7700 900001", "7946 0001", "pat.customer@", "900999"} {
				if strings.Contains(body, leak) {
					t.Errorf("related contact leaks %q (Contacts masks phones and email for sales): %s", leak, body)
				}
			}
		})
		t.Run("support works cases through an account", func(t *testing.T) {
			r := e.do("GET", related(n.accounts, "acc-1", "cases"), "sky", "")
			if r.Status != http.StatusOK {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if got := ids(n.records(t, r.json(t))); !slices.Equal(got, []string{"cs-1"}) {
				t.Errorf("ids = %v, want [cs-1]", got)
			}
			r = e.do("GET", related(n.accounts, "acc-1", "contacts"), "sky", "")
			if got := ids(n.records(t, r.json(t))); !slices.Equal(got, []string{"c-1", "c-9"}) {
				t.Errorf("support's contacts = %v, want both", got)
			}
		})
		t.Run("a link crmgate cannot resolve is refused", func(t *testing.T) {
			e.upstream.reset()
			r := e.do("GET", related(n.accounts, "acc-1", "members_custom"), "alice", "")
			assertProblem(t, r, http.StatusForbidden, "forbidden")
			assertNothingUpstream(t, e)
		})
		lines := e.flushLog()
		found := false
		for _, l := range lines {
			if l["module"] == n.accounts && l["related_module"] == n.contacts && l["outcome"] == "allow" {
				found = true
			}
		}
		if !found {
			t.Errorf("no decision-log event names both %s and %s: %v", n.accounts, n.contacts, lines)
		}
	})
}

// mixedTypes is a SuiteCRM whose relationship answers also carry records
// of other modules (a customised or flex-relate link): the records the
// link's module does not own must not pass under its rules.
type mixedTypes struct{ next http.Handler }

func (m mixedTypes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.URL.Path, "/relationships/") {
		m.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	m.next.ServeHTTP(rec, r)
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	data, _ := doc["data"].([]any)
	doc["data"] = append(data,
		// A Case owned by alice: the Contacts rule would let it through.
		map[string]any{"type": "Cases", "id": "cs-mixed", "attributes": map[string]any{
			"name": "Refund for damaged sofa", "assigned_user_id": "u-sales1", "account_id": "acc-1", "work_log": "internal"}},
		map[string]any{"type": "Employees", "id": "e-mixed", "attributes": map[string]any{
			"last_name": "Payroll", "assigned_user_id": "u-sales1", "salary_c": "91000"}},
		map[string]any{"id": "no-type", "attributes": map[string]any{"assigned_user_id": "u-sales1", "account_id": "acc-1"}},
	)
	w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
	_ = json.NewEncoder(w).Encode(doc)
}

// TestRelatedListMixingTypes: a related list whose CRM answer mixes
// modules keeps only the link module's records that its record rule
// allows; the others are dropped, not judged by the wrong rules.
func TestRelatedListMixingTypes(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	e.upstream.next = mixedTypes{e.upstream.next}
	e.ds.Put("Contacts", "c-9", map[string]any{"first_name": "Other", "last_name": "Store", "account_id": "acc-1",
		"assigned_user_id": "u-sales3", "phone_work": "+44 161 496 0999"})
	for _, tc := range []struct {
		persona string
		want    []string
	}{
		{"alice", []string{"c-1"}},      // c-9 refused by the Contacts rule
		{"sky", []string{"c-1", "c-9"}}, // support sees every contact, still no case through this link
		{"sam", []string{"c-1", "c-9"}}, // nor does an admin
	} {
		t.Run(tc.persona, func(t *testing.T) {
			r := e.do("GET", "/Api/V8/module/Accounts/acc-1/relationships/contacts", tc.persona, "")
			if r.Status != http.StatusOK {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if got := ids(suite.records(t, r.json(t))); !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
			for _, leak := range []string{"cs-mixed", "e-mixed", "no-type", "91000", "internal"} {
				if strings.Contains(string(r.Body), leak) {
					t.Errorf("a record of another module leaked (%q): %s", leak, r.Body)
				}
			}
		})
	}
}
