package demo

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/profile"
)

// Command is one suggested demo request; Body, when set, is sent as JSON.
type Command struct{ Persona, Shows, Method, Path, Body string }

// CRM is one CRM the demo can start in front of (crmgate demo --crm NAME):
// its emulator, the profile and upstream credential crmgate uses for it,
// and the requests the demo suggests.
type CRM struct {
	Name  string // the --crm value
	Title string // what the intro calls the demo CRM
	// Profile is crm.profile.
	Profile string
	// Emulator serves the department store with secret as crmgate's
	// upstream credential; Auth is that credential in crmgate's config.
	Emulator func(ds *emulator.Dataset, secret string) http.Handler
	Auth     func(crmURL, secret string) config.UpstreamAuth
	// Browse is the path the intro suggests opening in a browser.
	Browse   string
	Commands []Command
}

// CRMs are the demo CRMs, the first the default.
var CRMs = []CRM{
	{
		Name: "suitecrm8", Title: "a demo SuiteCRM V8 API", Profile: config.ProfileSuiteCRM8,
		Emulator: func(ds *emulator.Dataset, secret string) http.Handler {
			return emulator.NewSuiteCRM(ds, emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: secret})
		},
		Auth: func(crmURL, secret string) config.UpstreamAuth {
			return config.UpstreamAuth{Type: config.AuthClientCredentials, TokenURL: crmURL + "/Api/access_token",
				ClientID: "crmgate", ClientSecret: secret}
		},
		Browse:   "/Api/V8/module/Accounts",
		Commands: Commands,
	},
	{
		Name: "dynamics", Title: "a demo Dataverse (Dynamics 365) Web API", Profile: config.ProfileDynamics,
		Emulator: func(ds *emulator.Dataset, secret string) http.Handler {
			return emulator.NewDynamics(ds, emulator.DynamicsOptions{Tenant: DynamicsTenant, ClientID: "crmgate", ClientSecret: secret})
		},
		Auth:     DynamicsAuth,
		Browse:   "/api/data/v9.2/accounts",
		Commands: dynamicsCommands(),
	},
	{
		Name: "salesforce", Title: "a demo Salesforce REST API", Profile: config.ProfileSalesforce,
		Emulator: func(ds *emulator.Dataset, secret string) http.Handler {
			return emulator.NewSalesforce(ds, emulator.SalesforceOptions{ClientID: "crmgate", ClientSecret: secret})
		},
		Auth:     SalesforceAuth,
		Browse:   salesforceBase + "/query?q=" + soql("SELECT Id, Name FROM Account"),
		Commands: salesforceCommands(),
	},
	{
		Name: "hubspot", Title: "a demo HubSpot CRM v3 API", Profile: config.ProfileHubSpot,
		Emulator: func(ds *emulator.Dataset, secret string) http.Handler {
			return emulator.NewHubSpot(ds, emulator.HubSpotOptions{Token: "pat-demo-" + secret})
		},
		Auth: func(_, secret string) config.UpstreamAuth {
			return config.UpstreamAuth{Type: config.AuthHeader, Header: "Authorization", Value: "Bearer pat-demo-" + secret}
		},
		Browse:   "/crm/v3/objects/companies",
		Commands: HubSpotCommands,
	},
}

// DynamicsTenant is the demo Dataverse's Entra ID tenant.
const DynamicsTenant = "contoso-tenant"

// DynamicsAuth is crmgate's Entra ID client-credentials credential for a
// Dataverse at crmURL: the v2.0 token endpoint of the tenant and the
// environment's .default scope, as an app registration uses them.
func DynamicsAuth(crmURL, secret string) config.UpstreamAuth {
	return config.UpstreamAuth{Type: "oauth2_client_credentials",
		TokenURL: crmURL + "/" + DynamicsTenant + "/oauth2/v2.0/token",
		ClientID: "crmgate", ClientSecret: secret, Scopes: []string{crmURL + "/.default"}}
}

func dynamicsCommands() []Command {
	acc1 := emulator.DynamicsID("acc-1")
	const b = "/api/data/v9.2"
	return []Command{
		{"pat", "a customer sees only her own account", "GET", b + "/accounts?$select=name,telephone1", ""},
		{"alice", "sales lists her team's accounts; the rule runs in $filter (true @odata.count)", "GET", b + "/accounts?$select=name,_ownerid_value&$count=true", ""},
		{"alice", "sales reads products (standardcost hidden)", "GET", b + "/products", ""},
		{"alice", "sales may not filter on a buy price (403)", "GET", b + "/products?$filter=standardcost%20gt%20100", ""},
		{"alice", "sales do not see the Helpdesk, not even through an account (403)", "GET", b + "/accounts(" + acc1 + ")/incident_customer_accounts", ""},
		{"alice", "an account's contacts, each judged as a contact (phones masked)", "GET", b + "/accounts(" + acc1 + ")/contact_customer_accounts", ""},
		{"alice", "$expand is refused (400)", "GET", b + "/accounts?$expand=primarycontactid", ""},
		{"sky", "support works every case", "GET", b + "/incidents", ""},
		{"ivan", "inventory sees buy prices", "GET", b + "/products?$select=name,standardcost", ""},
		{"sam-nomfa", "an admin without MFA is stepped up (401, RFC 9470)", "GET", b + "/new_employees", ""},
	}
}

