package issuer_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/proxy/issuer"
)

const (
	clientID     = "crmgate"
	clientSecret = "s3cret"
	callback     = "https://rp.test/.crmgate/callback"
	afterLogout  = "https://rp.test/signed-out"
)

func testPersonas() []issuer.Persona {
	return []issuer.Persona{
		{Name: "pat", Description: "portal customer", MFA: false, Claims: map[string]any{
			"sub": "pat", "roles": []string{"customer"}, "account_id": "acc-1",
			// A persona's own amr/acr/nonce must never reach a token.
			"amr": []string{"hwk"}, "acr": "forged", "nonce": "forged"}},
		{Name: "sam", Description: "admin", MFA: true, Claims: map[string]any{"sub": "sam-id", "roles": []string{"admin"}}},
	}
}

// env is an issuer with the login flow, served over httptest, with a fake
// clock tests can move.
type env struct {
	iss   *issuer.Issuer
	url   string
	clock *atomic.Int64 // seconds added to time.Now
}

func newEnv(t testing.TB, opts ...issuer.Option) *env {
	t.Helper()
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	opts = append([]issuer.Option{issuer.WithPersonas(testPersonas()...), issuer.WithClient(issuer.Client{
		ID: clientID, Secret: clientSecret, RedirectURIs: []string{callback, "https://rp.test/cb?tenant=1"},
		PostLogoutRedirectURIs: []string{afterLogout}})}, opts...)
	iss, err := issuer.New(srv.URL, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e := &env{iss: iss, url: srv.URL, clock: &atomic.Int64{}}
	iss.Now = func() time.Time { return time.Now().Add(time.Duration(e.clock.Load()) * time.Second) }
	srv.Config.Handler = iss.Handler()
	return e
}

// browser is a cookie-keeping client that does not follow redirects, so a
// test sees where the issuer sends it.
func browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func pkce() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authParams is a valid authorization request; tests change one thing.
func authParams(challenge string) url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {callback},
		"scope": {"openid profile"}, "state": {"st-1"}, "nonce": {"n-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
}

type pickerPage struct {
	status  int
	body    string
	page    string
	csrf    string
	buttons []string // ids of the sign-in buttons
	header  http.Header
}

var (
	hiddenRE = regexp.MustCompile(`name="(page|csrf)" value="([^"]*)"`)
	buttonRE = regexp.MustCompile(`id="(signin-[^"]+)"`)
)

func getPicker(t testing.TB, c *http.Client, e *env, q url.Values) pickerPage {
	t.Helper()
	res, err := c.Get(e.url + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	p := pickerPage{status: res.StatusCode, body: string(b), header: res.Header}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		v := html.UnescapeString(m[2])
		if m[1] == "page" {
			p.page = v
		} else {
			p.csrf = v
		}
	}
	for _, m := range buttonRE.FindAllStringSubmatch(p.body, -1) {
		p.buttons = append(p.buttons, m[1])
	}
	return p
}

func postSignIn(t testing.TB, c *http.Client, e *env, form url.Values) *http.Response {
	t.Helper()
	res, err := c.PostForm(e.url+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// signIn runs the browser half of the flow and returns the code.
func signIn(t testing.TB, e *env, q url.Values, persona, level string) string {
	t.Helper()
	c := browser(t)
	p := getPicker(t, c, e, q)
	if p.status != http.StatusOK {
		t.Fatalf("picker status %d: %s", p.status, p.body)
	}
	res := postSignIn(t, c, e, url.Values{"page": {p.page}, "csrf": {p.csrf}, "persona": {persona}, "level": {level}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in status %d", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != strings.Split(q.Get("redirect_uri"), "?")[0] {
		t.Fatalf("redirected to %s", loc)
	}
	if loc.Query().Get("state") != q.Get("state") || loc.Query().Get("iss") != e.url {
		t.Fatalf("redirect lacks state/iss: %s", loc)
	}
	return loc.Query().Get("code")
}

type tokenResult struct {
	status int
	body   map[string]any
}

func (r tokenResult) errCode() string { s, _ := r.body["error"].(string); return s }

func postToken(t testing.TB, e *env, form url.Values, basic bool) tokenResult {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(clientID, clientSecret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return tokenResult{res.StatusCode, body}
}

func codeForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}, "code_verifier": {verifier}}
}

// TestLoginFlowWithOAuth2AndGoOIDC drives the flow as a real relying party
// does (x/oauth2 for the exchange, go-oidc for the ID token) with both
// client authentication methods and both sign-in levels.
func TestLoginFlowWithOAuth2AndGoOIDC(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: clientID})
	cases := []struct {
		persona, level string
		style          oauth2.AuthStyle
		wantSub        string
		wantAMR        []string
		wantACR        string
	}{
		{"pat", "pwd", oauth2.AuthStyleInHeader, "pat", []string{"pwd"}, issuer.ACRPassword},
		{"sam", "mfa", oauth2.AuthStyleInParams, "sam-id", []string{"pwd", "otp", "mfa"}, issuer.ACRMFA},
		{"sam", "pwd", oauth2.AuthStyleInHeader, "sam-id", []string{"pwd"}, issuer.ACRPassword},
	}
	for _, tc := range cases {
		t.Run(tc.persona+"/"+tc.level, func(t *testing.T) {
			t.Parallel()
			ep := provider.Endpoint()
			ep.AuthStyle = tc.style
			conf := oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: ep, RedirectURL: callback,
				Scopes: []string{oidc.ScopeOpenID}}
			pv := oauth2.GenerateVerifier()
			authURL, err := url.Parse(conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(pv), oidc.Nonce("n-1")))
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now().Unix()
			code := signIn(t, e, authURL.Query(), tc.persona, tc.level)
			tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pv))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.RefreshToken == "" || tok.AccessToken == "" || tok.Expiry.Before(time.Now().Add(50*time.Minute)) {
				t.Fatalf("token %+v", tok)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := verifier.Verify(ctx, raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			var c struct {
				Nonce    string   `json:"nonce"`
				AMR      []string `json:"amr"`
				ACR      string   `json:"acr"`
				AuthTime int64    `json:"auth_time"`
				AZP      string   `json:"azp"`
				Roles    []string `json:"roles"`
			}
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			if idt.Subject != tc.wantSub || c.Nonce != "n-1" || !slices.Equal(c.AMR, tc.wantAMR) || c.ACR != tc.wantACR ||
				c.AZP != clientID || c.AuthTime < before || c.AuthTime > time.Now().Unix() || len(c.Roles) != 1 {
				t.Fatalf("sub %q claims %+v", idt.Subject, c)
			}
		})
	}
}

func TestDiscoveryAdvertisesTheFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res, err := http.Get(e.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"authorization_endpoint": e.url + "/authorize", "token_endpoint": e.url + "/token",
		"end_session_endpoint": e.url + "/logout"} {
		if d[k] != want {
			t.Errorf("%s = %v, want %s", k, d[k], want)
		}
	}
	if m, _ := d["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v", d["code_challenge_methods_supported"])
	}
	if g, _ := d["grant_types_supported"].([]any); len(g) != 2 {
		t.Errorf("grant_types_supported = %v", d["grant_types_supported"])
	}
}

// TestAuthorizeRefusesBadRequests: a request whose client or redirect URI
// is wrong gets a page and never a redirect; other errors go back to the
// registered redirect URI with the OAuth error code.
func TestAuthorizeRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, challenge := pkce()
	cases := []struct {
		name      string
		change    func(q url.Values)
		wantPage  int    // status of an error page, or 0
		wantError string // error code in the redirect
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "evil") }, http.StatusBadRequest, ""},
		{"no redirect uri", func(q url.Values) { q.Del("redirect_uri") }, http.StatusBadRequest, ""},
		{"redirect uri trailing slash", func(q url.Values) { q.Set("redirect_uri", callback+"/") }, http.StatusBadRequest, ""},
		{"redirect uri other host", func(q url.Values) { q.Set("redirect_uri", "https://evil.test/.crmgate/callback") }, http.StatusBadRequest, ""},
		{"redirect uri userinfo trick", func(q url.Values) { q.Set("redirect_uri", "https://rp.test@evil.test/.crmgate/callback") }, http.StatusBadRequest, ""},
		{"redirect uri http", func(q url.Values) { q.Set("redirect_uri", strings.Replace(callback, "https", "http", 1)) }, http.StatusBadRequest, ""},
		{"redirect uri case", func(q url.Values) { q.Set("redirect_uri", strings.ToUpper(callback)) }, http.StatusBadRequest, ""},
		{"redirect uri extra query", func(q url.Values) { q.Set("redirect_uri", callback+"?next=https://evil.test") }, http.StatusBadRequest, ""},
		{"redirect uri path suffix", func(q url.Values) { q.Set("redirect_uri", callback+"/../../evil") }, http.StatusBadRequest, ""},
		{"redirect uri with port", func(q url.Values) { q.Set("redirect_uri", "https://rp.test:443/.crmgate/callback") }, http.StatusBadRequest, ""},
		{"no challenge", func(q url.Values) { q.Del("code_challenge") }, 0, "invalid_request"},
		{"plain challenge", func(q url.Values) { q.Set("code_challenge_method", "plain") }, 0, "invalid_request"},
		{"no challenge method", func(q url.Values) { q.Del("code_challenge_method") }, 0, "invalid_request"},
		{"short challenge", func(q url.Values) { q.Set("code_challenge", "abc") }, 0, "invalid_request"},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "id_token token") }, 0, "unsupported_response_type"},
		{"no openid scope", func(q url.Values) { q.Set("scope", "profile") }, 0, "invalid_scope"},
		{"no nonce", func(q url.Values) { q.Del("nonce") }, 0, "invalid_request"},
		{"bad max_age", func(q url.Values) { q.Set("max_age", "-1") }, 0, "invalid_request"},
		{"prompt none", func(q url.Values) { q.Set("prompt", "none") }, 0, "login_required"},
		{"request object", func(q url.Values) { q.Set("request", "eyJ") }, 0, "request_not_supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := authParams(challenge)
			tc.change(q)
			p := getPicker(t, browser(t), e, q)
			if tc.wantPage != 0 {
				if p.status != tc.wantPage || p.header.Get("Location") != "" || p.page != "" {
					t.Fatalf("status %d location %q page %q", p.status, p.header.Get("Location"), p.page)
				}
				return
			}
			loc, _ := url.Parse(p.header.Get("Location"))
			if p.status != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), callback+"?") ||
				loc.Query().Get("error") != tc.wantError || loc.Query().Get("state") != "st-1" || loc.Query().Has("code") {
				t.Fatalf("status %d location %q", p.status, p.header.Get("Location"))
			}
		})
	}
	t.Run("registered uri with its own query keeps it", func(t *testing.T) {
		t.Parallel()
		q := authParams(challenge)
		q.Set("redirect_uri", "https://rp.test/cb?tenant=1")
		code := signIn(t, e, q, "pat", "pwd")
		if code == "" {
			t.Fatal("no code")
		}
	})
}

