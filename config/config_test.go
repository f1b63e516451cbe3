package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimalYAML is the smallest configuration that validates: a CRM, one way
// to authenticate and a policy.
const minimalYAML = `
upstream:
  url: http://crm.internal
identity:
  bearer:
    enabled: true
    issuer: https://id.example
    audiences: [crmgate]
policy:
  paths: [rego]
`

// env returns a lookupEnv backed by a map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// fullEnv is what testdata/full.yaml expects from the environment.
var fullEnv = map[string]string{
	"SUITECRM_CLIENT_SECRET": "suitecrm-secret",
	"OIDC_CLIENT_SECRET":     "oidc-secret",
	"REDIS_PASSWORD":         "redis-password",
	"SESSION_KEY":            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	"CRMGATE_ADMIN_TOKEN":    "0123456789abcdef0123",
}

// problemsOf returns the problems of an *Error, failing the test for any
// other error.
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want problems")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	return e.Problems
}

// wantProblem fails unless err reports a problem at path whose message
// contains msg.
func wantProblem(t *testing.T, err error, path, msg string) {
	t.Helper()
	ps := problemsOf(t, err)
	for _, p := range ps {
		if p.Path == path && strings.Contains(p.Msg, msg) {
			return
		}
	}
	t.Fatalf("no problem %q containing %q in:\n%v", path, msg, err)
}

func TestParseFullExample(t *testing.T) {
	t.Parallel()
	cfg, err := Load(filepath.Join("testdata", "full.yaml"))
	if err == nil {
		t.Fatal("full.yaml loaded without its environment variables")
	}
	wantProblem(t, err, "upstream.auth.client_secret", "SUITECRM_CLIENT_SECRET")
	if cfg != nil {
		t.Fatal("got a config together with an error")
	}

	data, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = Parse(data, env(fullEnv), "testdata")
	if err != nil {
		t.Fatalf("parse full.yaml: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen.Address, "0.0.0.0:8443"},
		{"profile", cfg.CRM.Profile, ProfileSuiteCRM8},
		{"client secret from env", cfg.Upstream.Auth.ClientSecret, "suitecrm-secret"},
		{"timeout default from ${:-}", cfg.Upstream.Timeout, 60 * time.Second},
		{"bearer issuer defaults to oidc", cfg.Identity.Bearer.Issuer, "https://id.shop.example/realms/shop"},
		{"roles", cfg.Identity.Roles["manager"], []string{"crm-sales-lead", "crm-managers"}},
		{"attributes", cfg.Identity.Claims.Attributes["crm_user_id"], "suitecrm_user_id"},
		{"step up max age", cfg.Identity.MFA.StepUpMaxAge, 10 * time.Minute},
		{"redis sentinel", cfg.Session.Redis.MasterName, "crmgate"},
		{"policy path relative to file", cfg.Policy.Paths[0], filepath.Join("rego", "crmgate.rego")},
		{"route", cfg.CRM.Routes[0], Route{Method: "GET", Path: "/Api/V8/custom/export/{module}", Action: "export", Kind: "list"}},
		{"uses tls", cfg.UsesTLS(), true},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %#v, want %#v", c.got, c.want)
			}
		})
	}
}

func TestDeployExampleIsTheTestedExample(t *testing.T) {
	t.Parallel()
	deploy, err := os.ReadFile(filepath.Join("..", "deploy", "crmgate.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(deploy, full) {
		t.Error("deploy/crmgate.example.yaml differs from config/testdata/full.yaml; copy one to the other")
	}
	if _, err := Parse(deploy, env(fullEnv), filepath.Join("..", "deploy")); err != nil {
		t.Fatalf("parse deploy example: %v", err)
	}
}

func TestMinimalConfig(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(minimalYAML), env(nil), "")
	if err != nil {
		t.Fatalf("parse minimal: %v", err)
	}
	if cfg.Listen.Address != DefaultListen || cfg.Upstream.URL != "http://crm.internal" {
		t.Errorf("unexpected config: listen %q, upstream %q", cfg.Listen.Address, cfg.Upstream.URL)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
	if !strings.HasPrefix(err.Error(), "load config: ") {
		t.Errorf("error %q lacks the operation prefix", err)
	}
}

func TestErrorRenderingIsBounded(t *testing.T) {
	t.Parallel()
	e := &Error{}
	for i := range 500 {
		e.Problems = append(e.Problems, Problem{Path: index("x", i), Msg: "bad"})
	}
	s := e.Error()
	if !strings.HasPrefix(s, "500 config problems:") || !strings.HasSuffix(s, "... and 450 more") {
		t.Errorf("unexpected rendering: %.80q ... %q", s, s[len(s)-30:])
	}
	if n := strings.Count(s, "\n\t"); n != maxRendered+1 {
		t.Errorf("rendered %d lines, want %d", n, maxRendered+1)
	}
}

func BenchmarkParseFull(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	lookup := env(fullEnv)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, lookup, "testdata"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublicPath(b *testing.B) {
	c := valid()
	c.CRM.PublicPaths = []string{"/dist/", "/favicon.ico", "/legacy/themes/"}
	b.ReportAllocs()
	for b.Loop() {
		if c.PublicPath("/Api/V8/module/Accounts/42") {
			b.Fatal("API path is public")
		}
	}
}
