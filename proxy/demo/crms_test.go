package demo_test

import (
	"encoding/json"
	"io"
	"net/http"
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
	tokens := map[string]string{}
	for _, p := range env.Personas {
		tokens[p.Name] = p.Token
	}
	for _, c := range demo.HubSpotCommands {
		t.Run(c.Persona+" "+c.Shows, func(t *testing.T) {
			if !strings.Contains(printed, env.ProxyURL+c.Path) || !strings.Contains(printed, tokens[c.Persona]) {
				t.Fatalf("the demo did not print %s for %s", c.Path, c.Persona)
			}
			var body io.Reader
			if c.Body != "" {
				body = strings.NewReader(c.Body)
			}
			req, _ := http.NewRequest(c.Method, env.ProxyURL+c.Path, body)
			req.Header.Set("Authorization", "Bearer "+tokens[c.Persona])
			if c.Body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			want := http.StatusOK
			switch {
			case strings.Contains(c.Shows, "(403)"):
				want = http.StatusForbidden
			case strings.Contains(c.Shows, "(401"):
				want = http.StatusUnauthorized
			}
			if res.StatusCode != want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, want, b)
			}
			if want != http.StatusOK {
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