// SalesforceAuth is crmgate's credential for a Salesforce org at crmURL:
// the client credentials flow of a connected app at the org's own token
// endpoint.
func SalesforceAuth(crmURL, secret string) config.UpstreamAuth {
	return config.UpstreamAuth{Type: config.AuthClientCredentials, TokenURL: crmURL + "/services/oauth2/token",
		ClientID: "crmgate", ClientSecret: secret}
}

const salesforceBase = "/services/data/" + profile.SalesforceAPIVersion

// soql encodes a query for ?q=, spaces as %20 so a shell line stays one
// word.
func soql(q string) string { return strings.ReplaceAll(url.QueryEscape(q), "+", "%20") }

func salesforceCommands() []Command {
	b := salesforceBase
	acc1, p1 := emulator.SalesforceID("Account", "acc-1"), emulator.SalesforceID("Product2", "p-1")
	return []Command{
		{"pat", "a customer sees only her own account", "GET", b + "/query?q=" + soql("SELECT Id, Name, Phone FROM Account"), ""},
		{"alice", "sales lists her team's accounts; the rule is the first WHERE term (true totalSize)", "GET", b + "/query?q=" + soql("SELECT Name, OwnerId FROM Account ORDER BY Name"), ""},
		{"alice", "sales reads a product (Cost__c hidden)", "GET", b + "/sobjects/Product2/" + p1, ""},
		{"alice", "selecting the hidden buy price is refused (403)", "GET", b + "/query?q=" + soql("SELECT Name, Cost__c FROM Product2"), ""},
		{"alice", "an OR cannot reach past the rule: (rule) AND (yours)", "GET", b + "/query?q=" + soql("SELECT Name FROM Account WHERE Name != 'x' OR OwnerId != null"), ""},
		{"alice", "FIELDS(ALL) and relationship paths are refused (400)", "GET", b + "/query?q=" + soql("SELECT FIELDS(ALL) FROM Contact LIMIT 10"), ""},
		{"alice", "an account's contacts, each judged as a contact (phones masked)", "GET", b + "/sobjects/Account/" + acc1 + "/Contacts", ""},
		{"sky", "support works every case", "GET", b + "/query?q=" + soql("SELECT Subject, Status FROM Case"), ""},
		{"ivan", "inventory sees buy prices", "GET", b + "/query?q=" + soql("SELECT Name, Cost__c FROM Product2"), ""},
		{"sam-nomfa", "an admin without MFA is stepped up (401, RFC 9470)", "GET", b + "/query?q=" + soql("SELECT Name FROM Employee__c"), ""},
	}
}

// LookupCRM returns the demo CRM called name.
func LookupCRM(name string) (CRM, error) {
	if name == "" {
		return CRMs[0], nil
	}
	i := slices.IndexFunc(CRMs, func(c CRM) bool { return c.Name == name })
	if i < 0 {
		var names []string
		for _, c := range CRMs {
			names = append(names, c.Name)
		}
		return CRM{}, fmt.Errorf("demo: unknown crm %q (one of %s)", name, strings.Join(names, ", "))
	}
	return CRMs[i], nil
}

// HubSpotCommands are the demo's requests in front of HubSpot.
var HubSpotCommands = []Command{
	{"pat", "a customer sees only her own company", "GET", "/crm/v3/objects/companies", ""},
	{"alice", "sales lists her team's contacts (phones and e-mail masked)", "GET", "/crm/v3/objects/contacts?properties=firstname,phone,email", ""},
	{"alice", "a search: the record rule is added to every filter group (full pages, HubSpot's total)", "POST", "/crm/v3/objects/contacts/search",
		`{"filterGroups":[{"filters":[{"propertyName":"firstname","operator":"HAS_PROPERTY"}]}],"limit":3}`},
	{"alice", "the same object type by its id, 0-7: a product, buy price hidden", "GET", "/crm/v3/objects/0-7/57001?properties=name,price,hs_cost_of_goods_sold", ""},
	{"alice", "searching on the hidden buy price is refused (403)", "POST", "/crm/v3/objects/products/search",
		`{"sorts":[{"propertyName":"hs_cost_of_goods_sold","direction":"DESCENDING"}]}`},
	{"alice", "sales do not see the Helpdesk (403)", "GET", "/crm/v3/objects/tickets", ""},
	{"alice", "associations carry bare ids the rule cannot judge (403)", "GET", "/crm/v4/objects/companies/52001/associations/contacts", ""},
	{"sky", "support works every ticket", "GET", "/crm/v3/objects/tickets", ""},
	{"ivan", "inventory sees buy prices", "GET", "/crm/v3/objects/products/57001?properties=name,hs_cost_of_goods_sold", ""},
	{"sam-nomfa", "an admin without MFA is stepped up (401, RFC 9470)", "GET", "/crm/v3/objects/deals", ""},
}
