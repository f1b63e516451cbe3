package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/proxy/login"
)

// loginCorpus is crmgate with browser sign-in through the in-process
// issuer's persona page, in front of the SuiteCRM emulator.
type loginCorpus struct {
	t        *testing.T
	proxyURL string
	upstream *recorder
}

func newLoginCorpus(t *testing.T) *loginCorpus {
	t.Helper()
	idp := httptest.NewUnstartedServer(nil)
	idp.Start()
	t.Cleanup(idp.Close)
	px := httptest.NewUnstartedServer(nil)
	px.Start()
	t.Cleanup(px.Close)

	var personas []issuer.Persona
	for _, p := range demo.Personas() {
		if p.Name == "alice" || p.Name == "sam" {
			personas = append(personas, issuer.Persona{Name: p.Name, Description: p.Who, Claims: p.Claims, MFA: true})
		}
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	client := issuer.Client{ID: "crmgate-corpus", Secret: base64.RawURLEncoding.EncodeToString(secret),
		RedirectURIs: []string{px.URL + login.CallbackPath}, PostLogoutRedirectURIs: []string{px.URL + login.SignedOutPath}}
	iss, err := issuer.New(idp.URL, issuer.WithPersonas(personas...), issuer.WithClient(client))
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = iss.Handler()

	rec := &recorder{next: emulator.NewSuiteCRM(emulator.DepartmentStore(), emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret"})}
	up := httptest.NewServer(rec)
	t.Cleanup(up.Close)

	cfg := demo.Config("127.0.0.1:1", "127.0.0.1:2", up.URL, idp.URL, "admin-token", "s3cret")
	cfg.PublicURL = px.URL
	cfg.Identity.OIDC = config.OIDC{Issuer: idp.URL, ClientID: client.ID, ClientSecret: client.Secret}
	cfg.Identity.MFA.ACR = []string{issuer.ACRMFA}
	key := make([]byte, config.EncryptionKeySize)
	_, _ = rand.Read(key)
	cfg.Session.EncryptionKey = base64.StdEncoding.EncodeToString(key)
	config.ApplyDefaults(cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := app.Build(context.Background(), cfg, app.Deps{PolicyFS: demoPolicy(t), DecisionLogWriter: &syncBuffer{}, Version: "test"})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	px.Config.Handler = a.Handler
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	return &loginCorpus{t: t, proxyURL: px.URL, upstream: rec}
}

// browser is a cookie-keeping client that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

var (
	personaAction = regexp.MustCompile(`action="([^"]+)"`)
	personaPage   = regexp.MustCompile(`name="page" value="([^"]+)"`)
	personaCSRF   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// toCallback runs a sign-in as persona up to the issuer's redirect back to
// crmgate and returns that callback URL, not yet visited.
func (lc *loginCorpus) toCallback(c *http.Client, rd, persona string) string {
	t := lc.t
	res, _ := fetch(t, c, "GET", lc.proxyURL+login.LoginPath+"?rd="+url.QueryEscape(rd), nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("login start: %d", res.StatusCode)
	}
	authz := res.Header.Get("Location")
	res, page := fetch(t, c, "GET", authz, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("persona page: %d", res.StatusCode)
	}
	act, pg, csrf := personaAction.FindStringSubmatch(page), personaPage.FindStringSubmatch(page), personaCSRF.FindStringSubmatch(page)
	if act == nil || pg == nil || csrf == nil {
		t.Fatalf("persona page has no form: %.500s", page)
	}
	action, _ := url.Parse(authz)
	target, _ := action.Parse(strings.ReplaceAll(act[1], "&amp;", "&"))
	res, _ = fetch(t, c, "POST", target.String(), url.Values{"page": {pg[1]}, "csrf": {csrf[1]}, "persona": {persona}, "level": {"mfa"}})
	if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in post: %d", res.StatusCode)
	}
	return res.Header.Get("Location")
}

// signIn completes a sign-in and returns where crmgate sends the browser.
func (lc *loginCorpus) signIn(c *http.Client, rd string) string {
	cb := lc.toCallback(c, rd, "alice")
	res, _ := fetch(lc.t, c, "GET", cb, nil)
	if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
		lc.t.Fatalf("callback: %d", res.StatusCode)
	}
	return res.Header.Get("Location")
}

// apiStatus is what an API call with the browser's cookies gets.
func (lc *loginCorpus) apiStatus(c *http.Client) int {
	res, _ := fetch(lc.t, c, "GET", lc.proxyURL+"/Api/V8/module/Accounts", nil, "Accept", "application/json")
	return res.StatusCode
}

func (lc *loginCorpus) sessionCookie(c *http.Client) *http.Cookie {
	u, _ := url.Parse(lc.proxyURL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == config.DefaultCookieName {
			return ck
		}
	}
	return nil
}

// TestBypassLogin attacks browser sign-in: open redirects through the
// return URL, login CSRF and code replay on the callback, logout CSRF, and
// tampered cookies.
func TestBypassLogin(t *testing.T) {
	t.Parallel()
	lc := newLoginCorpus(t)
	nothingUpstream := func(t *testing.T) {
		t.Helper()
		if got := lc.upstream.crmRequests(); len(got) != 0 {
			t.Errorf("%d request(s) reached the CRM, first %s %s", len(got), got[0].Method, got[0].Path)
		}
	}
	for _, rd := range []string{
		"https://evil.example/", "//evil.example/", "///evil.example/", `/\evil.example`, "/%2f%2fevil.example",
		"/%252f%252fevil.example", "/%5cevil.example", "https:evil.example", "javascript:alert(1)",
		"/.crmgate/logout", "\t//evil.example", " //evil.example", "/x#@evil.example", "/%09/evil.example",
		"/\u3002evil.example", "http://" + "127.0.0.1:1/",
	} {
		t.Run("open-redirect/"+rd, func(t *testing.T) {
			lc.t = t
			lc.upstream.reset()
			loc := lc.signIn(browser(t), rd)
			if loc != "/" {
				t.Fatalf("after sign-in the browser goes to %q, want /", loc)
			}
			nothingUpstream(t)
		})
	}
	t.Run("open-redirect/a same-origin path is kept", func(t *testing.T) {
		lc.t = t
		if loc := lc.signIn(browser(t), "/Api/V8/module/Accounts?x=1"); loc != "/Api/V8/module/Accounts?x=1" {
			t.Fatalf("return URL %q", loc)
		}
	})

	t.Run("csrf/callback without the browser's login state", func(t *testing.T) {
		lc.t = t
		c := browser(t)
		res, _ := fetch(t, c, "GET", lc.proxyURL+login.CallbackPath+"?code=x&state=y", nil)
		if res.StatusCode < 400 || lc.sessionCookie(c) != nil {
			t.Fatalf("callback answered %d, session cookie %v", res.StatusCode, lc.sessionCookie(c))
		}
		if s := lc.apiStatus(c); s != http.StatusUnauthorized {
			t.Fatalf("API with the attacker's callback: %d", s)
		}
	})
	t.Run("csrf/attacker's code in the victim's browser", func(t *testing.T) {
		lc.t = t
		cb := lc.toCallback(browser(t), "/", "sam") // the attacker's own sign-in, stopped before the callback
		victim := browser(t)
		res, _ := fetch(t, victim, "GET", cb, nil)
		if res.StatusCode < 400 || lc.sessionCookie(victim) != nil {
			t.Fatalf("the victim's browser was signed in as the attacker: %d", res.StatusCode)
		}
	})
	t.Run("csrf/state altered", func(t *testing.T) {
		lc.t = t
		c := browser(t)
		cb, _ := url.Parse(lc.toCallback(c, "/", "alice"))
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		cb.RawQuery = q.Encode()
		res, _ := fetch(t, c, "GET", cb.String(), nil)
		if res.StatusCode < 400 || lc.sessionCookie(c) != nil {
			t.Fatalf("altered state accepted: %d", res.StatusCode)
		}
	})
	t.Run("csrf/callback replayed", func(t *testing.T) {
		lc.t = t
		c := browser(t)
		cb := lc.toCallback(c, "/", "alice")
		if res, _ := fetch(t, c, "GET", cb, nil); res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
			t.Fatalf("first callback: %d", res.StatusCode)
		}
		other := browser(t)
		u, _ := url.Parse(lc.proxyURL)
		other.Jar.SetCookies(u, c.Jar.Cookies(u)) // even with the same cookies
		other.Jar.SetCookies(u, []*http.Cookie{{Name: config.DefaultCookieName, Value: "", MaxAge: -1}})
		if res, _ := fetch(t, other, "GET", cb, nil); res.StatusCode < 400 || lc.sessionCookie(other) != nil {
			t.Fatalf("replayed callback signed in again: %d", res.StatusCode)
		}
	})
	t.Run("csrf/idp error on the callback", func(t *testing.T) {
		lc.t = t
		c := browser(t)
		res, _ := fetch(t, c, "GET", lc.proxyURL+login.CallbackPath+"?error=access_denied&state=y", nil)
		if res.StatusCode < 400 || lc.sessionCookie(c) != nil {
			t.Fatalf("error callback: %d", res.StatusCode)
		}
	})
	t.Run("csrf/cross-site logout without the form token", func(t *testing.T) {
		lc.t = t
		c := browser(t)
		lc.signIn(c, "/")
		fetch(t, c, "POST", lc.proxyURL+login.LogoutPath, url.Values{}, "Origin", "https://evil.example")
		if s := lc.apiStatus(c); s != http.StatusOK {
			t.Fatalf("a cross-site POST signed the user out (API now %d)", s)
		}
	})
	tamper := func(name string, f func(v string) []*http.Cookie) {
		t.Run("cookie/"+name, func(t *testing.T) {
			lc.t = t
			c := browser(t)
			lc.signIn(c, "/")
			ck := lc.sessionCookie(c)
			if ck == nil {
				t.Fatal("no session cookie after sign-in")
			}
			lc.upstream.reset()
			tampered := browser(t)
			u, _ := url.Parse(lc.proxyURL)
			tampered.Jar.SetCookies(u, f(ck.Value))
			if s := lc.apiStatus(tampered); s != http.StatusUnauthorized {
				t.Fatalf("API with a tampered session cookie: %d", s)
			}
			nothingUpstream(t)
		})
	}
	flip := func(v string) string {
		b := []byte(v)
		if b[len(b)-1] == 'A' {
			b[len(b)-1] = 'B'
		} else {
			b[len(b)-1] = 'A'
		}
		return string(b)
	}
	name := config.DefaultCookieName
	tamper("last character changed", func(v string) []*http.Cookie { return []*http.Cookie{{Name: name, Value: flip(v)}} })
	tamper("truncated", func(v string) []*http.Cookie { return []*http.Cookie{{Name: name, Value: v[:len(v)/2]}} })
	tamper("extended", func(v string) []*http.Cookie { return []*http.Cookie{{Name: name, Value: v + "AAAA"}} })
	tamper("made up", func(string) []*http.Cookie { return []*http.Cookie{{Name: name, Value: strings.Repeat("A", 43)}} })
	tamper("upper-case cookie name", func(v string) []*http.Cookie {
		return []*http.Cookie{{Name: strings.ToUpper(name), Value: v}}
	})
	tamper("empty", func(string) []*http.Cookie { return []*http.Cookie{{Name: name, Value: ""}} })
	t.Run("cookie/after sign-out the old cookie is dead", func(t *testing.T) {
		lc.t = t
		c := browser(t)
		lc.signIn(c, "/")
		old := lc.sessionCookie(c)
		res, page := fetch(t, c, "GET", lc.proxyURL+login.LogoutPath, nil)
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
		if res.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("logout form: %d", res.StatusCode)
		}
		fetch(t, c, "POST", lc.proxyURL+login.LogoutPath, url.Values{"csrf": {m[1]}}, "Origin", lc.proxyURL)
		replay := browser(t)
		u, _ := url.Parse(lc.proxyURL)
		replay.Jar.SetCookies(u, []*http.Cookie{{Name: old.Name, Value: old.Value}})
		if s := lc.apiStatus(replay); s != http.StatusUnauthorized {
			t.Fatalf("API with a signed-out session cookie: %d", s)
		}
	})
}
