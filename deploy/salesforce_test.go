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

// TestSalesforceExample: deploy/salesforce/crmgate.yaml loads with its
// environment, names the salesforce profile and a client-credentials flow
// against the org's token endpoint, extends the profile with its custom
// objects (a SOQL query on one is classified by its FROM), and its policy
// (the reference policy) compiles.
func TestSalesforceExample(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("salesforce")
	data, err := os.ReadFile(filepath.Join(dir, "crmgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SF_CONSUMER_KEY": "3MVG9-key", "SF_CONSUMER_SECRET": "s3cret",
		"CRMGATE_ADMIN_TOKEN": "0123456789abcdef0123456789abcdef", "CRMGATE_SESSION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	cfg, err := config.Parse(data, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, dir)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if _, err := cfg.Session.EncryptionKeyBytes(); err != nil {
		t.Errorf("session key (it signs query cursors): %v", err)
	}
	if cfg.CRM.Profile != config.ProfileSalesforce || cfg.Upstream.Auth.Type != config.AuthClientCredentials ||
		cfg.Upstream.Auth.TokenURL != cfg.Upstream.URL+"/services/oauth2/token" {
		t.Errorf("profile %q, auth %+v", cfg.CRM.Profile, cfg.Upstream.Auth)
	}
	p, err := profile.Builtin(cfg.CRM.Profile)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = p.WithRoutes(nil, cfg.CRM.Modules); err != nil {
		t.Fatal(err)
	}
	m, err := p.Classify("GET", "/services/data/v62.0/query", nil)
	if err == nil {
		m, err = p.ClassifyQuery(m, "q=SELECT+Id+FROM+store__c")
	}
	if err != nil || m.Module != "Store__c" || p.Dialect == nil {
		t.Errorf("custom object: %+v %v (dialect %v)", m, err, p.Dialect)
	}
	if _, err := policy.Load(context.Background(), policy.Options{Source: policy.Source{Paths: cfg.Policy.Paths}, Package: cfg.Policy.Package}); err != nil {
		t.Fatalf("policy: %v", err)
	}
}