// TestPickerPage checks the page the user sees: personas, buttons, the
// MFA-only mode and the headers that keep it from being framed or cached.
func TestPickerPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, challenge := pkce()
	cases := []struct {
		name, acr   string
		wantButtons []string
	}{
		{"no acr", "", []string{"signin-pat", "signin-sam", "signin-mfa-sam"}},
		{"password acr", issuer.ACRPassword, []string{"signin-pat", "signin-sam", "signin-mfa-sam"}},
		{"mfa acr only", issuer.ACRMFA, []string{"signin-mfa-sam"}},
		{"mfa or password", issuer.ACRMFA + " " + issuer.ACRPassword, []string{"signin-pat", "signin-sam", "signin-mfa-sam"}},
		{"unknown acr", "urn:other", []string{"signin-pat", "signin-sam", "signin-mfa-sam"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := authParams(challenge)
			if tc.acr != "" {
				q.Set("acr_values", tc.acr)
			}
			q.Set("max_age", "0")
			q.Set("prompt", "login")
			p := getPicker(t, browser(t), e, q)
			if p.status != http.StatusOK || !slices.Equal(p.buttons, tc.wantButtons) {
				t.Fatalf("status %d buttons %v", p.status, p.buttons)
			}
			if p.page == "" || p.csrf == "" {
				t.Fatal("form lacks page id or csrf token")
			}
			for h, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
				if p.header.Get(h) != want {
					t.Errorf("%s = %q", h, p.header.Get(h))
				}
			}
			csp := p.header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "form-action 'self' https://rp.test") {
				t.Errorf("csp %q", csp)
			}
			if !strings.Contains(p.body, "portal customer") || !strings.Contains(p.body, "Never use it in production") {
				t.Errorf("page lacks persona description or warning")
			}
		})
	}
}

