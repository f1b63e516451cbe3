package app_test

import (
	"net/http"
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
