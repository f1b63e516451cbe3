package issuer

import (
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// csrfCookiePrefix names the cookie that binds a persona page to the browser
// that loaded it; the page id follows, so that several open pages (tabs) do
// not overwrite each other's token.
const csrfCookiePrefix = "issuer_csrf_"

// serveAuthorize validates an authorization request and shows the persona
// picker. Errors that make the redirect_uri untrustworthy are shown on a page;
// every later error goes back to the relying party, as RFC 6749 §4.1.2.1 says.
func (i *Issuer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := i.flow
	f.mu.Lock()
	c, known := f.client(q.Get("client_id"))
	f.mu.Unlock()
	if !known {
		i.errorPage(w, http.StatusBadRequest, "Unknown client", "The application that sent you here is not registered with this issuer.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(c.RedirectURIs, redirectURI) {
		i.errorPage(w, http.StatusBadRequest, "Unregistered redirect URI", "The application asked to return to an address it did not register, so this issuer will not send you there.")
		return
	}
	req := authRequest{clientID: c.ID, redirectURI: redirectURI, state: q.Get("state"), nonce: q.Get("nonce"),
		challenge: q.Get("code_challenge"), scope: q.Get("scope")}
	if code, desc := validateAuthRequest(q, &req); code != "" {
		i.redirectError(w, r, req, code, desc)
		return
	}

	csrf, err := randomToken()
	if err != nil {
		i.errorPage(w, http.StatusInternalServerError, "Sign-in unavailable", "The issuer could not start a sign-in.")
		return
	}
	now := i.now()
	f.mu.Lock()
	id, err := f.addPage(&page{req: req, csrf: csrf, expires: now.Add(pageTTL)}, now)
	personas := slices.Clone(f.personas)
	f.mu.Unlock()
	if err != nil {
		i.errorPage(w, http.StatusServiceUnavailable, "Sign-in unavailable", "Too many sign-ins are in progress; try again later.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: csrfCookiePrefix + id, Value: csrf, Path: i.prefix + authorizePath,
		MaxAge: int(pageTTL / time.Second), HttpOnly: true, Secure: i.secure(), SameSite: http.SameSiteStrictMode})
	data := pickerData{PageID: id, CSRF: csrf, Client: c.ID, MFAOnly: req.mfaOnly, Action: i.prefix + authorizePath}
	for _, p := range personas {
		data.Personas = append(data.Personas, pickerPersona{Name: p.Name, Description: p.Description,
			Password: !req.mfaOnly, MFA: p.MFA})
	}
	i.renderPage(w, http.StatusOK, pickerTemplate, data, redirectURI)
}

// validateAuthRequest checks everything but client and redirect URI,
// filling req; it returns an OAuth error code and description, or "".
func validateAuthRequest(q url.Values, req *authRequest) (code, desc string) {
	for _, k := range []string{"request", "request_uri"} {
		if q.Has(k) {
			return k + "_not_supported", "request objects are not supported"
		}
	}
	if q.Get("response_type") != "code" {
		return "unsupported_response_type", "only response_type=code is supported"
	}
	if !slices.Contains(strings.Fields(req.scope), "openid") {
		return "invalid_scope", "scope must include openid"
	}
	// state and nonce are optional in the specifications; this issuer
	// demands them so that a relying party that forgets its CSRF or replay
	// protection fails in tests instead of in production.
	if req.state == "" {
		return "invalid_request", "state is required"
	}
	if req.nonce == "" {
		return "invalid_request", "nonce is required"
	}
	// PKCE is mandatory and S256 only; an absent method means "plain".
	if q.Get("code_challenge_method") != "S256" {
		return "invalid_request", "code_challenge_method must be S256"
	}
	if !validChallenge(req.challenge) {
		return "invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)"
	}
	if v := q.Get("max_age"); v != "" {
		// Every sign-in here is fresh (auth_time is now), so any max_age
		// is satisfied; it only has to be well formed.
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			return "invalid_request", "max_age must be a non-negative integer"
		}
	}
	// The issuer keeps no sign-in session, so it can never answer without
	// showing the picker.
	if slices.Contains(strings.Fields(q.Get("prompt")), "none") {
		return "login_required", "this issuer always shows its sign-in page"
	}
	acrs := strings.Fields(q.Get("acr_values"))
	req.mfaOnly = slices.Contains(acrs, ACRMFA) && !slices.Contains(acrs, ACRPassword)
	return "", ""
}

// validChallenge reports whether s looks like base64url(SHA-256(...)).
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, ch := range s {
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// serveSignIn is the persona page's form post: it checks the page's CSRF
// token, then sends the browser back to the relying party with a code.
func (i *Issuer) serveSignIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		i.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-in form could not be read.")
		return
	}
	id := r.PostForm.Get("page")
	f := i.flow
	now := i.now()
	f.mu.Lock()
	pg, ok := f.pages[id]
	// A page is single-use whatever the outcome, so a leaked form cannot
	// be replayed or its CSRF token guessed at.
	delete(f.pages, id)
	f.mu.Unlock()
	if id != "" {
		http.SetCookie(w, &http.Cookie{Name: csrfCookiePrefix + id, Value: "", Path: i.prefix + authorizePath,
			MaxAge: -1, HttpOnly: true, Secure: i.secure(), SameSite: http.SameSiteStrictMode})
	}
	if !ok || !now.Before(pg.expires) {
		i.errorPage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in page is no longer valid. Go back to the application and start again.")
		return
	}
	cookie, err := r.Cookie(csrfCookiePrefix + id)
	if err != nil || !equal(cookie.Value, pg.csrf) || !equal(r.PostForm.Get("csrf"), pg.csrf) {
		i.errorPage(w, http.StatusForbidden, "Sign-in refused", "The sign-in form did not come from this browser's sign-in page.")
		return
	}
	level := r.PostForm.Get("level")
	f.mu.Lock()
	p, known := f.persona(r.PostForm.Get("persona"))
	f.mu.Unlock()
	switch {
	case !known:
		i.errorPage(w, http.StatusBadRequest, "Unknown persona", "There is no such persona.")
		return
	case level != "pwd" && level != "mfa",
		level == "mfa" && !p.MFA,
		level == "pwd" && pg.req.mfaOnly:
		i.errorPage(w, http.StatusBadRequest, "Sign-in refused", "That way of signing in is not offered for this request.")
		return
	}

	f.mu.Lock()
	code, err := f.addCode(&grant{req: pg.req, persona: p.Name, mfa: level == "mfa", authTime: now,
		expires: now.Add(CodeTTL)}, now)
	f.mu.Unlock()
	if err != nil {
		i.errorPage(w, http.StatusServiceUnavailable, "Sign-in unavailable", "Too many sign-ins are in progress; try again later.")
		return
	}
	i.redirect(w, r, pg.req.redirectURI, url.Values{"code": {code}, "state": {pg.req.state}, "iss": {i.url}})
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (i *Issuer) redirectError(w http.ResponseWriter, r *http.Request, req authRequest, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {desc}, "iss": {i.url}}
	if req.state != "" {
		v.Set("state", req.state)
	}
	i.redirect(w, r, req.redirectURI, v)
}

