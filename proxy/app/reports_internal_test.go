package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/proxy/session"
	refpolicy "github.com/crmgate/crmgate/rego"
)

// TestAdminReports drives the report endpoints through the admin handler,
// with the memory store of this process on an injected clock.
func TestAdminReports(t *testing.T) {
	now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := session.NewMemory(clock)
	defer store.Close()
	ctx := context.Background()
	for user, at := range map[string]time.Time{
		"dormant-dan": now.AddDate(0, 0, -31),
		"active-amy":  now.Add(-time.Hour),
		"edge-eve":    now.AddDate(0, 0, -30).Add(time.Minute),
	} {
		if err := store.SeenUser(ctx, user, at); err != nil {
			t.Fatal(err)
		}
	}
	engine, err := policy.Load(ctx, policy.Options{Source: policy.Source{FS: refpolicy.FS}})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := BuildProfile(config.CRM{Profile: "suitecrm8"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Metrics: config.Metrics{Roles: []string{"sales", "customer"}},
		Identity: config.Identity{Roles: map[string][]string{"line_manager": {"mgr"}}}}
	const token = "admin-token-0123456789"
	admin := proxy.NewAdmin(proxy.AdminOptions{Token: token, Gatherer: nil,
		Extra: reportHandlers(cfg, engine, prof, store, clock, zap.NewNop())})
	noStore := proxy.NewAdmin(proxy.AdminOptions{Token: token,
		Extra: reportHandlers(cfg, engine, prof, nil, clock, zap.NewNop())})

	get := func(h http.Handler, path string, auth bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	t.Run("dormant json", func(t *testing.T) {
		rec := get(admin, "/admin/reports/dormant?days=30", true)
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("status %d %s: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		var d struct {
			Days  int `json:"days"`
			Known int `json:"known_users"`
			Users []struct {
				User     string    `json:"user"`
				LastSeen time.Time `json:"last_seen"`
				DaysIdle int       `json:"days_idle"`
			} `json:"users"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Users) != 1 || d.Users[0].User != "dormant-dan" || d.Users[0].DaysIdle != 31 || d.Known != 3 ||
			!d.Users[0].LastSeen.Equal(now.AddDate(0, 0, -31)) {
			t.Errorf("dormant = %+v", d)
		}
	})
	t.Run("dormant markdown", func(t *testing.T) {
		rec := get(admin, "/admin/reports/dormant?days=30&format=markdown", true)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "| dormant-dan | 2026-05-01") || strings.Contains(rec.Body.String(), "active-amy") {
			t.Errorf("status %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			h      http.Handler
			path   string
			auth   bool
			status int
		}{
			{admin, "/admin/reports/dormant?days=30", false, http.StatusUnauthorized},
			{admin, "/admin/reports/access", false, http.StatusUnauthorized},
			{admin, "/admin/reports/dormant", true, http.StatusBadRequest},
			{admin, "/admin/reports/dormant?days=0", true, http.StatusBadRequest},
			{admin, "/admin/reports/dormant?days=x", true, http.StatusBadRequest},
			{admin, "/admin/reports/dormant?days=30&format=pdf", true, http.StatusBadRequest},
			{admin, "/admin/reports/access?format=pdf", true, http.StatusBadRequest},
			{noStore, "/admin/reports/dormant?days=30", true, http.StatusNotFound},
		} {
			if rec := get(c.h, c.path, c.auth); rec.Code != c.status {
				t.Errorf("%s (auth %t): status %d, want %d: %s", c.path, c.auth, rec.Code, c.status, rec.Body)
			}
		}
	})
	t.Run("access", func(t *testing.T) {
		rec := get(admin, "/admin/reports/access?format=json", true)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var a struct {
			Revision string   `json:"revision"`
			Roles    []string `json:"roles"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		if a.Revision != engine.Revision() || strings.Join(a.Roles, ",") != "customer,line_manager,sales" {
			t.Errorf("access = %+v", a)
		}
		rec = get(admin, "/admin/reports/access", true)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "| Accounts | sales | allow | allow |") ||
			!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/markdown") {
			t.Errorf("markdown: status %d: %.300s", rec.Code, rec.Body)
		}
		rec = get(admin, "/admin/reports/access?format=html", true)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<!DOCTYPE html>") {
			t.Errorf("html: status %d", rec.Code)
		}
		if rec = get(admin, "/admin/reports/access?remote_ip=not-an-ip", true); rec.Code != http.StatusBadRequest {
			t.Errorf("bad remote_ip: status %d", rec.Code)
		}
	})
	t.Run("access from the office", func(t *testing.T) {
		// The reference policy admits admins from office networks only:
		// asked from nowhere the report shows them denied, from an
		// office address allowed with MFA.
		withAdmin := &config.Config{Metrics: config.Metrics{Roles: []string{"admin"}}}
		h := proxy.NewAdmin(proxy.AdminOptions{Token: token, Extra: reportHandlers(withAdmin, engine, prof, nil, clock, zap.NewNop())})
		row := "| Accounts | admin | MFA | MFA |"
		if rec := get(h, "/admin/reports/access", true); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), row) {
			t.Errorf("without an address: %d %.400s", rec.Code, rec.Body)
		}
		if rec := get(h, "/admin/reports/access?remote_ip=198.51.100.7", true); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), row) {
			t.Errorf("from the office: %d %.400s", rec.Code, rec.Body)
		}
		// The cached report is the one for the address asked.
		if rec := get(h, "/admin/reports/access", true); strings.Contains(rec.Body.String(), row) {
			t.Error("the office report was served for a request without an address")
		}
	})
}