// flipFirst changes a token's first character to a different one (a fixed
// replacement would leave one token in 64 unchanged, and the test flaky).
func flipFirst(tok string) string {
	c := byte('x')
	if tok[0] == c {
		c = 'y'
	}
	return string(c) + tok[1:]
}

// TestSignInFormRefusals tries to get a code without a genuine page post.
func TestSignInFormRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, challenge := pkce()
	cases := []struct {
		name   string
		acr    string
		tamper func(t *testing.T, c *http.Client, form url.Values)
		want   int
	}{
		{"wrong csrf in form", "", func(_ *testing.T, _ *http.Client, f url.Values) { f.Set("csrf", flipFirst(f.Get("csrf"))) }, http.StatusForbidden},
		{"no csrf in form", "", func(_ *testing.T, _ *http.Client, f url.Values) { f.Del("csrf") }, http.StatusForbidden},
		{"post from another browser (no cookie)", "", func(_ *testing.T, c *http.Client, _ url.Values) { c.Jar, _ = cookiejar.New(nil) }, http.StatusForbidden},
		{"cookie of another page", "", func(t *testing.T, c *http.Client, f url.Values) {
			// The attacker loads a page of their own and posts its
			// token with the victim's page id.
			other := getPicker(t, browser(t), e, authParams(challenge))
			f.Set("csrf", other.csrf)
		}, http.StatusForbidden},
		{"attacker's own page posted in the victim's browser", "", func(t *testing.T, c *http.Client, f url.Values) {
			other := getPicker(t, browser(t), e, authParams(challenge))
			f.Set("page", other.page)
			f.Set("csrf", other.csrf)
		}, http.StatusForbidden},
		{"unknown page", "", func(_ *testing.T, _ *http.Client, f url.Values) { f.Set("page", "nope") }, http.StatusBadRequest},
		{"unknown persona", "", func(_ *testing.T, _ *http.Client, f url.Values) { f.Set("persona", "root") }, http.StatusBadRequest},
		{"mfa for a persona without mfa", "", func(_ *testing.T, _ *http.Client, f url.Values) { f.Set("level", "mfa") }, http.StatusBadRequest},
		{"unknown level", "", func(_ *testing.T, _ *http.Client, f url.Values) { f.Set("level", "admin") }, http.StatusBadRequest},
		{"password when mfa is required", issuer.ACRMFA, func(_ *testing.T, _ *http.Client, f url.Values) {
			f.Set("persona", "sam")
			f.Set("level", "pwd")
		}, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := browser(t)
			q := authParams(challenge)
			if tc.acr != "" {
				q.Set("acr_values", tc.acr)
			}
			p := getPicker(t, c, e, q)
			form := url.Values{"page": {p.page}, "csrf": {p.csrf}, "persona": {"pat"}, "level": {"pwd"}}
			tc.tamper(t, c, form)
			res := postSignIn(t, c, e, form)
			if res.StatusCode != tc.want || res.Header.Get("Location") != "" {
				t.Fatalf("status %d location %q", res.StatusCode, res.Header.Get("Location"))
			}
			if form.Get("page") != p.page {
				return
			}
			// The page is spent by the failed attempt: the genuine
			// post no longer works either.
			res = postSignIn(t, c, e, url.Values{"page": {p.page}, "csrf": {p.csrf}, "persona": {"pat"}, "level": {"pwd"}})
			if res.StatusCode == http.StatusSeeOther {
				t.Fatal("page usable after a refused post")
			}
		})
	}
	t.Run("page used twice", func(t *testing.T) {
		t.Parallel()
		c := browser(t)
		p := getPicker(t, c, e, authParams(challenge))
		form := url.Values{"page": {p.page}, "csrf": {p.csrf}, "persona": {"pat"}, "level": {"pwd"}}
		if res := postSignIn(t, c, e, form); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("first post %d", res.StatusCode)
		}
		if res := postSignIn(t, c, e, form); res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Fatalf("second post %d %q", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

// TestSignInPageExpires is separate because it moves the shared clock.
func TestSignInPageExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, challenge := pkce()
	c := browser(t)
	p := getPicker(t, c, e, authParams(challenge))
	e.clock.Add(11 * 60)
	res := postSignIn(t, c, e, url.Values{"page": {p.page}, "csrf": {p.csrf}, "persona": {"pat"}, "level": {"pwd"}})
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
		t.Fatalf("status %d location %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestTokenEndpointRefusals tries to redeem codes it should not.
func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := issuer.Client{ID: "other", Secret: "other-secret", RedirectURIs: []string{callback}}
	if err := e.iss.RegisterClient(other); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		form       func(code, verifier string) url.Values
		basic      bool
		wantStatus int
		wantError  string
	}{
		{"wrong verifier", func(c, _ string) url.Values { v, _ := pkce(); return codeForm(c, v) }, true, 400, "invalid_grant"},
		{"no verifier", func(c, _ string) url.Values { return codeForm(c, "") }, true, 400, "invalid_grant"},
		{"challenge as verifier", func(c, _ string) url.Values {
			return codeForm(c, "") // replaced in the loop: the challenge is not known here
		}, true, 400, "invalid_grant"},
		{"verifier with bad characters", func(c, v string) url.Values { return codeForm(c, v[:42]+"+"+v[43:]) }, true, 400, "invalid_grant"},
		{"other redirect uri", func(c, v string) url.Values {
			f := codeForm(c, v)
			f.Set("redirect_uri", "https://rp.test/cb?tenant=1")
			return f
		}, true, 400, "invalid_grant"},
		{"no redirect uri", func(c, v string) url.Values { f := codeForm(c, v); f.Del("redirect_uri"); return f }, true, 400, "invalid_grant"},
		{"unknown code", func(_, v string) url.Values { return codeForm("made-up", v) }, true, 400, "invalid_grant"},
		{"wrong secret", func(c, v string) url.Values {
			f := codeForm(c, v)
			f.Set("client_id", clientID)
			f.Set("client_secret", "guess")
			return f
		}, false, 401, "invalid_client"},
		{"no client authentication", func(c, v string) url.Values { f := codeForm(c, v); f.Set("client_id", clientID); return f }, false, 401, "invalid_client"},
		{"unknown client with empty secret", func(c, v string) url.Values {
			f := codeForm(c, v)
			f.Set("client_id", "ghost")
			f.Set("client_secret", "")
			return f
		}, false, 401, "invalid_client"},
		{"both authentication methods", func(c, v string) url.Values { f := codeForm(c, v); f.Set("client_secret", clientSecret); return f }, true, 400, "invalid_request"},
		{"code of another client", func(c, v string) url.Values {
			f := codeForm(c, v)
			f.Set("client_id", other.ID)
			f.Set("client_secret", other.Secret)
			return f
		}, false, 400, "invalid_grant"},
		{"implicit grant type", func(c, v string) url.Values { f := codeForm(c, v); f.Set("grant_type", "password"); return f }, true, 400, "unsupported_grant_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			verifier, challenge := pkce()
			code := signIn(t, e, authParams(challenge), "pat", "pwd")
			form := tc.form(code, verifier)
			if tc.name == "challenge as verifier" {
				form.Set("code_verifier", challenge)
			}
			got := postToken(t, e, form, tc.basic)
			if got.status != tc.wantStatus || got.errCode() != tc.wantError || got.body["id_token"] != nil {
				t.Fatalf("status %d body %v", got.status, got.body)
			}
			if tc.wantError == "invalid_grant" && tc.name != "unknown code" {
				// The failed attempt spent the code, so the right
				// verifier cannot be tried after a wrong one.
				if again := postToken(t, e, codeForm(code, verifier), true); again.status != 400 {
					t.Fatalf("code still usable after a failed attempt: %v", again.body)
				}
			}
		})
	}
}

