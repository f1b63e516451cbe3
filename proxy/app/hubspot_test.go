package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/emulator"
)

// hubspotToken is the private-app token the HubSpot emulator requires.
const hubspotToken = "pat-na1-11111111-2222-3333-4444-555555555555"

// hubObjects are the reference policy's classes as HubSpot object types,
// with a record every persona allowed to read it may read and the
// property a write sets. HubSpot has no personnel or user objects.
var hubObjects = []struct {
	class, object, id, nameProp string
}{
	{"account", "companies", "52001", "name"},
	{"contact", "contacts", "51001", "firstname"},
	{"lead", "leads", "36001", "hs_lead_name"},
	{"opportunity", "deals", "53001", "dealname"},
	{"case", "tickets", "55001", "subject"},
	{"call", "calls", "48001", "hs_call_title"},
	{"product", "products", "57001", "name"},
}

func hubRequest(object, id, nameProp, action string) (method, path, body string) {
	base := "/crm/v3/objects/" + object
	props := fmt.Sprintf(`"%s":"written by test"`, nameProp)
	if object == "tickets" && action == "C" {
		props += `,"associatedcompanyid":"52001"`
	}
	switch action {
	case "L":
		return "GET", base, ""
	case "R":
		return "GET", base + "/" + id, ""
	case "C":
		return "POST", base, `{"properties":{` + props + `}}`
	case "U":
		return "PATCH", base + "/" + id, `{"properties":{` + props + `}}`
	case "D":
		return "DELETE", base + "/" + id, ""
	}
	panic("unknown action " + action)
}

// TestHubSpotPersonaModuleAccess is TestPersonaModuleAccess against the
// HubSpot emulator: every persona × object type × action, allowed ones
// reaching HubSpot once, denied ones a 403 that never reaches it.
func TestHubSpotPersonaModuleAccess(t *testing.T) {
	for _, persona := range []string{"pat", "alice", "morgan", "ivan", "sky", "sam", "sam-nomfa"} {
		e := newEnv(t, "hubspot")
		for _, obj := range hubObjects {
			for _, action := range []string{"L", "R", "C", "U", "D"} {
				method, path, body := hubRequest(obj.object, obj.id, obj.nameProp, action)
				t.Run(fmt.Sprintf("%s/%s/%s", persona, obj.object, action), func(t *testing.T) {
					e.upstream.reset()
					r := e.do(method, path, persona, body)
					assertGrantAnswer(t, e, r, persona, obj.class, action, method, true)
				})
			}
		}
	}
}

// hubResults decodes a HubSpot list or search answer.
type hubResults struct {
	Total   *int `json:"total"`
	Results []struct {
		ID         string         `json:"id"`
		Properties map[string]any `json:"properties"`
	} `json:"results"`
	Paging *struct {
		Next struct {
			After string `json:"after"`
		} `json:"next"`
	} `json:"paging"`
}

func decodeHub(t *testing.T, r response) hubResults {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var h hubResults
	if err := json.Unmarshal(r.Body, &h); err != nil {
		t.Fatalf("decode: %v: %s", err, r.Body)
	}
	return h
}

