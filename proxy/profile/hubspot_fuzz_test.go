package profile

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy/cond"
)

// hubHidden are the properties the fuzzed subject may not see.
var hubHidden = []string{"hs_cost_of_goods_sold", "phone", "mobilephone", "date_of_birth"}

// hubRule is a sales user's team rule.
var hubRule = cond.Cond{Op: cond.In, Field: "hubspot_owner_id", Values: []any{"31000003", "31000004"}}

// hubGuard is the proxy's guardQuery for the fuzzed subject: a search
// naming a hidden property in a filter or sort, or any text query, is
// refused.
func hubGuard(fields []QueryField) bool {
	for _, f := range fields {
		switch f.Use {
		case UseText:
			return false
		case UseFilter, UseSort, UseSelect:
			for _, h := range hubHidden {
				if strings.EqualFold(f.Name, h) && f.Use != UseSelect {
					return false
				}
			}
		}
	}
	return true
}

// FuzzHubSpotSearch runs search bodies through what the proxy does with
// them (read the fields, refuse hidden ones, ask for the rule's property,
// push the rule) and checks the body HubSpot would get, read as HubSpot's
// lenient JSON reader would (encoding/json: case-insensitive names, last
// duplicate wins): no filter or sort names a hidden property, and every
// filter group carries the rule unchanged, so nothing the rule hides is
// selectable.
func FuzzHubSpotSearch(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"limit":2,"after":"4"}`,
		`{"filterGroups":[{"filters":[{"propertyName":"firstname","operator":"EQ","value":"Pat"}]}]}`,
		`{"filterGroups":[{"filters":[{"propertyName":"firstname","operator":"HAS_PROPERTY"}]},{"filters":[{"propertyName":"hubspot_owner_id","operator":"NEQ","value":"31000003"}]}]}`,
		`{"filterGroups":[{"filters":[{"propertyName":"hubspot_owner_id","operator":"IN","values":["31000003","31000005"]}]}]}`,
		`{"filterGroups":[{"filters":[{"propertyName":"hubspot_owner_id","operator":"NOT_HAS_PROPERTY"}]}]}`,
		`{"filterGroups":[{"filters":[{"propertyName":"amount","operator":"BETWEEN","value":1,"highValue":9}]}],"sorts":[{"propertyName":"createdate","direction":"DESCENDING"}]}`,
		`{"sorts":[{"propertyName":"phone"}]}`,
		`{"query":"alice"}`,
		`{"properties":["firstname","hs_cost_of_goods_sold"]}`,
		`{"filterGroups":[{"filters":[]},{"filters":[]},{"filters":[]},{"filters":[]},{"filters":[]}]}`,
		`{"filterGroups":[{"filters":[{"propertyName":"a","operator":"EQ","value":"1"},{"propertyName":"b","operator":"EQ","value":"1"},{"propertyName":"c","operator":"EQ","value":"1"},{"propertyName":"d","operator":"EQ","value":"1"},{"propertyName":"e","operator":"EQ","value":"1"},{"propertyName":"f","operator":"EQ","value":"1"}]}]}`,
		`{"filterGroups":[],"filterGroups":[{"filters":[]}]}`,
		`{"FilterGroups":[{"filters":[{"propertyName":"phone","operator":"EQ","value":"1"}]}]}`,
		`{"filterGroups":[{"filters":[{"propertyName":"PHONE","operator":"GT","value":"0"}]}]}`,
		`{"inputs":[{"id":"51001"}],"properties":["phone"]}`,
		`{"limit":100000}`,
	} {
		f.Add([]byte(s))
	}
	p, err := Builtin("hubspot")
	if err != nil {
		f.Fatal(err)
	}
	m, err := p.Classify(http.MethodPost, "/crm/v3/objects/contacts/search", nil)
	if err != nil {
		f.Fatal(err)
	}
	ff := p.Dialect.(FieldFetcher)
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := p.ClassifyBody(m, body); err != nil {
			return
		}
		fields, err := p.ListQueryFields("", body)
		if err != nil || !hubGuard(fields) {
			return // refused before anything reaches HubSpot
		}
		_, withFields, err := ff.WithFields(m, "", body, []string{"hubspot_owner_id"})
		if err != nil {
			return
		}
		_, pushed, ok, err := p.Dialect.Push(m, "", withFields, hubRule)
		if err != nil || !ok {
			// Refused, or the rule not pushed: every record is then
			// judged after (the proxy's filter-after path).
			return
		}
		var sent struct {
			FilterGroups []struct {
				Filters []struct {
					PropertyName string   `json:"propertyName"`
					Operator     string   `json:"operator"`
					Values       []string `json:"values"`
				} `json:"filters"`
			} `json:"filterGroups"`
			Sorts []struct {
				PropertyName string `json:"propertyName"`
			} `json:"sorts"`
			Query string `json:"query"`
		}
		if err := json.Unmarshal(pushed, &sent); err != nil {
			t.Fatalf("rewritten body does not parse: %v: %s", err, pushed)
		}
		if len(sent.FilterGroups) == 0 {
			t.Fatalf("rule missing (no filter group: every record matches): %s", pushed)
		}
		if strings.TrimSpace(sent.Query) != "" {
			t.Fatalf("text query passed: %s", pushed)
		}
		for i, g := range sent.FilterGroups {
			hasRule := false
			for _, fl := range g.Filters {
				if slices.ContainsFunc(hubHidden, func(h string) bool { return strings.EqualFold(h, fl.PropertyName) }) {
					t.Fatalf("group %d filters on hidden %q: %s", i, fl.PropertyName, pushed)
				}
				if fl.PropertyName == "hubspot_owner_id" && fl.Operator == "IN" && slices.Equal(fl.Values, []string{"31000003", "31000004"}) {
					hasRule = true
				}
			}
			if !hasRule {
				t.Fatalf("group %d lacks the rule: %s", i, pushed)
			}
		}
		for _, s := range sent.Sorts {
			if slices.ContainsFunc(hubHidden, func(h string) bool { return strings.EqualFold(h, s.PropertyName) }) {
				t.Fatalf("sort on hidden %q: %s", s.PropertyName, pushed)
			}
		}
	})
}
