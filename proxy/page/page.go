// Package page renders crmgate's own small HTML pages: signed out, access
// denied, multi-factor authentication required, the redirect to the IdP,
// IdP unavailable and login errors. Pages are self-contained (inline CSS, no
// scripts, no external assets) so they render the same behind any CSP and
// never load anything from a third party.
//
// Every page carries stable element ids (listed on each function) that
// browser tests rely on; changing one is a breaking change for them.
//
// Browsers get HTML; other clients get application/problem+json with the
// same stable problem types the proxy uses (content negotiation by Accept).
package page

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

// templates is parsed once; the set is fixed at build time, so a parse
// error is a build mistake caught by every test of this package.
var templates = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Problem types (the last part of urn:crmgate:problem:...) of the problems
// this package writes for non-browser clients.
const (
	KindIdPUnavailable = "idp-unavailable"
	KindLoginFailed    = "login-failed"
	KindMFARequired    = "mfa-required"
	KindForbidden      = "forbidden"
)

const problemTypePrefix = "urn:crmgate:problem:"

// data is what every template sees.
type data struct {
	Title      string
	Detail     string
	DecisionID string
	Status     int
	// Kind selects the page's icon colour and wording class.
	Kind string
	// Location is the next URL (redirect pages, sign-in links).
	Location string
	// Token is the logout form's CSRF token.
	Token string
	// Action is the logout form's target.
	Action string
	StepUp bool
}

// render executes the named template into a buffer first, so a template
// error never leaves a half-written page with a 200 status.
func render(w http.ResponseWriter, status int, name string, d data) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, d); err != nil {
		// Only fixed templates and strings are involved; fall back to a
		// plain message rather than an empty body.
		buf.Reset()
		buf.WriteString("<!doctype html><title>Error</title><p>crmgate could not render this page.</p>")
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// Inline styles only; no scripts, no frames. form-action is left open
	// on purpose: the logout form's answer redirects to the IdP, and
	// browsers apply form-action to that redirect too.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Problem renders a problem for a browser. Its signature matches
// proxy.ProblemPage. Element ids: problem-title, problem-detail,
// decision-id (when decisionID is set), and access-denied on 403 pages.
func Problem(w http.ResponseWriter, status int, title, detail, decisionID string) {
	kind := "error"
	switch {
	case status == http.StatusForbidden:
		kind = "denied"
	case status == http.StatusNotFound:
		kind = "notfound"
	case status >= 500:
		kind = "unavailable"
	}
	render(w, status, "problem.html", data{Title: title, Detail: detail, DecisionID: decisionID, Status: status, Kind: kind})
}

// SignedOut renders the page shown after logout. Element ids: signed-out,
// sign-in (a link that signs in again).
func SignedOut(w http.ResponseWriter, signInURL string) {
	render(w, http.StatusOK, "signed_out.html", data{Title: "Signed out", Location: signInURL, Status: http.StatusOK})
}

// ConfirmLogout renders a sign-out button that posts to action with the
// CSRF token. Element ids: logout-form, logout-submit.
func ConfirmLogout(w http.ResponseWriter, action, token string) {
	render(w, http.StatusOK, "logout.html", data{Title: "Sign out", Action: action, Token: token, Status: http.StatusOK})
}

// Redirect answers with a redirect to location (302 Found) whose body says
// where the browser is going, for the rare browser that shows it. With
// stepUp the body explains that multi-factor authentication is needed.
// Element ids: redirecting, step-up (with stepUp), continue (the link).
func Redirect(w http.ResponseWriter, location string, stepUp bool) {
	w.Header().Set("Location", location)
	title := "Signing you in"
	if stepUp {
		title = "Multi-factor authentication needed"
	}
	render(w, http.StatusFound, "redirect.html", data{Title: title, Location: location, StepUp: stepUp, Status: http.StatusFound})
}

// MFARequired tells the user that their role or the page needs
// multi-factor authentication they did not complete (403). Element ids:
// mfa-required, problem-detail, sign-in.
func MFARequired(w http.ResponseWriter, r *http.Request, detail, signInURL string) {
	if !WantsHTML(r) {
		JSON(w, http.StatusForbidden, KindMFARequired, "Multi-factor authentication required", detail)
		return
	}
	render(w, http.StatusForbidden, "mfa.html", data{Title: "Multi-factor authentication required", Detail: detail,
		Location: signInURL, Status: http.StatusForbidden, Kind: "denied"})
}

// IdPUnavailable answers 503 when the identity provider cannot be reached
// (discovery or the token endpoint failed). Element ids: idp-unavailable,
// problem-detail, retry.
func IdPUnavailable(w http.ResponseWriter, r *http.Request, retryURL string) {
	const title = "Sign-in temporarily unavailable"
	const detail = "The identity provider cannot be reached right now. Your request was not lost: try again in a moment."
	w.Header().Set("Retry-After", "5")
	if !WantsHTML(r) {
		JSON(w, http.StatusServiceUnavailable, KindIdPUnavailable, title, detail)
		return
	}
	render(w, http.StatusServiceUnavailable, "idp_unavailable.html", data{Title: title, Detail: detail, Location: retryURL,
		Status: http.StatusServiceUnavailable, Kind: "unavailable"})
}

// LoginError answers a failed login (expired or foreign login state, an
// error from the IdP, a token that did not verify) with status. detail
// must be safe to show. Element ids: login-error, problem-detail, sign-in.
func LoginError(w http.ResponseWriter, r *http.Request, status int, detail, signInURL string) {
	const title = "Sign-in failed"
	if !WantsHTML(r) {
		JSON(w, status, KindLoginFailed, title, detail)
		return
	}
	render(w, status, "login_error.html", data{Title: title, Detail: detail, Location: signInURL, Status: status, Kind: "error"})
}

// Forbidden answers 403 for refusals of crmgate's own endpoints (a logout
// without proof that it came from this site). Element ids: access-denied,
// problem-title, problem-detail.
func Forbidden(w http.ResponseWriter, r *http.Request, detail string) {
	if !WantsHTML(r) {
		JSON(w, http.StatusForbidden, KindForbidden, "Access denied", detail)
		return
	}
	Problem(w, http.StatusForbidden, "Access denied", detail, "")
}

// JSON writes an RFC 9457 problem (application/problem+json) with the
// stable type urn:crmgate:problem:<kind>.
func JSON(w http.ResponseWriter, status int, kind, title, detail string) {
	body, err := json.Marshal(map[string]any{
		"type": problemTypePrefix + kind, "title": title, "status": status, "detail": detail,
	})
	if err != nil {
		body = []byte(`{"type":"` + problemTypePrefix + `internal","status":500}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WantsHTML reports whether the request should be answered with a page
// rather than problem+json: a browser navigation, or an Accept header that
// prefers HTML to JSON.
func WantsHTML(r *http.Request) bool {
	// The same negotiation as the proxy's, so a client gets the same kind
	// of answer from crmgate's own endpoints as from the pipeline.
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch mt = strings.ToLower(strings.TrimSpace(mt)); {
		case mt == "text/html" || mt == "application/xhtml+xml":
			return true
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			return false
		}
	}
	return false
}
