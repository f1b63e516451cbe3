package profile

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy/cond"
)

func TestHubSpotClassify(t *testing.T) {
	p := mustBuiltin(t, "hubspot")
	for _, tc := range []struct {
		method, path, module, id, action string
		kind                             Kind
		err                              error
	}{
		{"GET", "/crm/v3/objects/contacts", "contacts", "", "list", KindList, nil},
		{"GET", "/crm/v3/objects/0-1", "contacts", "", "list", KindList, nil},
		{"GET", "/crm/v3/objects/Contact/51001", "contacts", "51001", "read", KindRecord, nil},
		{"GET", "/crm/v3/objects/0-2/52001", "companies", "52001", "read", KindRecord, nil},
		{"POST", "/crm/v3/objects/0-3/search", "deals", "", "list", KindList, nil},
		{"POST", "/crm/v3/objects/tickets/batch/read", "tickets", "", "read", KindList, nil},
		{"GET", "/crm/v4/objects/0-2/52001/associations/0-1", "companies", "52001", "read", KindRelated, nil},
		{"POST", "/crm/v3/objects/contacts/batch/update", "", "", "", "", ErrUnknownRoute},
		{"GET", "/crm/v3/objects/contacts/search", "", "", "", "", ErrUnknownRoute},
		{"PUT", "/crm/v4/objects/contacts/1/associations/companies/2", "", "", "", "", ErrUnknownRoute},
		{"GET", "/crm/v3/objects/2-123", "", "", "", "", ErrBadPath},
		{"GET", "/crm/v3/objects/0-999", "", "", "", "", ErrBadPath},
	} {
		m, err := p.Classify(tc.method, tc.path, nil)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s %s: err %v, want %v", tc.method, tc.path, err, tc.err)
			}
			continue
		}
		if err != nil || m.Module != tc.module || m.ID != tc.id || m.Action != tc.action || m.Kind != tc.kind {
			t.Errorf("%s %s: %+v %v", tc.method, tc.path, m, err)
		}
		if !strings.Contains(m.Path, "/"+tc.module) {
			t.Errorf("%s %s: forwarded as %s, not by the canonical name", tc.method, tc.path, m.Path)
		}
	}
}

func TestHubSpotPushDistributes(t *testing.T) {
	p := mustBuiltin(t, "hubspot")
	m, _ := p.Classify(http.MethodPost, "/crm/v3/objects/contacts/search", nil)
	own := cond.Cond{Op: cond.Eq, Field: "hubspot_owner_id", Values: []any{"7"}}
	acct := cond.Cond{Op: cond.Eq, Field: "associatedcompanyid", Values: []any{"9"}}
	either := cond.Cond{Op: cond.Or, Args: []cond.Cond{own, acct}}
	a := `{"propertyName":"firstname","operator":"EQ","value":"a"}`
	b := `{"propertyName":"lastname","operator":"EQ","value":"b"}`
	two := `{"filterGroups":[{"filters":[` + a + `]},{"filters":[` + b + `]}]}`
	for _, tc := range []struct {
		name, body string
		c          cond.Cond
		want       string // "" = not pushed
	}{
		{"no client filter", `{}`, own, `{"filterGroups":[{"filters":[{"propertyName":"hubspot_owner_id","operator":"EQ","value":"7"}]}]}`},
		{"into each of two groups", two, own, `{"filterGroups":[{"filters":[` + a + `,{"propertyName":"hubspot_owner_id","operator":"EQ","value":"7"}]},{"filters":[` + b + `,{"propertyName":"hubspot_owner_id","operator":"EQ","value":"7"}]}]}`},
		{"two by two groups", two, either, `{"filterGroups":[{"filters":[` + a + `,{"propertyName":"hubspot_owner_id","operator":"EQ","value":"7"}]},{"filters":[` + a + `,{"propertyName":"associatedcompanyid","operator":"EQ","value":"9"}]},{"filters":[` + b + `,{"propertyName":"hubspot_owner_id","operator":"EQ","value":"7"}]},{"filters":[` + b + `,{"propertyName":"associatedcompanyid","operator":"EQ","value":"9"}]}]}`},
		{"id is hs_object_id", `{}`, cond.Cond{Op: cond.In, Field: "id", Values: []any{"1", "2"}}, `{"filterGroups":[{"filters":[{"propertyName":"hs_object_id","operator":"IN","values":["1","2"]}]}]}`},
		{"true rule keeps the client's groups", two, cond.Cond{Op: cond.True}, two},
		{"past five groups", `{"filterGroups":[{"filters":[]},{"filters":[]},{"filters":[]}]}`, either, ""},
		{"past six filters", `{"filterGroups":[{"filters":[` + strings.Repeat(a+",", 5) + a + `]}]}`, own, ""},
		{"false has no spelling", `{}`, cond.Cond{Op: cond.False}, ""},
		{"case-folded text is not exact", `{}`, cond.Cond{Op: cond.Eq, Field: "email", Values: []any{"A@x"}}, ""},
		{"a number is not an id", `{}`, cond.Cond{Op: cond.Eq, Field: "hubspot_owner_id", Values: []any{7.0}}, ""},
	} {
		_, out, ok, err := p.Dialect.Push(m, "", []byte(tc.body), tc.c)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.want == "" {
			if ok {
				t.Errorf("%s: pushed %s", tc.name, out)
			}
			continue
		}
		if !ok || string(out) != tc.want {
			t.Errorf("%s:\n got %s (ok %v)\nwant %s", tc.name, out, ok, tc.want)
		}
	}
	// A GET list has no filter to push into.
	lm, _ := p.Classify(http.MethodGet, "/crm/v3/objects/contacts", nil)
	if _, _, ok, _ := p.Dialect.Push(lm, "limit=5", nil, own); ok {
		t.Error("pushed into a GET list")
	}
}

