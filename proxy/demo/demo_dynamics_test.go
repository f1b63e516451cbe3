package demo_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/demo"
)

// TestDemoDynamicsAnswersItsCommands is `crmgate demo --crm dynamics`:
// the Dataverse emulator behind crmgate, each printed command answered as
// its description promises.
func TestDemoDynamicsAnswersItsCommands(t *testing.T) {
	env, printed := startDemo(t, "dynamics")
	if !strings.Contains(printed, "Dataverse") {
		t.Errorf("intro does not name the CRM: %s", printed)
	}
	tokens := map[string]string{}
	for _, p := range env.Personas {
		tokens[p.Name] = p.Token
	}
	for _, c := range env.CRM.Commands {
		t.Run(c.Persona+" "+c.Shows, func(t *testing.T) {
			curl := "curl -s -X " + c.Method + " -H 'Authorization: Bearer " + tokens[c.Persona] + "' '" + env.ProxyURL + c.Path + "'"
			if !strings.Contains(printed, curl) {
				t.Fatalf("the demo did not print %q", curl)
			}
			req, _ := http.NewRequest(c.Method, env.ProxyURL+c.Path, nil)
			req.Header.Set("Authorization", "Bearer "+tokens[c.Persona])
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			want := http.StatusOK
			switch {
			case strings.Contains(c.Shows, "(403)"):
				want = http.StatusForbidden
			case strings.Contains(c.Shows, "(400)"):
				want = http.StatusBadRequest
			case strings.Contains(c.Shows, "(401"):
				want = http.StatusUnauthorized
			}
			if res.StatusCode != want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, want, body)
			}
			if strings.Contains(c.Shows, "standardcost hidden") && strings.Contains(string(body), "standardcost") {
				t.Errorf("buy price shown: %s", body)
			}
		})
	}
	if err := demo.Run(context.Background(), demo.Options{Listen: "127.0.0.1:0", CRM: "nope"}); err == nil || !strings.Contains(err.Error(), "dynamics") {
		t.Errorf("unknown --crm: %v", err)
	}
}
