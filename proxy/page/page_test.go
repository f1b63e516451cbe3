package page

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func browser() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/.crmgate/login", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	return r
}

func apiClient() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/.crmgate/login", nil)
	r.Header.Set("Accept", "application/json")
	return r
}

const evil = `<script>alert(1)</script>"'&`

func TestPages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		render func(w http.ResponseWriter)
		status int
		ids    []string
		text   []string
	}{
		{"denied", func(w http.ResponseWriter) { Problem(w, 403, "Access denied", "Not for you.", "dec-123") }, 403,
			[]string{"problem-title", "problem-detail", "decision-id", "access-denied"}, []string{"dec-123", "Not for you."}},
		{"not found without decision id", func(w http.ResponseWriter) { Problem(w, 404, "Not found", "No route.", "") }, 404,
			[]string{"problem-title", "problem-detail"}, []string{"No route."}},
		{"signed out", func(w http.ResponseWriter) { SignedOut(w, "/.crmgate/login") }, 200,
			[]string{"signed-out", "sign-in"}, []string{`href="/.crmgate/login"`}},
		{"logout confirmation", func(w http.ResponseWriter) { ConfirmLogout(w, "/.crmgate/logout", "tok-1") }, 200,
			[]string{"logout-form", "logout-submit"}, []string{`value="tok-1"`, `method="post"`, `action="/.crmgate/logout"`}},
		{"redirect", func(w http.ResponseWriter) { Redirect(w, "https://idp.example/auth?a=1&b=2", false) }, 302,
			[]string{"redirecting", "continue"}, []string{"a=1&amp;b=2"}},
		{"step-up redirect", func(w http.ResponseWriter) { Redirect(w, "https://idp.example/auth", true) }, 302,
			[]string{"redirecting", "step-up", "continue"}, nil},
		{"mfa required", func(w http.ResponseWriter) { MFARequired(w, browser(), "Admins need MFA.", "/.crmgate/login") }, 403,
			[]string{"mfa-required", "problem-detail", "sign-in"}, []string{"Admins need MFA."}},
		{"idp unavailable", func(w http.ResponseWriter) { IdPUnavailable(w, browser(), "/.crmgate/login?rd=%2Fx") }, 503,
			[]string{"idp-unavailable", "problem-detail", "retry"}, nil},
		{"login error", func(w http.ResponseWriter) { LoginError(w, browser(), 400, "The sign-in expired.", "/.crmgate/login") }, 400,
			[]string{"login-error", "problem-detail", "sign-in"}, []string{"The sign-in expired."}},
		{"forbidden", func(w http.ResponseWriter) { Forbidden(w, browser(), "Cross-site logout refused.") }, 403,
			[]string{"access-denied", "problem-title"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			c.render(w)
			if w.Code != c.status {
				t.Fatalf("status = %d, want %d", w.Code, c.status)
			}
			h := w.Header()
			if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("content-type = %q", ct)
			}
			if h.Get("Cache-Control") != "no-store" || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
				h.Get("X-Frame-Options") != "DENY" {
				t.Errorf("security headers missing: %v", h)
			}
			body := w.Body.String()
			for _, id := range c.ids {
				if !strings.Contains(body, `id="`+id+`"`) {
					t.Errorf("no element id %q in %s", id, body)
				}
			}
			for _, s := range c.text {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
			// No scripts and no external assets, ever.
			for _, bad := range []string{"<script", "src=", "http://", "@import"} {
				if strings.Contains(body, bad) {
					t.Errorf("body contains %q", bad)
				}
			}
		})
	}
}

func TestPagesEscape(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		render func(w http.ResponseWriter)
	}{
		{"problem", func(w http.ResponseWriter) { Problem(w, 403, evil, evil, evil) }},
		{"login error", func(w http.ResponseWriter) { LoginError(w, browser(), 400, evil, "/x") }},
		{"mfa", func(w http.ResponseWriter) { MFARequired(w, browser(), evil, "/x") }},
		{"logout token", func(w http.ResponseWriter) { ConfirmLogout(w, "/x", evil) }},
		{"redirect location", func(w http.ResponseWriter) { Redirect(w, `javascript:alert(1)`, false) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			c.render(w)
			body := w.Body.String()
			if strings.Contains(body, "<script>") || strings.Contains(body, `"'&<`) {
				t.Errorf("unescaped input in %s", body)
			}
			if strings.Contains(body, `href="javascript:`) {
				t.Errorf("javascript: URL left in a link: %s", body)
			}
		})
	}
}

func TestJSONForAPIClients(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		render func(w http.ResponseWriter, r *http.Request)
		status int
		kind   string
	}{
		{"idp unavailable", func(w http.ResponseWriter, r *http.Request) { IdPUnavailable(w, r, "/") }, 503, KindIdPUnavailable},
		{"login error", func(w http.ResponseWriter, r *http.Request) { LoginError(w, r, 400, "bad state", "/") }, 400, KindLoginFailed},
		{"mfa", func(w http.ResponseWriter, r *http.Request) { MFARequired(w, r, "need mfa", "/") }, 403, KindMFARequired},
		{"forbidden", func(w http.ResponseWriter, r *http.Request) { Forbidden(w, r, "no") }, 403, KindForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			c.render(w, apiClient())
			if w.Code != c.status || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %q", w.Code, w.Header().Get("Content-Type"))
			}
			var p map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p["type"] != "urn:crmgate:problem:"+c.kind || int(p["status"].(float64)) != c.status {
				t.Errorf("problem = %v", p)
			}
		})
	}
}

func TestWantsHTML(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		accept string
		mode   string
		want   bool
	}{
		{"browser navigation", "text/html", "navigate", true},
		{"fetch from a page", "text/html", "cors", false},
		{"html first", "text/html, application/json", "", true},
		{"json first", "application/json, text/html", "", false},
		{"problem json", "application/problem+json", "", false},
		{"no accept", "", "", false},
		{"anything", "*/*", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if c.accept != "" {
				r.Header.Set("Accept", c.accept)
			}
			if c.mode != "" {
				r.Header.Set("Sec-Fetch-Mode", c.mode)
			}
			if got := WantsHTML(r); got != c.want {
				t.Errorf("WantsHTML = %v, want %v", got, c.want)
			}
		})
	}
}
