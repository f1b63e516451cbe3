package profile

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy/cond"
)

const sfID = "001D000000IqhSLIAZ"

func sfProfile(t *testing.T) *Profile {
	t.Helper()
	p, err := Builtin("salesforce")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSalesforceClassify(t *testing.T) {
	p := sfProfile(t)
	b := "/services/data/v62.0"
	cases := []struct {
		method, path, query string
		module, id, action  string
		kind                Kind
	}{
		{"GET", b + "/query", "q=SELECT+Id+FROM+contact", "Contact", "", "list", KindList},
		{"GET", "/services/data/v58.0/query", "q=SELECT+Id+FROM+Employee__c", "Employee__c", "", "list", KindList},
		{"GET", b + "/sobjects/Account/" + sfID, "", "Account", sfID, "read", KindRecord},
		{"GET", b + "/sobjects/account/" + sfID, "fields=Name", "Account", sfID, "read", KindRecord},
		{"PATCH", b + "/sobjects/Account/" + sfID, "", "Account", sfID, "update", KindRecord},
		{"DELETE", b + "/sobjects/Account/" + sfID, "", "Account", sfID, "delete", KindRecord},
		{"POST", b + "/sobjects/Case", "", "Case", "", "create", KindRecord},
		{"GET", b + "/sobjects/Account/" + sfID + "/Contacts", "", "Account", sfID, "read", KindRelated},
	}
	for _, c := range cases {
		m, err := p.Classify(c.method, c.path, http.Header{})
		if err == nil {
			m, err = p.ClassifyQuery(m, c.query)
		}
		if err != nil {
			t.Errorf("%s %s?%s: %v", c.method, c.path, c.query, err)
			continue
		}
		if m.Module != c.module || m.ID != c.id || m.Action != c.action || m.Kind != c.kind || m.ModuleFromQuery {
			t.Errorf("%s %s?%s: got %+v", c.method, c.path, c.query, m)
		}
	}
	refused := []struct{ method, path, query string }{
		{"GET", b + "/query/01gD0000002HU6KIAW-2000", ""}, // queryMore without crmgate's signature
		{"GET", b + "/queryAll", "q=SELECT+Id+FROM+Account"},
		{"GET", b + "/search", "q=FIND+{x}"},
		{"GET", b + "/parameterizedSearch", "q=x"},
		{"POST", b + "/composite", ""},
		{"POST", b + "/composite/batch", ""},
		{"POST", b + "/composite/tree/Account", ""},
		{"PATCH", b + "/composite/sobjects", ""},
		{"GET", b + "/sobjects", ""},
		{"GET", b + "/sobjects/Account", ""},
		{"GET", b + "/sobjects/Account/describe", ""},
		{"GET", b + "/sobjects/Account/approvalLayouts", ""},
		{"GET", b + "/sobjects/Account/updated", "start=x"},
		{"GET", b + "/sobjects/Account/001D000000IqhSL", ""},    // 15-character id
		{"GET", b + "/sobjects/Account/001D000000IqhSLIAA", ""}, // bad checksum
		{"GET", b + "/sobjects/Account/001d000000iqhsliaz", ""}, // case changed
		{"PATCH", b + "/sobjects/Account/Ext__c/A-1", ""},       // upsert by external id
		{"GET", "/services/data/v62/query", "q=SELECT+Id+FROM+Account"},
		{"GET", "/services/data/62.0/query", "q=SELECT+Id+FROM+Account"},
		{"GET", "/services/data/v62.0.1/query", "q=SELECT+Id+FROM+Account"},
		{"GET", b + "/query/", "q=SELECT+Id+FROM+Account"},
		{"GET", b + "/tooling/query", "q=SELECT+Id+FROM+ApexClass"},
		{"GET", b + "/limits", ""},
		{"POST", b + "/query", "q=SELECT+Id+FROM+Account"},
		{"GET", b + "/query", ""},
		{"GET", b + "/query", "q=SELECT+Id+FROM+Account.Owner"},
		{"GET", b + "/query", "q=SELECT+Id+FROM+Account&q=SELECT+Id+FROM+Contact"},
	}
	for _, c := range refused {
		m, err := p.Classify(c.method, c.path, http.Header{})
		if err == nil {
			m, err = p.ClassifyQuery(m, c.query)
		}
		if err == nil {
			t.Errorf("%s %s?%s classified as %+v", c.method, c.path, c.query, m)
		}
	}
	// Method tunnels.
	if _, err := p.Classify("POST", b+"/sobjects/Account/"+sfID, http.Header{"X-Http-Method-Override": {"PATCH"}}); !errors.Is(err, ErrMethodOverride) {
		t.Errorf("X-HTTP-Method-Override: %v", err)
	}
	for _, q := range []string{"_HttpMethod=PATCH", "_httpmethod=DELETE", "%5FHttpMethod=PATCH"} {
		if err := p.CheckQuery(q); !errors.Is(err, ErrMethodOverride) {
			t.Errorf("%s: %v", q, err)
		}
	}
	// The target check reads a record at a version crmgate chooses.
	if path, err := p.ReadPath("Account", sfID); err != nil || path != "/services/data/"+SalesforceAPIVersion+"/sobjects/Account/"+sfID {
		t.Errorf("read path %q %v", path, err)
	}
}

func TestSalesforceDialect(t *testing.T) {
	p := sfProfile(t)
	d := p.Dialect.(soqlQuery)
	list := Match{Module: "Account", Action: "list", Kind: KindList}
	q := "q=" + url.QueryEscape("select Name, ownerid from account where Name like 'A%' or Phone = null order by Name")
	got, _, err := d.Canonical(list, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT Name, ownerid FROM Account WHERE Name LIKE 'A%' OR Phone = null ORDER BY Name ASC"
	if dec, _ := url.QueryUnescape(strings.TrimPrefix(got, "q=")); dec != want || strings.Contains(got, "+") {
		t.Fatalf("canonical %q", got)
	}
	got, _, err = d.WithFields(list, got, nil, []string{"OwnerId", "Id"})
	if err != nil {
		t.Fatal(err)
	}
	if dec, _ := url.QueryUnescape(strings.TrimPrefix(got, "q=")); !strings.HasPrefix(dec, "SELECT Name, OwnerId, Id FROM Account") {
		t.Fatalf("with fields %q", dec)
	}
	c := cond.Cond{Op: cond.Or, Args: []cond.Cond{
		{Op: cond.Eq, Field: "OwnerId", Values: []any{"005D000000IqhSLIAZ"[:15] + SalesforceIDSuffix("005D000000IqhSL")}},
		{Op: cond.In, Field: "AccountId", Values: []any{sfID, "0015000000L6lMZAAZ"}},
	}}
	pushed, _, ok, err := d.Push(list, got, nil, c)
	if err != nil || !ok {
		t.Fatalf("push %v %v", ok, err)
	}
	dec, _ := url.QueryUnescape(strings.TrimPrefix(pushed, "q="))
	if !strings.Contains(dec, "WHERE (OwnerId = '005D000000IqhSLIAZ' OR AccountId IN ('001D000000IqhSLIAZ', '0015000000L6lMZAAZ')) AND (Name LIKE 'A%' OR Phone = null) ORDER BY") {
		t.Fatalf("pushed %q", dec)
	}
	// Text other than ids compares case-insensitively in Salesforce: not pushed.
	if _, _, ok, _ := d.Push(list, got, nil, cond.Cond{Op: cond.Eq, Field: "Name", Values: []any{"Acme"}}); ok {
		t.Fatal("pushed a text comparison")
	}
	if _, _, ok, _ := d.Push(list, got, nil, cond.Cond{Op: cond.Eq, Field: "Amount", Values: []any{json.Number("5")}}); !ok {
		t.Fatal("number not pushed")
	}
	// QueryFields names every field of SELECT, WHERE and ORDER BY.
	refs, err := d.QueryFields(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range refs {
		names = append(names, string(r.Use)+":"+r.Name)
	}
	if strings.Join(names, " ") != "select:Name select:ownerid filter:Name filter:Phone sort:Name" {
		t.Fatalf("fields %v", names)
	}
	// A read's fields= list.
	read := Match{Module: "Account", ID: sfID, Action: "read", Kind: KindRecord}
	if got, _, err := d.Canonical(read, "fields=Name,%20Phone", nil); err != nil || got != "fields=Name%2CPhone" {
		t.Fatalf("read canonical %q %v", got, err)
	}
	if got, _, err := d.WithFields(read, "fields=Name", nil, []string{"OwnerId"}); err != nil || got != "fields=Name%2COwnerId" {
		t.Fatalf("read with fields %q %v", got, err)
	}
	for _, bad := range []struct {
		m Match
		q string
	}{
		{read, "fields=Account.Name"}, {read, "fields=Name&fields=Phone"}, {read, "q=SELECT+Id+FROM+Account"},
		{list, "fields=Name"}, {list, "q=SELECT+Id+FROM+Account&limit=5"}, {list, "q="}, {list, "q"},
		{Match{Module: "Contact", Action: "list", Kind: KindList}, "q=SELECT+Id+FROM+Account"},
		{Match{Module: "Account", ID: sfID, Action: "update", Kind: KindRecord}, "fields=Name"},
	} {
		if got, _, err := d.Canonical(bad.m, bad.q, nil); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%+v %s: %q %v", bad.m, bad.q, got, err)
		}
	}
}

func TestSalesforceWriteBodies(t *testing.T) {
	p := sfProfile(t)
	m, err := p.Classify("POST", "/services/data/v62.0/sobjects/Contact", http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ClassifyBody(m, []byte(`{"LastName":"x","AccountId":"`+sfID+`"}`)); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"LastName":"x","Account":{"Ext__c":"A-1"}}`,
		`{"attributes":{"type":"Contact"},"LastName":"x"}`,
		`{"LastName":["x"]}`,
		`{"Account.Name":"x"}`,
		`{"_method":"DELETE"}`,
		`["x"]`,
	} {
		if _, err := p.ClassifyBody(m, []byte(body)); err == nil {
			t.Errorf("%s accepted", body)
		}
	}
}

func TestSalesforceCursorAndBatchSize(t *testing.T) {
	p := sfProfile(t)
	d := p.Dialect.(soqlQuery)
	path := "/services/data/v62.0/query/01gD0000002HU6KIAW-2000"
	m, err := p.Classify("GET", path, http.Header{})
	if err != nil || !m.Cursor || !m.ModuleFromQuery || m.Kind != KindList {
		t.Fatalf("cursor route: %+v %v", m, err)
	}
	signed := "object=Account&exp=1796664624&sig=abc"
	cm, err := p.ClassifyQuery(m, signed)
	if err != nil || cm.Module != "Account" || !cm.Cursor {
		t.Fatalf("cursor module: %+v %v", cm, err)
	}
	// Forwarded without crmgate's parameters, nothing pushed or added.
	if q, extra, err := d.Canonical(cm, signed, http.Header{"Sforce-Query-Options": {"batchSize=500"}}); err != nil || q != "" || extra != nil {
		t.Fatalf("cursor canonical %q %v %v", q, extra, err)
	}
	if q, _, ok, err := d.Push(cm, "", nil, cond.Cond{Op: cond.Eq, Field: "OwnerId", Values: []any{sfID}}); err != nil || ok || q != "" {
		t.Fatalf("cursor push %q %v %v", q, ok, err)
	}
	if refs, err := d.QueryFields(signed, nil); err != nil || len(refs) != 0 {
		t.Fatalf("cursor fields %v %v", refs, err)
	}
	for _, bad := range []string{"", "object=Account", "object=Account&exp=1", "object=Account&exp=1&sig=x&sig=y",
		"object=Account&exp=1&sig=x&q=SELECT+Id+FROM+Account", "object=Account.Owner&exp=1&sig=x", "object=&exp=1&sig=x"} {
		if cm, err := p.ClassifyQuery(m, bad); err == nil {
			t.Errorf("cursor query %q classified as %+v", bad, cm)
		}
	}
	// A signed cursor of one object is not one of another.
	if _, _, err := d.Canonical(Match{Kind: KindList, Action: "list", Cursor: true, Module: "Contact"}, signed, nil); !errors.Is(err, ErrBadQuery) {
		t.Errorf("cursor of Account read as Contact: %v", err)
	}
	// A /query's batch size passes, within Salesforce's limits.
	list := Match{Module: "Account", Action: "list", Kind: KindList}
	q := "q=SELECT+Id+FROM+Account"
	if _, extra, err := d.Canonical(list, q, http.Header{"Sforce-Query-Options": {"batchSize=500"}}); err != nil || extra.Get("Sforce-Query-Options") != "batchSize=500" {
		t.Fatalf("batch size %v %v", extra, err)
	}
	for _, opt := range []string{"batchSize=100", "batchSize=2001", "batchSize=500, batchSize=600", "batchsize=x", "other=1"} {
		if _, _, err := d.Canonical(list, q, http.Header{"Sforce-Query-Options": {opt}}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("Sforce-Query-Options %q: %v", opt, err)
		}
	}
}
