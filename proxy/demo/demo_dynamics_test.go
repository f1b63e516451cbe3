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
	for _, c := range env.CRM.Commands {
		t.Run(c.Persona+" "+c.Shows, func(t *testing.T) {
			body := sendDemoCommand(t, env, printed, c)
			if strings.Contains(c.Shows, "standardcost hidden") && strings.Contains(string(body), "standardcost") {
				t.Errorf("buy price shown: %s", body)
			}
		})
	}
	if err := demo.Run(context.Background(), demo.Options{Listen: "127.0.0.1:0", CRM: "nope"}); err == nil || !strings.Contains(err.Error(), "dynamics") {
		t.Errorf("unknown --crm: %v", err)
	}
}

// sendDemoCommand checks that the demo printed c as a curl line, sends it
// as c.Persona and checks the status its description promises: (403),
// (400) or (401 ...) in Shows, 200 otherwise. It returns the body.
func sendDemoCommand(t *testing.T, env *demo.Env, printed string, c demo.Command) []byte {
	t.Helper()
	token := ""
	for _, p := range env.Personas {
		if p.Name == c.Persona {
			token = p.Token
		}
	}
	curl := "curl -s -X " + c.Method + " -H 'Authorization: Bearer " + token + "'"
	if token == "" || !strings.Contains(printed, curl) || !strings.Contains(printed, env.ProxyURL+c.Path) {
		t.Fatalf("the demo did not print %s %s for %s", c.Method, c.Path, c.Persona)
	}
	var rd io.Reader
	if c.Body != "" {
		rd = strings.NewReader(c.Body)
	}
	req, _ := http.NewRequest(c.Method, env.ProxyURL+c.Path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if c.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
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
	return body
}
