package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

// TestHubSpotExample loads deploy/hubspot/crmgate.yaml as crmgate would:
// it parses and validates, names the hubspot profile with HubSpot's API
// host, sends the private-app token as a bearer header, and its policy
// loads. A broken copy must fail, so the test can tell.
func TestHubSpotExample(t *testing.T) {
	path := filepath.Join("hubspot", "crmgate.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HUBSPOT_PRIVATE_APP_TOKEN": "pat-na1-00000000-0000-0000-0000-000000000000", "CRMGATE_ADMIN_TOKEN": "admin-token-0123456789abcdef"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Parse(data, lookup, filepath.Dir(path))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if cfg.CRM.Profile != config.ProfileHubSpot || cfg.Upstream.URL != "https://api.hubapi.com" {
		t.Errorf("profile %q, upstream %q", cfg.CRM.Profile, cfg.Upstream.URL)
	}
	a := cfg.Upstream.Auth
	if a.Type != config.AuthHeader || a.Header != "Authorization" || a.Value != "Bearer "+env["HUBSPOT_PRIVATE_APP_TOKEN"] {
		t.Errorf("upstream auth = %s %s %q, want the private-app token as a bearer header", a.Type, a.Header, a.Value)
	}
	if _, err := profile.Builtin(cfg.CRM.Profile); err != nil {
		t.Errorf("profile: %v", err)
	}
	if _, err := policy.Load(context.Background(), policy.Options{Source: policy.Source{Paths: cfg.Policy.Paths}, Package: cfg.Policy.Package}); err != nil {
		t.Errorf("policy: %v", err)
	}
	broken := strings.Replace(string(data), "profile: hubspot", "profile: hubspot8", 1)
	if _, err := config.Parse([]byte(broken), lookup, filepath.Dir(path)); err == nil {
		t.Error("a config naming an unknown profile parsed")
	}
}