func TestHubSpotWithFields(t *testing.T) {
	p := mustBuiltin(t, "hubspot")
	ff := p.Dialect.(FieldFetcher)
	m, _ := p.Classify(http.MethodGet, "/crm/v3/objects/contacts", nil)
	q, _, err := ff.WithFields(m, "limit=5", nil, []string{"hubspot_owner_id", "id"})
	if err != nil || q != "limit=5&properties=createdate%2Chs_object_id%2Cemail%2Cfirstname%2Clastname%2Clastmodifieddate%2Chubspot_owner_id" {
		t.Errorf("no properties named: %q %v", q, err)
	}
	q, _, _ = ff.WithFields(m, "properties=phone", nil, []string{"hubspot_owner_id"})
	if q != "properties=phone&properties=hubspot_owner_id" {
		t.Errorf("properties named: %q", q)
	}
	sm, _ := p.Classify(http.MethodPost, "/crm/v3/objects/contacts/search", nil)
	_, b, _ := ff.WithFields(sm, "", []byte(`{"properties":["phone"]}`), []string{"hubspot_owner_id"})
	if string(b) != `{"properties":["phone","hubspot_owner_id"]}` {
		t.Errorf("search: %s", b)
	}
}

func TestHubSpotQueryFieldsRefuses(t *testing.T) {
	d := mustBuiltin(t, "hubspot").Dialect
	for _, q := range []string{"propertiesWithHistory=phone", "PROPERTIESWITHHISTORY=x", "Associations=companies", "idProperty=email",
		"Properties=phone", "properties=a.b", "properties=MUL(x)"} {
		if _, err := d.QueryFields(q, nil); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%s: %v", q, err)
		}
	}
	for _, body := range []string{`{"filterGroups":[],"filterGroups":[]}`, `{"Sorts":[]}`, `{"limit":201}`,
		`{"filterGroups":[{"filters":[{"propertyName":"x","operator":"IN","values":[]}]}]}`,
		`{"filterGroups":[{"filters":[{"propertyName":"x","operator":"HAS_PROPERTY","value":"1"}]}]}`,
		`{"inputs":[{"id":"1"}],"idProperty":"email"}`, `{"inputs":[]}`, "{\"query\":\"\xff\"}"} {
		if _, err := d.QueryFields("", []byte(body)); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%s: %v", body, err)
		}
	}
	fs, err := d.QueryFields("properties=a,b", []byte(`{"filterGroups":[{"filters":[{"propertyName":"x","operator":"EQ","value":1}]}],"sorts":[{"propertyName":"y"}],"query":"q"}`))
	if err != nil || len(fs) != 5 || fs[2].Name != "x" || fs[2].Use != UseFilter || fs[3].Use != UseSort || fs[4].Use != UseText {
		t.Errorf("fields %+v %v", fs, err)
	}
}

func TestHubSpotAssociations(t *testing.T) {
	d := mustBuiltin(t, "hubspot").Dialect.(Associator)
	got, err := d.Associations("limit=1&associations=0-2,contacts&associations=COMPANY")
	if err != nil || strings.Join(got, ",") != "companies,contacts" {
		t.Errorf("associations = %v, %v", got, err)
	}
	if _, err := d.Associations("associations=2-999"); !errors.Is(err, ErrBadQuery) {
		t.Errorf("custom object: %v", err)
	}
}
