package demo_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDemoSalesforce is `crmgate demo --crm salesforce`: the Salesforce
// emulator behind crmgate, each printed command answered as its
// description promises.
func TestDemoSalesforce(t *testing.T) {
	env, printed := startDemo(t, "salesforce")
	if !strings.Contains(printed, "Salesforce") {
		t.Errorf("intro does not name the CRM: %s", printed)
	}
	for _, c := range env.CRM.Commands {
		t.Run(c.Persona+" "+c.Shows, func(t *testing.T) {
			body := sendDemoCommand(t, env, printed, c)
			var list struct {
				TotalSize *int             `json:"totalSize"`
				Records   []map[string]any `json:"records"`
			}
			_ = json.Unmarshal(body, &list)
			switch {
			case strings.Contains(c.Shows, "Cost__c hidden") && strings.Contains(string(body), "Cost__c"):
				t.Errorf("buy price shown: %s", body)
			case strings.Contains(c.Shows, "sees buy prices") && !strings.Contains(string(body), `"Cost__c":`):
				t.Errorf("buy price missing: %s", body)
			case strings.Contains(c.Shows, "masked") && strings.Contains(string(body), "7946 0001"):
				t.Errorf("phone not masked: %s", body)
			case strings.Contains(c.Shows, "true totalSize") && (list.TotalSize == nil || *list.TotalSize != len(list.Records) || len(list.Records) != 4):
				t.Errorf("team accounts: want store-12's 4 with their totalSize: %s", body)
			case strings.Contains(c.Shows, "only her own account") && len(list.Records) != 1:
				t.Errorf("customer accounts: %s", body)
			}
		})
	}
}
