package demo

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/emulator"
)

// CRM is one CRM the demo can put crmgate in front of: its emulator, the
// profile crmgate uses for it, crmgate's upstream credential and the
// commands the intro suggests. Add a row to CRMs to offer another.
type CRM struct {
	// Profile is the crm.profile crmgate runs with.
	Profile string
	// Describe names the emulated API in the intro.
	Describe string
	// Emulator serves ds, accepting secret as crmgate's credential.
	Emulator func(ds *emulator.Dataset, secret string) http.Handler
	// Auth is crmgate's upstream credential for the emulator at crmURL.
	Auth func(crmURL, secret string) config.UpstreamAuth
	// Browse is a list path to open in a browser.
	Browse   string
	Commands []Command
}

// Command is a suggested request: persona, what it shows, method, path.
type Command struct{ Persona, Shows, Method, Path string }

// DefaultCRM is the demo's CRM without --crm.
const DefaultCRM = "suitecrm8"

// CRMs are the demo's CRMs by --crm name.
var CRMs = map[string]CRM{
	"suitecrm8": {
		Profile: "suitecrm8", Describe: "a demo SuiteCRM V8 API",
		Emulator: func(ds *emulator.Dataset, secret string) http.Handler {
			return emulator.NewSuiteCRM(ds, emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: secret})
		},
		Auth: func(crmURL, secret string) config.UpstreamAuth {
			return config.UpstreamAuth{Type: "oauth2_client_credentials", TokenURL: crmURL + "/Api/access_token",
				ClientID: "crmgate", ClientSecret: secret}
		},
		Browse:   "/Api/V8/module/Accounts",
		Commands: Commands,
	},
	"dynamics": {
		Profile: "dynamics", Describe: "a demo Dataverse (Dynamics 365) Web API",
		Emulator: func(ds *emulator.Dataset, secret string) http.Handler {
			return emulator.NewDynamics(ds, emulator.DynamicsOptions{Tenant: DynamicsTenant, ClientID: "crmgate", ClientSecret: secret})
		},
		Auth:     DynamicsAuth,
		Browse:   "/api/data/v9.2/accounts",
		Commands: dynamicsCommands(),
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
		{"pat", "a customer sees only her own account", "GET", b + "/accounts?$select=name,telephone1"},
		{"alice", "sales lists her team's accounts; the rule runs in $filter (true @odata.count)", "GET", b + "/accounts?$select=name,_ownerid_value&$count=true"},
		{"alice", "sales reads products (standardcost hidden)", "GET", b + "/products"},
		{"alice", "sales may not filter on a buy price (403)", "GET", b + "/products?$filter=standardcost%20gt%20100"},
		{"alice", "sales do not see the Helpdesk, not even through an account (403)", "GET", b + "/accounts(" + acc1 + ")/incident_customer_accounts"},
		{"alice", "an account's contacts, each judged as a contact (phones masked)", "GET", b + "/accounts(" + acc1 + ")/contact_customer_accounts"},
		{"alice", "$expand is refused (400)", "GET", b + "/accounts?$expand=primarycontactid"},
		{"sky", "support works every case", "GET", b + "/incidents"},
		{"ivan", "inventory sees buy prices", "GET", b + "/products?$select=name,standardcost"},
		{"sam-nomfa", "an admin without MFA is stepped up (401, RFC 9470)", "GET", b + "/new_employees"},
	}
}

func lookupCRM(name string) (CRM, error) {
	if name == "" {
		name = DefaultCRM
	}
	c, ok := CRMs[name]
	if !ok {
		var names []string
		for n := range CRMs {
			names = append(names, n)
		}
		sort.Strings(names)
		return CRM{}, fmt.Errorf("demo: unknown --crm %q (one of %s)", name, strings.Join(names, ", "))
	}
	return c, nil
}
