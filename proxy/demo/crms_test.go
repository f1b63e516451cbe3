package demo_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/demo"
)

// TestDemoHubSpot runs `crmgate demo --crm hubspot` and sends every command
// it prints, checking each gets the answer its description promises.
func TestDemoHubSpot(t *testing.T) {
	env, printed := startDemo(t, "hubspot")
	if !strings.Contains(printed, "HubSpot") {
		t.Errorf("intro does not name HubSpot: %s", printed)
	}
	for _, c := range demo.HubSpotCommands {
		t.Run(c.Persona+" "+c.Shows, func(t *testing.T) {
			b := sendDemoCommand(t, env, printed, c)
			if strings.Contains(c.Shows, "(40") {
				return
			}
			var list struct {
				Total   *int              `json:"total"`
				Results []json.RawMessage `json:"results"`
			}
			_ = json.Unmarshal(b, &list)
			switch {
			case strings.Contains(c.Shows, "buy price hidden") && strings.Contains(string(b), "hs_cost_of_goods_sold"):
				t.Errorf("buy price shown: %s", b)
			case strings.Contains(c.Shows, "sees buy prices") && !strings.Contains(string(b), "hs_cost_of_goods_sold"):
				t.Errorf("buy price missing: %s", b)
			case strings.Contains(c.Shows, "masked") && (strings.Contains(string(b), "pat.customer@") || strings.Contains(string(b), "7946 0001")):
				t.Errorf("e-mail not masked: %s", b)
			case strings.Contains(c.Shows, "search") && (list.Total == nil || *list.Total != 5 || len(list.Results) != 3):
				t.Errorf("search: want a full page of 3 and total 5: %s", b)
			case strings.Contains(c.Shows, "own company") && len(list.Results) != 1:
				t.Errorf("customer companies: %s", b)
			}
		})
	}
	if _, err := demo.LookupCRM("nosuch"); err == nil {
		t.Error("unknown demo crm accepted")
	}
}