// TestCodesAreSingleUseAndShortLived: a code works once, a replay revokes
// the refresh token the first redemption yielded, and codes die after 60 s.
func TestCodesAreSingleUseAndShortLived(t *testing.T) {
	t.Parallel()
	t.Run("replay", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		verifier, challenge := pkce()
		code := signIn(t, e, authParams(challenge), "sam", "mfa")
		first := postToken(t, e, codeForm(code, verifier), true)
		if first.status != 200 {
			t.Fatalf("first redemption: %v", first.body)
		}
		replay := postToken(t, e, codeForm(code, verifier), true)
		if replay.status != 400 || replay.errCode() != "invalid_grant" {
			t.Fatalf("replay: %d %v", replay.status, replay.body)
		}
		rt, _ := first.body["refresh_token"].(string)
		refreshed := postToken(t, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, true)
		if refreshed.status != 400 || refreshed.errCode() != "invalid_grant" {
			t.Fatalf("refresh token survived a code replay: %v", refreshed.body)
		}
	})
	for _, tc := range []struct {
		name    string
		advance int64
		ok      bool
	}{{"at 59s", 59, true}, {"at 60s", 60, false}, {"at 61s", 61, false}} {
		t.Run("expiry "+tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			verifier, challenge := pkce()
			code := signIn(t, e, authParams(challenge), "pat", "pwd")
			e.clock.Add(tc.advance)
			got := postToken(t, e, codeForm(code, verifier), true)
			if (got.status == 200) != tc.ok {
				t.Fatalf("status %d body %v", got.status, got.body)
			}
		})
	}
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

