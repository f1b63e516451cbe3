package demo_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/demo"
)

// TestDemoAnswersItsCommands runs the demo as `crmgate demo` does and sends
// every command it prints, checking each persona gets the answer the
// command's description promises.
func TestDemoAnswersItsCommands(t *testing.T) {
	env, printed := startDemo(t, "")
	tokens := map[string]string{}
	for _, p := range env.Personas {
		tokens[p.Name] = p.Token
	}
	for _, c := range demo.Commands {
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
			case strings.Contains(c.Shows, "(401"):
				want = http.StatusUnauthorized
			}
			if res.StatusCode != want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, want, body)
			}
		})
	}
	t.Run("refuses a non-loopback address", func(t *testing.T) {
		err := demo.Run(context.Background(), demo.Options{Listen: "0.0.0.0:0"})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("err = %v", err)
		}
	})
}
