package login

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/identity"
	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/proxy/session"
)

// fakeIdP is an OpenID provider for attack tests: proxy/issuer signs (and
// forges) the tokens; this adds the authorization and token endpoints of
// the code flow, with PKCE and one-time codes, so tests can make it answer
// exactly the wrong thing they need.
type fakeIdP struct {
	t   *testing.T
	srv *httptest.Server
	iss *issuer.Issuer

	mu      sync.Mutex
	claims  map[string]any // the user's claims in the next tokens
	codes   map[string]*grant
	refresh map[string]*grant
	// idToken, when set, replaces the ID token of the next token responses.
	idToken func(g *grant, claims map[string]any) string
	// refreshStatus, when set, is the token endpoint's answer to refreshes.
	refreshStatus int
	lastAuth      url.Values
	refreshes     atomic.Int32
	// refreshDelay holds each refresh answer back, so replicas racing to
	// refresh surely overlap.
	refreshDelay atomic.Int64
	idTTL        time.Duration
}

type grant struct {
	nonce, challenge string
	used             bool
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	f := &fakeIdP{t: t, codes: map[string]*grant{}, refresh: map[string]*grant{}, idTTL: 10 * time.Minute,
		claims: map[string]any{"sub": "alice", "email": "alice@shop.example", "roles": []string{"sales"},
			"amr": []string{"pwd"}, "acr": "urn:crmgate:acr:pwd", "sid": "idp-sid-1"}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	iss, err := issuer.New(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	f.iss = iss
	return f
}

func (f *fakeIdP) setClaims(kv map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	maps.Copy(f.claims, kv)
}

func randomString() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (f *fakeIdP) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		writeJSON(w, 200, map[string]any{
			"issuer": f.srv.URL, "jwks_uri": f.srv.URL + "/jwks",
			"authorization_endpoint": f.srv.URL + "/authorize", "token_endpoint": f.srv.URL + "/token",
			"end_session_endpoint":                  f.srv.URL + "/session/end",
			"id_token_signing_alg_values_supported": []string{"RS256", "HS256", "none"},
		})
	case "/jwks":
		f.iss.Handler().ServeHTTP(w, r)
	case "/authorize":
		q := r.URL.Query()
		code := randomString()
		f.mu.Lock()
		f.lastAuth = q
		f.codes[code] = &grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge")}
		f.mu.Unlock()
		if q.Get("code_challenge_method") != "S256" {
			http.Error(w, "pkce required", 400)
			return
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	case "/token":
		f.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if id, secret, ok := r.BasicAuth(); !ok || id != "crmgate" || secret != "secret" {
		writeJSON(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	if r.PostFormValue("grant_type") == "refresh_token" {
		time.Sleep(time.Duration(f.refreshDelay.Load()))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var g *grant
	switch r.PostFormValue("grant_type") {
	case "authorization_code":
		g = f.codes[r.PostFormValue("code")]
		if g == nil || g.used {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		g.used = true
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "pkce"})
			return
		}
	case "refresh_token":
		f.refreshes.Add(1)
		if f.refreshStatus != 0 {
			writeJSON(w, f.refreshStatus, map[string]string{"error": "invalid_grant"})
			return
		}
		rt := r.PostFormValue("refresh_token")
		if f.refresh[rt] == nil {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		delete(f.refresh, rt) // rotation
		g = &grant{}
	default:
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	claims := maps.Clone(f.claims)
	claims["aud"] = "crmgate"
	claims["auth_time"] = f.iss.Now().Unix()
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	var idt string
	if f.idToken != nil {
		idt = f.idToken(g, claims)
	} else {
		var err error
		if idt, err = f.iss.Mint(claims, f.idTTL); err != nil {
			f.t.Error(err)
		}
	}
	rt := randomString()
	f.refresh[rt] = g
	writeJSON(w, 200, map[string]any{"access_token": randomString(), "token_type": "Bearer", "expires_in": 600,
		"id_token": idt, "refresh_token": rt})
}

// clock is a settable test clock shared by crmgate, the store and the IdP.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rig is crmgate's login in front of a tiny app: / shows the subject,
// /admin needs MFA. It stands in for the proxy, which tests in proxy/app
// exercise with the real pipeline.
type rig struct {
	t     *testing.T
	idp   *fakeIdP
	login *Login
	store *countingStore
	srv   *httptest.Server
	clock *clock
	opts  Options
	// sessions is how many sessions a refused login must leave behind.
	sessions int
}

type rigOption func(*Options)

func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	idp := newFakeIdP(t)
	clk := &clock{t: time.Now().Truncate(time.Second)}
	idp.iss.Now = clk.Now
	rg := &rig{t: t, idp: idp, clock: clk, store: &countingStore{Store: session.NewMemory(clk.Now)}}
	mux := http.NewServeMux()
	rg.srv = httptest.NewServer(mux)
	t.Cleanup(rg.srv.Close)
	o := Options{
		Issuer: idp.srv.URL, ClientID: "crmgate", ClientSecret: "secret", Scopes: []string{"openid", "profile"},
		PublicURL: rg.srv.URL, IdleTimeout: 30 * time.Minute, MaxLifetime: 12 * time.Hour,
		Key: make([]byte, 32), StepUpACR: "urn:crmgate:acr:mfa", MFAACR: []string{"urn:crmgate:acr:mfa"},
		RequireMFARoles: []string{"admin"},
		Store:           rg.store, Mapper: &identity.Mapper{MFA: identity.MFAEvidence{AMR: []string{"otp", "mfa"}, ACR: []string{"urn:crmgate:acr:mfa"}}},
		Logger: zap.NewNop(), Now: clk.Now,
	}
	for _, f := range opts {
		f(&o)
	}
	rg.opts = o
	rg.login = rg.serve(mux)
	return rg
}

// replica is another crmgate replica behind the same public URL: its own
// Login (own in-process state) on the rig's store, IdP and key. It returns
// the replica's base URL; the browser's session cookie works on both.
func (rg *rig) replica() string {
	rg.t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	rg.t.Cleanup(srv.Close)
	rg.serve(mux)
	return srv.URL
}

// serve starts a Login on the rig's options and routes mux to it and the
// app.
func (rg *rig) serve(mux *http.ServeMux) *Login {
	t := rg.t
	t.Helper()
	l, err := New(rg.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	mux.Handle(Prefix, l.Routes())
	app := func(needMFA bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			s, ok, err := l.Subject(r)
			switch {
			case err != nil:
				http.Error(w, "store down", http.StatusServiceUnavailable)
			case !ok:
				l.Redirect(w, r, false)
			case needMFA && !s.MFA:
				l.Redirect(w, r, true)
			default:
				writeJSON(w, 200, s)
			}
		}
	}
	mux.Handle("/admin", app(true))
	mux.Handle("/", app(false))
	return l
}

// browser is a cookie-keeping client that does not follow redirects, so
// each hop can be checked (and tampered with).
type browser struct {
	t   *testing.T
	c   *http.Client
	jar *cookiejar.Jar
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, jar: jar, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(u string, hdr ...string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	res.Body.Close()
	return res
}

func (b *browser) post(u string, form url.Values, hdr ...string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	res.Body.Close()
	return res
}

// subject fetches / and returns the subject, or nil when not signed in.
func (b *browser) subject(rg *rig) *policy.Subject {
	b.t.Helper()
	return b.subjectAt(rg.srv.URL)
}

// subjectAt is subject on the crmgate (replica) at base.
func (b *browser) subjectAt(base string) *policy.Subject {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil
	}
	var s policy.Subject
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		b.t.Fatal(err)
	}
	return &s
}

func location(t *testing.T, res *http.Response, want int) string {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d", res.Request.Method, res.Request.URL, res.StatusCode, want)
	}
	loc := res.Header.Get("Location")
	if loc == "" {
		t.Fatal("no location")
	}
	return loc
}

// signIn runs the whole flow from a protected path and returns where the
// browser ended up.
func (rg *rig) signIn(b *browser, path string) string {
	rg.t.Helper()
	toIdP := location(rg.t, b.get(rg.srv.URL+LoginPath+"?rd="+url.QueryEscape(path)), http.StatusFound)
	back := location(rg.t, b.get(toIdP), http.StatusFound)
	return location(rg.t, b.get(back), http.StatusSeeOther)
}

func (rg *rig) cookie(b *browser, name string) *http.Cookie {
	u, _ := url.Parse(rg.srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// countingStore counts store calls, to check the hot path's cost.
type countingStore struct {
	session.Store
	gets, touches, updates atomic.Int32
}

func (c *countingStore) Get(ctx context.Context, id string) (*session.Session, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, id)
}

func (c *countingStore) Touch(ctx context.Context, id string, at time.Time, ttl time.Duration) error {
	c.touches.Add(1)
	return c.Store.Touch(ctx, id, at, ttl)
}

func (c *countingStore) Update(ctx context.Context, s *session.Session, ttl time.Duration) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, s, ttl)
}

// noScanStore refuses List, which reads a bounded page of the store: a
// code path that finds sessions by scanning would, beyond that page, miss
// them while reporting success.
type noScanStore struct {
	session.Store
	lists atomic.Int32
}

func (n *noScanStore) List(context.Context, int) ([]*session.Session, error) {
	n.lists.Add(1)
	return nil, errors.New("List must not be used to find sessions: it sees only a page of them")
}