func (h hubResults) ids() []string {
	var out []string
	for _, r := range h.Results {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out
}

// hubOwnerIDs are the HubSpot owner ids of the store-12 team.
func hubOwnerIDs(t *testing.T, users ...string) []string {
	var out []string
	for _, u := range users {
		id, ok := emulator.HubSpotOwnerID(u)
		if !ok {
			t.Fatalf("no owner id for %s", u)
		}
		out = append(out, id)
	}
	return out
}

// TestHubSpotListFiltering: a sales user's list, search and batch read hold
// only her team's records, whatever she asks; the search comes back with
// the rule pushed into every filter group and HubSpot's true total.
func TestHubSpotListFiltering(t *testing.T) {
	e := newEnv(t, "hubspot")
	team := hubOwnerIDs(t, "u-sales1", "u-sales2", "u-mgr")
	// Team store-12 owns contacts c-1, c-3, c-4, c-5, c-6.
	want := []string{"51001", "51003", "51004", "51005", "51006"}

	list := decodeHub(t, e.do("GET", "/crm/v3/objects/contacts?limit=100", "alice", ""))
	if got := list.ids(); !slices.Equal(got, want) {
		t.Errorf("list ids = %v, want %v", got, want)
	}
	for _, r := range list.Results {
		if !slices.Contains(team, fmt.Sprint(r.Properties["hubspot_owner_id"])) {
			t.Errorf("record %s owned by %v", r.ID, r.Properties["hubspot_owner_id"])
		}
		// The client named no properties: HubSpot's defaults come back.
		if _, ok := r.Properties["firstname"]; !ok {
			t.Errorf("record %s lost the default properties: %v", r.ID, r.Properties)
		}
	}

	e.upstream.reset()
	s := decodeHub(t, e.do("POST", "/crm/v3/objects/contacts/search", "alice", `{"limit":2}`))
	if s.Total == nil || *s.Total != len(want) || len(s.Results) != 2 {
		t.Fatalf("search total %v, %d results; want total %d and a full page of 2", s.Total, len(s.Results), len(want))
	}
	sent := e.upstream.crmRequests()
	if len(sent) != 1 || !strings.Contains(string(sent[0].Body), `"propertyName":"hubspot_owner_id","operator":"IN"`) {
		t.Fatalf("search sent upstream without the rule: %+v", sent)
	}

	// A second filter group without the rule would widen an appended rule;
	// distributed, each group carries it.
	e.upstream.reset()
	body := `{"filterGroups":[{"filters":[{"propertyName":"firstname","operator":"HAS_PROPERTY"}]},` +
		`{"filters":[{"propertyName":"hubspot_owner_id","operator":"NEQ","value":"0"}]}],"limit":100}`
	s = decodeHub(t, e.do("POST", "/crm/v3/objects/contacts/search", "alice", body))
	if got := s.ids(); !slices.Equal(got, want) {
		t.Errorf("two-group search ids = %v, want %v", got, want)
	}
	var up struct {
		FilterGroups []struct {
			Filters []struct {
				PropertyName string `json:"propertyName"`
			} `json:"filters"`
		} `json:"filterGroups"`
	}
	if err := json.Unmarshal(e.upstream.crmRequests()[0].Body, &up); err != nil {
		t.Fatal(err)
	}
	if len(up.FilterGroups) != 2 {
		t.Fatalf("upstream groups = %d", len(up.FilterGroups))
	}
	for i, g := range up.FilterGroups {
		if !slices.ContainsFunc(g.Filters, func(f struct {
			PropertyName string `json:"propertyName"`
		}) bool {
			return f.PropertyName == "hubspot_owner_id"
		}) {
			t.Errorf("group %d lacks the rule: %s", i, e.upstream.crmRequests()[0].Body)
		}
	}

	// Carol's contacts by id in a batch read are dropped.
	b := decodeHub(t, e.do("POST", "/crm/v3/objects/contacts/batch/read", "alice", `{"inputs":[{"id":"51001"},{"id":"51002"},{"id":"51007"}],"properties":["firstname"]}`))
	if got := b.ids(); !slices.Equal(got, []string{"51001"}) {
		t.Errorf("batch read ids = %v, want [51001]", got)
	}

	// Another team's record by id is a 404, through the object type id too.
	for _, p := range []string{"/crm/v3/objects/contacts/51002", "/crm/v3/objects/0-1/51002", "/crm/v3/objects/CONTACT/51002"} {
		if r := e.do("GET", p, "alice", ""); r.Status != http.StatusNotFound {
			t.Errorf("%s: %d %s", p, r.Status, r.Body)
		}
	}
}

// TestHubSpotPagingDifferential: paging through a search with the pushed
// rule reaches exactly the records the rule allows, for every persona and
// page size, and the same set as a GET list filtered after.
func TestHubSpotPagingDifferential(t *testing.T) {
	e := newEnvWithPolicy(t, "hubspot", unbudgetedPolicy(t))
	for i := 0; i < 30; i++ {
		e.ds.Put("Contacts", fmt.Sprintf("c-%d", 100+i), map[string]any{
			"first_name": "Extra", "last_name": fmt.Sprint(i), "assigned_user_id": []string{"u-sales1", "u-sales3", "u-mgr", "u-inv"}[i%4],
			"account_id": "acc-1", "date_entered": "2026-03-02 10:00:00", "date_modified": "2026-03-02 10:00:00",
		})
	}
	for _, persona := range []string{"pat", "alice", "morgan", "sky", "sam"} {
		for _, size := range []int{1, 3, 7, 100} {
			page := func(method, path string, search bool) []string {
				var all []string
				after := ""
				for n := 0; n < 200; n++ {
					var r response
					if search {
						body := fmt.Sprintf(`{"limit":%d`, size)
						if after != "" {
							body += fmt.Sprintf(`,"after":%q`, after)
						}
						r = e.do(method, path, persona, body+"}")
					} else {
						q := fmt.Sprintf("?limit=%d", size)
						if after != "" {
							q += "&after=" + after
						}
						r = e.do(method, path+q, persona, "")
					}
					h := decodeHub(t, r)
					all = append(all, h.ids()...)
					if h.Paging == nil {
						break
					}
					after = h.Paging.Next.After
				}
				slices.Sort(all)
				return all
			}
			got := page("POST", "/crm/v3/objects/contacts/search", true)
			ref := page("GET", "/crm/v3/objects/contacts", false)
			if !slices.Equal(got, ref) {
				t.Errorf("%s size %d: search reached %v, list %v", persona, size, got, ref)
			}
			if persona == "alice" && len(got) < 10 {
				t.Errorf("alice reached only %v", got)
			}
		}
	}
}

// TestHubSpotFieldsAndWrites: buy prices hidden and unwritable, phones and
// e-mail masked for sales, queries on them refused, another owner's record
// not writable.
func TestHubSpotFieldsAndWrites(t *testing.T) {
	e := newEnv(t, "hubspot")
	r := e.do("GET", "/crm/v3/objects/products/57001?properties=name,hs_cost_of_goods_sold,price", "alice", "")
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), "hs_cost_of_goods_sold") || !strings.Contains(string(r.Body), "Oak dining table") {
		t.Errorf("product for sales: %d %s", r.Status, r.Body)
	}
	r = e.do("GET", "/crm/v3/objects/products/57001?properties=name,hs_cost_of_goods_sold", "ivan", "")
	if !strings.Contains(string(r.Body), `"hs_cost_of_goods_sold":"310"`) {
		t.Errorf("product for inventory: %s", r.Body)
	}
	r = e.do("GET", "/crm/v3/objects/contacts/51001?properties=phone,email,mobilephone", "alice", "")
	if strings.Contains(string(r.Body), "7946 0001") || strings.Contains(string(r.Body), "pat.customer@") || !strings.Contains(string(r.Body), "0001") {
		t.Errorf("contact for sales not masked: %s", r.Body)
	}
	for _, body := range []string{
		`{"filterGroups":[{"filters":[{"propertyName":"hs_cost_of_goods_sold","operator":"GT","value":"100"}]}]}`,
		`{"sorts":[{"propertyName":"hs_cost_of_goods_sold","direction":"DESCENDING"}]}`,
		`{"query":"oak"}`,
	} {
		e.upstream.reset()
		assertProblem(t, e.do("POST", "/crm/v3/objects/products/search", "alice", body), http.StatusForbidden, "hidden-field-query")
		assertNothingUpstream(t, e)
	}
	if r := e.do("PATCH", "/crm/v3/objects/products/57001", "ivan", `{"properties":{"hs_cost_of_goods_sold":"300"}}`); r.Status != http.StatusOK {
		t.Errorf("inventory writes the buy price: %d %s", r.Status, r.Body)
	}
	e.upstream.reset()
	assertProblem(t, e.do("PATCH", "/crm/v3/objects/contacts/51001", "alice", `{"properties":{"hs_cost_of_goods_sold":"1"}}`), http.StatusForbidden, "readonly-fields")
	// Carol's contact: invisible to Alice, so not writable either.
	assertProblem(t, e.do("PATCH", "/crm/v3/objects/contacts/51002", "alice", `{"properties":{"firstname":"x"}}`), http.StatusNotFound, "not-found")
	assertProblem(t, e.do("DELETE", "/crm/v3/objects/0-1/51002", "sam-nomfa", ""), http.StatusUnauthorized, "step-up-required")
	// A customer's ticket for another company.
	assertProblem(t, e.do("POST", "/crm/v3/objects/tickets", "pat", `{"properties":{"subject":"x","associatedcompanyid":"52002"}}`), http.StatusForbidden, "forbidden")
	if got, _ := e.ds.Get("Contacts", "c-2"); got["first_name"] != "Riley" {
		t.Errorf("contact c-2 changed: %v", got)
	}
}