// redirect sends the browser to target with params added to its query
// (a registered redirect URI may carry a query of its own).
func (i *Issuer) redirect(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	u, err := url.Parse(target)
	if err != nil {
		i.errorPage(w, http.StatusInternalServerError, "Bad redirect", "The registered return address is malformed.")
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (i *Issuer) secure() bool { return strings.HasPrefix(i.url, "https://") }

// serveLogout is the end-session endpoint. It keeps no session to end; it
// only returns the browser to a registered post-logout address, which it
// must never do for an unregistered one (that would be an open redirect).
func (i *Issuer) serveLogout(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		i.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-out request could not be read.")
		return
	}
	clientID := r.Form.Get("client_id")
	if hint := r.Form.Get("id_token_hint"); hint != "" {
		aud, err := i.hintAudience(hint)
		if err != nil || (clientID != "" && clientID != aud) {
			i.errorPage(w, http.StatusBadRequest, "Bad sign-out request", "The sign-out request names a token this issuer did not issue to that application.")
			return
		}
		clientID = aud
	}
	target := r.Form.Get("post_logout_redirect_uri")
	if target == "" {
		i.errorPage(w, http.StatusOK, "Signed out", "You are signed out.")
		return
	}
	f := i.flow
	f.mu.Lock()
	c, known := f.client(clientID)
	f.mu.Unlock()
	if !known || !slices.Contains(c.PostLogoutRedirectURIs, target) {
		i.errorPage(w, http.StatusBadRequest, "Unregistered return address", "You are signed out, but the application asked to return to an address it did not register.")
		return
	}
	params := url.Values{}
	if s := r.Form.Get("state"); s != "" {
		params.Set("state", s)
	}
	i.redirect(w, r, target, params)
}

// hintAudience verifies an id_token_hint's signature (its expiry does not
// matter: hints are usually expired) and returns the client it was issued to.
func (i *Issuer) hintAudience(raw string) (string, error) {
	claims, err := i.verifyOwn(raw)
	if err != nil {
		return "", err
	}
	if claims["iss"] != i.url {
		return "", errors.New("id_token_hint: foreign issuer")
	}
	switch aud := claims["aud"].(type) {
	case string:
		return aud, nil
	case []any:
		if len(aud) == 1 {
			if s, ok := aud[0].(string); ok {
				return s, nil
			}
		}
	}
	return "", errors.New("id_token_hint: no single audience")
}

// pickerData feeds pickerTemplate.
type pickerData struct {
	PageID, CSRF, Client, Action string
	MFAOnly                      bool
	Personas                     []pickerPersona
}

type pickerPersona struct {
	Name, Description string
	Password, MFA     bool
}

var pickerTemplate = template.Must(template.New("picker").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — crmgate demo issuer</title>
<style>
body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}
.note{background:#fff4d6;border:1px solid #e6c36a;padding:.6rem .8rem;border-radius:4px}
.persona{border:1px solid #ccc;border-radius:6px;padding:.7rem 1rem;margin:.8rem 0;display:flex;justify-content:space-between;align-items:center;gap:1rem}
.persona p{margin:.2rem 0 0;color:#555}
button{font:inherit;padding:.35rem .7rem;margin-left:.3rem;cursor:pointer}
</style></head>
<body>
<h1>Sign in</h1>
<p class="note">Demo and test issuer: it checks no password. Never use it in production.</p>
<p>Application <code>{{.Client}}</code> asks you to sign in.{{if .MFAOnly}} It requires multi-factor authentication.{{end}} Choose a persona:</p>
{{range .Personas}}<form class="persona" method="post" action="{{$.Action}}">
<input type="hidden" name="page" value="{{$.PageID}}"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<input type="hidden" name="persona" value="{{.Name}}">
<div><strong>{{.Name}}</strong><p>{{.Description}}</p></div>
<div>{{if .Password}}<button type="submit" name="level" value="pwd" id="signin-{{.Name}}">sign in</button>{{end}}{{if .MFA}}<button type="submit" name="level" value="mfa" id="signin-mfa-{{.Name}}">sign in with MFA</button>{{end}}{{if not (or .Password .MFA)}}<em>MFA not available for this persona</em>{{end}}</div>
</form>
{{end}}</body></html>
`))

var messageTemplate = template.Must(template.New("message").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} — crmgate demo issuer</title>
<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}</style></head>
<body><h1 id="title">{{.Title}}</h1><p id="message">{{.Message}}</p></body></html>
`))

func (i *Issuer) errorPage(w http.ResponseWriter, status int, title, message string) {
	i.renderPage(w, status, messageTemplate, struct{ Title, Message string }{title, message}, "")
}

// renderPage writes an HTML page with headers that stop framing
// (clickjacking the sign-in buttons), caching and script. formTarget is the
// redirect URI a form post may end at: browsers apply form-action to the
// redirect that follows the post.
func (i *Issuer) renderPage(w http.ResponseWriter, status int, t *template.Template, data any, formTarget string) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "render page", http.StatusInternalServerError)
		return
	}
	formAction := "'self'"
	if u, err := url.Parse(formTarget); err == nil && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}
