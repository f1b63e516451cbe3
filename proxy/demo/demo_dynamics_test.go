package demo_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/crmgate/crmgate/proxy/demo"
)

// TestDemoDynamicsAnswersItsCommands is `crmgate demo --crm dynamics`:
// the Dataverse emulator behind crmgate, each printed command answered as
// its description promises.
func TestDemoDynamicsAnswersItsCommands(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *demo.Env, 1)
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{Listen: "127.0.0.1:0", Out: &out, DecisionLog: zapcore.AddSync(io.Discard),
			CRM: "dynamics", Ready: func(e *demo.Env) { ready <- e }})
	}()
	var env *demo.Env
	select {
	case env = <-ready:
	case err := <-done:
		t.Fatalf("demo stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not start")
	}
	printed := out.String()
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
