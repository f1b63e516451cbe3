package config

import (
	"reflect"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	c := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen.Address, "127.0.0.1:8080"},
		{"admin_listen", c.AdminListen, "127.0.0.1:9090"},
		{"dial_timeout", c.Upstream.DialTimeout, 5 * time.Second},
		{"response_header_timeout", c.Upstream.ResponseHeaderTimeout, 30 * time.Second},
		{"idle_conn_timeout", c.Upstream.IdleConnTimeout, 90 * time.Second},
		{"timeout", c.Upstream.Timeout, 60 * time.Second},
		{"max_idle_conns_per_host", c.Upstream.MaxIdleConnsPerHost, 256},
		{"max_request_body", c.Upstream.MaxRequestBody, int64(10 << 20)},
		{"auth type", c.Upstream.Auth.Type, "none"},
		{"profile", c.CRM.Profile, "suitecrm8"},
		{"oidc scopes", c.Identity.OIDC.Scopes, []string{"openid", "profile", "email"}},
		{"redirect_path", c.Identity.OIDC.RedirectPath, "/.crmgate/callback"},
		{"algorithms", c.Identity.Bearer.Algorithms, []string{"RS256", "ES256", "PS256"}},
		{"claims", c.Identity.Claims, Claims{ID: "sub", Email: "email", Name: "name", Roles: "roles", Groups: "groups", Teams: "teams"}},
		{"mfa amr", c.Identity.MFA.AMR, []string{"mfa", "otp", "hwk", "swk"}},
		{"store", c.Session.Store, "memory"},
		{"cookie", c.Session.CookieName, "crmgate_session"},
		{"idle", c.Session.IdleTimeout, 30 * time.Minute},
		{"lifetime", c.Session.MaxLifetime, 12 * time.Hour},
		{"key prefix", c.Session.Redis.KeyPrefix, "crmgate:"},
		{"local cache", *c.Session.Redis.LocalCache, true},
		{"package", c.Policy.Package, "crmgate"},
		{"poll", c.Policy.Bundle.PollInterval, 30 * time.Second},
		{"output", c.DecisionLog.Output, "stdout"},
		{"buffer", c.DecisionLog.BufferSize, 8192},
		{"record ids", c.DecisionLog.MaxRecordIDs, 100},
		{"mask paths", c.DecisionLog.MaskPaths, []string{"/input/resource/body", "/input/record"}},
		{"metrics roles without identity roles", c.Metrics.Roles, []string(nil)},
	}
	for _, ck := range checks {
		t.Run(ck.name, func(t *testing.T) {
			if !reflect.DeepEqual(ck.got, ck.want) {
				t.Errorf("got %#v, want %#v", ck.got, ck.want)
			}
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	t.Parallel()
	t.Run("idempotent", func(t *testing.T) {
		c := valid()
		c.Identity.Roles = map[string][]string{"b": {"x"}, "a": {"y"}}
		c.Metrics.Roles = nil
		ApplyDefaults(c)
		before := *c
		ApplyDefaults(c)
		if !reflect.DeepEqual(before, *c) {
			t.Errorf("second ApplyDefaults changed the config")
		}
	})
	t.Run("keeps explicit values", func(t *testing.T) {
		c := &Config{Listen: Listener{Address: ":1"}, Session: Session{IdleTimeout: time.Minute, CookieName: "c"}}
		c.Identity.Bearer.Algorithms = []string{"EdDSA"}
		ApplyDefaults(c)
		if c.Listen.Address != ":1" || c.Session.IdleTimeout != time.Minute || c.Session.CookieName != "c" ||
			!reflect.DeepEqual(c.Identity.Bearer.Algorithms, []string{"EdDSA"}) {
			t.Errorf("explicit values overridden: %+v", c)
		}
	})
	t.Run("explicit empty list is kept", func(t *testing.T) {
		c := &Config{DecisionLog: DecisionLog{MaskPaths: []string{}}}
		ApplyDefaults(c)
		if c.DecisionLog.MaskPaths == nil || len(c.DecisionLog.MaskPaths) != 0 {
			t.Errorf("mask_paths: [] replaced by %q", c.DecisionLog.MaskPaths)
		}
	})
	t.Run("amr only when neither amr nor acr", func(t *testing.T) {
		c := &Config{Identity: Identity{MFA: MFA{ACR: []string{"urn:mfa"}}}}
		ApplyDefaults(c)
		if c.Identity.MFA.AMR != nil {
			t.Errorf("amr defaulted although acr is set: %q", c.Identity.MFA.AMR)
		}
	})
	t.Run("bearer issuer from oidc", func(t *testing.T) {
		c := &Config{Identity: Identity{OIDC: OIDC{Issuer: "https://id"}}}
		ApplyDefaults(c)
		if c.Identity.Bearer.Issuer != "https://id" {
			t.Errorf("bearer issuer = %q", c.Identity.Bearer.Issuer)
		}
		c = &Config{Identity: Identity{OIDC: OIDC{Issuer: "https://id"}, Bearer: Bearer{Issuer: "https://other"}}}
		ApplyDefaults(c)
		if c.Identity.Bearer.Issuer != "https://other" {
			t.Errorf("explicit bearer issuer overridden: %q", c.Identity.Bearer.Issuer)
		}
	})
	t.Run("metrics roles from identity roles, sorted", func(t *testing.T) {
		c := &Config{Identity: Identity{Roles: map[string][]string{"sales": {"a"}, "admin": {"b"}, "manager": {"c"}}}}
		ApplyDefaults(c)
		if want := []string{"admin", "manager", "sales"}; !reflect.DeepEqual(c.Metrics.Roles, want) {
			t.Errorf("metrics roles = %q, want %q", c.Metrics.Roles, want)
		}
	})
	t.Run("defaults are not shared", func(t *testing.T) {
		a, b := Default(), Default()
		a.Identity.Bearer.Algorithms[0] = "HS256"
		a.DecisionLog.MaskPaths[0] = "/input/x"
		if b.Identity.Bearer.Algorithms[0] != "RS256" || b.DecisionLog.MaskPaths[0] != "/input/resource/body" {
			t.Error("Default() hands out shared slices")
		}
	})
}
