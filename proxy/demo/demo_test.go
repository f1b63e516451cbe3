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

// TestDemoAnswersItsCommands runs the demo as `crmgate demo` does and sends
// every command it prints, checking each persona gets the answer the
// command's description promises.
func TestDemoAnswersItsCommands(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *demo.Env, 1)
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{Listen: "127.0.0.1:0", Out: &out, DecisionLog: zapcore.AddSync(io.Discard),
			Ready: func(e *demo.Env) { ready <- e }})
	}()
	var env *demo.Env
	select {
	case env = <-ready:
	case err := <-done:
		t.Fatalf("demo stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not start")
	}
	tokens := map[string]string{}
	for _, p := range env.Personas {
		tokens[p.Name] = p.Token
	}
	printed := out.String()
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
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop")
	}
}
