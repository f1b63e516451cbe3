package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

// TestDynamicsExample: deploy/dynamics/crmgate.yaml loads with its
// environment, names the dynamics profile and an Entra ID client
// credentials flow, extends the profile with its custom tables, and its
// policy (the reference policy) compiles.
func TestDynamicsExample(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("dynamics")
	data, err := os.ReadFile(filepath.Join(dir, "crmgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ENTRA_TENANT_ID": "00000000-0000-0000-0000-0000000000aa", "ENTRA_CLIENT_ID": "crmgate",
		"ENTRA_CLIENT_SECRET": "s3cret", "CRMGATE_ADMIN_TOKEN": "0123456789abcdef0123456789abcdef"}
	cfg, err := config.Parse(data, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, dir)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if cfg.CRM.Profile != config.ProfileDynamics || cfg.Upstream.Auth.Type != config.AuthClientCredentials ||
		len(cfg.Upstream.Auth.Scopes) != 1 || filepath.Base(cfg.Upstream.Auth.TokenURL) != "token" {
		t.Errorf("profile %q, auth %+v", cfg.CRM.Profile, cfg.Upstream.Auth)
	}
	p, err := profile.Builtin(cfg.CRM.Profile)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = p.WithRoutes(nil, cfg.CRM.Modules); err != nil {
		t.Fatal(err)
	}
	m, err := p.Classify("GET", "/api/data/v9.2/new_stores(3fa85f64-5717-4562-b3fc-2c963f66afa6)", nil)
	if err != nil || m.Module != "new_stores" || p.Dialect == nil {
		t.Errorf("custom table: %+v %v (dialect %v)", m, err, p.Dialect)
	}
	if _, err := policy.Load(context.Background(), policy.Options{Source: policy.Source{Paths: cfg.Policy.Paths}, Package: cfg.Policy.Package}); err != nil {
		t.Fatalf("policy: %v", err)
	}
}