// TestRefreshRotation: every refresh returns a new token and retires the
// old one; presenting a retired one ends the whole sign-in.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, issuer.WithTokenTTL(5*time.Minute))
	verifier, challenge := pkce()
	code := signIn(t, e, authParams(challenge), "sam", "mfa")
	first := postToken(t, e, codeForm(code, verifier), true)
	if first.status != 200 || first.body["expires_in"] != float64(300) {
		t.Fatalf("redeem: %v", first.body)
	}
	firstID := payload(t, first.body["id_token"].(string))
	rt1 := first.body["refresh_token"].(string)

	// A role change at the "IdP" must reach the relying party on refresh.
	if err := e.iss.UpdatePersona(issuer.Persona{Name: "sam", MFA: true, Claims: map[string]any{"sub": "sam-id", "roles": []string{"auditor"}}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(120)
	second := postToken(t, e, refreshForm(rt1), false)
	if second.status == 200 {
		t.Fatal("refresh without client authentication succeeded")
	}
	second = postToken(t, e, refreshForm(rt1), true)
	if second.status != 200 {
		t.Fatalf("refresh: %v", second.body)
	}
	rt2 := second.body["refresh_token"].(string)
	if rt2 == "" || rt2 == rt1 {
		t.Fatal("refresh token not rotated")
	}
	c := payload(t, second.body["id_token"].(string))
	if c["nonce"] != nil || c["auth_time"] != firstID["auth_time"] || c["acr"] != issuer.ACRMFA || c["iat"] == firstID["iat"] {
		t.Fatalf("refreshed id token claims %v (first %v)", c, firstID)
	}
	if roles, _ := c["roles"].([]any); len(roles) != 1 || roles[0] != "auditor" {
		t.Fatalf("refreshed roles %v", c["roles"])
	}

	t.Run("other client cannot use it", func(t *testing.T) {
		if err := e.iss.RegisterClient(issuer.Client{ID: "other", Secret: "x", RedirectURIs: []string{callback}}); err != nil {
			t.Fatal(err)
		}
		f := refreshForm(rt2)
		f.Set("client_id", "other")
		f.Set("client_secret", "x")
		if got := postToken(t, e, f, false); got.status != 400 || got.errCode() != "invalid_grant" {
			t.Fatalf("%d %v", got.status, got.body)
		}
	})
	t.Run("reuse of a rotated token revokes the family", func(t *testing.T) {
		if got := postToken(t, e, refreshForm(rt1), true); got.status != 400 || got.errCode() != "invalid_grant" {
			t.Fatalf("old token accepted: %v", got.body)
		}
		if got := postToken(t, e, refreshForm(rt2), true); got.status != 400 {
			t.Fatalf("newest token survived reuse of an old one: %v", got.body)
		}
	})
	t.Run("chain ends with the sign-in", func(t *testing.T) {
		verifier, challenge := pkce()
		code := signIn(t, e, authParams(challenge), "pat", "pwd")
		rt := postToken(t, e, codeForm(code, verifier), true).body["refresh_token"].(string)
		for range 3 {
			e.clock.Add(int64((issuer.RefreshTTL / 3) / time.Second))
			got := postToken(t, e, refreshForm(rt), true)
			if got.status != 200 {
				return // refused at or before RefreshTTL after sign-in
			}
			rt = got.body["refresh_token"].(string)
		}
		t.Fatal("rotation extended the sign-in past RefreshTTL")
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	verifier, challenge := pkce()
	code := signIn(t, e, authParams(challenge), "pat", "pwd")
	idToken := postToken(t, e, codeForm(code, verifier), true).body["id_token"].(string)
	foreign, err := e.iss.Forge(issuer.ForgeForeignKey, map[string]any{"sub": "pat", "aud": clientID})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name         string
		q            url.Values
		wantStatus   int
		wantLocation string
	}{
		{"by client id", url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {afterLogout}, "state": {"s"}}, 303, afterLogout + "?state=s"},
		{"by id token hint", url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {afterLogout}}, 303, afterLogout},
		{"no return address", url.Values{"client_id": {clientID}}, 200, ""},
		{"unregistered return address", url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {"https://evil.test/"}}, 400, ""},
		{"login callback is not a logout address", url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {callback}}, 400, ""},
		{"return address without client", url.Values{"post_logout_redirect_uri": {afterLogout}}, 400, ""},
		{"forged hint", url.Values{"id_token_hint": {foreign}, "post_logout_redirect_uri": {afterLogout}}, 400, ""},
		{"hint for another client", url.Values{"id_token_hint": {idToken}, "client_id": {"other"}, "post_logout_redirect_uri": {afterLogout}}, 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := browser(t).Get(e.url + "/logout?" + tc.q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.wantStatus || res.Header.Get("Location") != tc.wantLocation {
				t.Fatalf("status %d location %q", res.StatusCode, res.Header.Get("Location"))
			}
		})
	}
}

func TestNewValidatesFlowOptions(t *testing.T) {
	t.Parallel()
	good := issuer.Client{ID: "c", Secret: "s", RedirectURIs: []string{callback}}
	cases := []struct {
		name string
		opts []issuer.Option
	}{
		{"duplicate persona", []issuer.Option{issuer.WithPersonas(issuer.Persona{Name: "a"}, issuer.Persona{Name: "a"})}},
		{"persona name with markup", []issuer.Option{issuer.WithPersonas(issuer.Persona{Name: `a"><script>`})}},
		{"persona with non-string sub", []issuer.Option{issuer.WithPersonas(issuer.Persona{Name: "a", Claims: map[string]any{"sub": 7}})}},
		{"client without personas", []issuer.Option{issuer.WithClient(good)}},
		{"client without secret", []issuer.Option{issuer.WithPersonas(issuer.Persona{Name: "a"}), issuer.WithClient(issuer.Client{ID: "c", RedirectURIs: []string{callback}})}},
		{"client without redirect", []issuer.Option{issuer.WithPersonas(issuer.Persona{Name: "a"}), issuer.WithClient(issuer.Client{ID: "c", Secret: "s"})}},
		{"relative redirect", []issuer.Option{issuer.WithPersonas(issuer.Persona{Name: "a"}), issuer.WithClient(issuer.Client{ID: "c", Secret: "s", RedirectURIs: []string{"/cb"}})}},
		{"redirect with fragment", []issuer.Option{issuer.WithPersonas(issuer.Persona{Name: "a"}), issuer.WithClient(issuer.Client{ID: "c", Secret: "s", RedirectURIs: []string{callback + "#x"}})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := issuer.New("http://issuer.test", tc.opts...); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	t.Run("RegisterClient without personas", func(t *testing.T) {
		t.Parallel()
		iss, err := issuer.New("http://issuer.test")
		if err != nil {
			t.Fatal(err)
		}
		if err := iss.RegisterClient(good); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("UpdatePersona unknown", func(t *testing.T) {
		t.Parallel()
		iss, err := issuer.New("http://issuer.test", issuer.WithPersonas(issuer.Persona{Name: "a"}))
		if err != nil {
			t.Fatal(err)
		}
		if err := iss.UpdatePersona(issuer.Persona{Name: "b"}); err == nil {
			t.Fatal("accepted")
		}
	})
}

// BenchmarkSignInAndRedeem measures one whole login at the issuer: the
// picker page, the form post and the code redemption (RS256 signing).
func BenchmarkSignInAndRedeem(b *testing.B) {
	e := newEnv(b)
	for b.Loop() {
		verifier, challenge := pkce()
		code := signIn(b, e, authParams(challenge), "sam", "mfa")
		if got := postToken(b, e, codeForm(code, verifier), true); got.status != http.StatusOK {
			b.Fatalf("redeem: %v", got.body)
		}
	}
}
