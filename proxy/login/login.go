// Package login is crmgate's browser sign-in: OpenID Connect authorization
// code flow with PKCE (go-oidc and golang.org/x/oauth2), server-side
// sessions in a session.Store behind an opaque cookie, MFA step-up, logout
// (RP-initiated at the IdP) and OIDC Back-Channel Logout. *Login implements
// proxy.Sessions.
//
// Security properties, each tested by a test that tries to get around it:
//   - state, nonce and the PKCE verifier live in a short-lived login cookie
//     sealed with AES-GCM and bound to its cookie name, so a callback only
//     completes in the browser that started it;
//   - ID tokens are verified for issuer, audience, expiry, nonce and an
//     asymmetric signature; HS* and "none" are never accepted;
//   - return URLs are same-origin paths only (SafeReturn);
//   - every login creates a new session id and deletes the old one, and a
//     cookie the store does not know is never adopted;
//   - a login that asked for MFA (acr_values) counts as MFA only when the IdP
//     asserted one of the MFA acr values, and a refresh never raises MFA;
//   - a session store or IdP failure fails closed (503), never open.
package login

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/identity"
	"github.com/crmgate/crmgate/proxy/metrics"
	"github.com/crmgate/crmgate/proxy/session"
)

// Paths of the endpoints Routes serves (the callback path is configurable
// but must stay under Prefix, where the proxy sends crmgate's own traffic).
const (
	Prefix          = "/.crmgate/"
	LoginPath       = "/.crmgate/login"
	CallbackPath    = "/.crmgate/callback"
	LogoutPath      = "/.crmgate/logout"
	SignedOutPath   = "/.crmgate/signed-out"
	BackchannelPath = "/.crmgate/backchannel-logout"
)

// Errors Subject may return, wrapped; test with errors.Is. Both mean the
// session could not be checked, and the request must fail closed.
var (
	// ErrIdPUnavailable means the identity provider could not be asked
	// (discovery not done yet, token endpoint down) when a session needed
	// its tokens refreshed.
	ErrIdPUnavailable = errors.New("identity provider unavailable")
)

// errSessionEnded is an internal signal: the session must end (refresh
// refused, lifetime over); the caller sees ok=false.
var errSessionEnded = errors.New("session ended")

// Default tunables; Options fields left zero take these.
const (
	// DefaultTouchInterval throttles last-seen writes, so the hot path of
	// an active session is one store read.
	DefaultTouchInterval = time.Minute
	// DefaultRefreshMargin is how long before the ID token expires the
	// session's tokens are refreshed.
	DefaultRefreshMargin = time.Minute
	// LoginStateTTL is how long a started login may take.
	LoginStateTTL = 10 * time.Minute
)

// Options configure a Login. Fields without a documented default are
// required.
type Options struct {
	// Issuer is the OpenID provider's issuer URL (discovery is used).
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes must include openid.
	Scopes []string
	// PublicURL is the externally visible base URL of crmgate (scheme and
	// host; https makes cookies Secure and __Host- prefixed).
	PublicURL string
	// RedirectPath defaults to CallbackPath; it must be under Prefix.
	RedirectPath string
	// CookieName is the session cookie's name (default crmgate_session;
	// __Host- is prepended over https).
	CookieName string
	// IdleTimeout ends a session not used for this long; MaxLifetime ends
	// every session this long after login, used or not.
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	// Key is the 32-byte master key (session.encryption_key). Nil draws a
	// random key per process: then replicas cannot share sessions and a
	// restart ends every login in progress.
	Key []byte
	// StepUpACR is sent as acr_values when MFA is needed; StepUpMaxAge,
	// when set, as max_age. With neither, a step-up sends prompt=login.
	StepUpACR    string
	StepUpMaxAge time.Duration
	// MFAACR are the acr values that count as MFA (identity.mfa.acr); with
	// StepUpACR they are the acr values a step-up login must come back with.
	MFAACR []string
	// RequireMFARoles are roles that never get a session without MFA.
	RequireMFARoles []string
	// SigningAlgs are the accepted ID token algorithms (default
	// identity.DefaultAlgorithms()); only asymmetric ones are accepted.
	SigningAlgs []string
	// TouchInterval defaults to DefaultTouchInterval (at most a quarter of
	// IdleTimeout); RefreshMargin to DefaultRefreshMargin.
	TouchInterval time.Duration
	RefreshMargin time.Duration

	Store   session.Store
	Mapper  *identity.Mapper
	Metrics *metrics.Metrics // nil records nothing
	Logger  *zap.Logger      // nil logs nothing
	// HTTPClient talks to the IdP (default: 10 s timeout).
	HTTPClient *http.Client
	// Now defaults to time.Now.
	Now func() time.Time
}

// asymmetric are the JWS algorithms an ID token may be signed with.
var asymmetric = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512, oidc.EdDSA,
}

// idp is what discovery yields; it is swapped in once discovery succeeds.
type idp struct {
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	// endSession is the RP-initiated logout endpoint ("" when not offered).
	endSession string
}

// Login is the browser sign-in. Create it with New, then call Start.
type Login struct {
	o       Options
	log     *zap.Logger
	keys    *keys
	idp     atomic.Pointer[idp]
	secure  bool
	base    string // public URL without trailing slash
	origin  string // scheme://host of the public URL
	cookie  string // session cookie name
	lcookie string // login state cookie name prefix
	mfaACR  []string

	flights flights
	replays replayCache
	// probedAt is when the IdP last answered a login-start probe (unix
	// nanoseconds of Options.Now; 0 never).
	probedAt atomic.Int64

	stop    context.CancelFunc
	stopCtx context.Context
	wg      sync.WaitGroup
}

// New checks the options and builds the Login. It does no I/O: Start does
// the OIDC discovery.
func New(o Options) (*Login, error) {
	switch {
	case o.Issuer == "" || o.ClientID == "":
		return nil, errors.New("new login: issuer and client id are required")
	case o.Store == nil || o.Mapper == nil:
		return nil, errors.New("new login: session store and claims mapper are required")
	case !slices.Contains(o.Scopes, oidc.ScopeOpenID):
		return nil, errors.New("new login: scopes must include openid")
	case o.IdleTimeout <= 0 || o.MaxLifetime <= 0:
		return nil, errors.New("new login: idle timeout and max lifetime must be positive")
	}
	pub, err := url.Parse(o.PublicURL)
	if err != nil || (pub.Scheme != "http" && pub.Scheme != "https") || pub.Host == "" {
		return nil, fmt.Errorf("new login: public url %q must be an absolute http(s) url", o.PublicURL)
	}
	if o.RedirectPath == "" {
		o.RedirectPath = CallbackPath
	}
	switch o.RedirectPath {
	case LoginPath, LogoutPath, SignedOutPath, BackchannelPath:
		return nil, fmt.Errorf("new login: redirect path %q is another crmgate endpoint", o.RedirectPath)
	}
	if !strings.HasPrefix(o.RedirectPath, Prefix) {
		// The proxy hands only Prefix to Routes: a callback elsewhere
		// would go to the CRM.
		return nil, fmt.Errorf("new login: redirect path %q must be under %s", o.RedirectPath, Prefix)
	}
	if o.CookieName == "" {
		o.CookieName = "crmgate_session"
	}
	if len(o.SigningAlgs) == 0 {
		o.SigningAlgs = identity.DefaultAlgorithms()
	}
	for _, a := range o.SigningAlgs {
		if !slices.Contains(asymmetric, a) {
			return nil, fmt.Errorf("new login: signing algorithm %q is not an asymmetric JWS algorithm", a)
		}
	}
	if o.TouchInterval <= 0 {
		o.TouchInterval = min(DefaultTouchInterval, o.IdleTimeout/4)
	}
	if o.RefreshMargin <= 0 {
		o.RefreshMargin = DefaultRefreshMargin
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	key := o.Key
	if key == nil {
		key = make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("new login: generate key: %w", err)
		}
		o.Logger.Warn("no session.encryption_key configured: using a random key for this process; " +
			"replicas cannot share sessions and a restart ends logins in progress")
	}
	ks, err := deriveKeys(key)
	if err != nil {
		return nil, fmt.Errorf("new login: %w", err)
	}
	l := &Login{
		o: o, log: o.Logger, keys: ks,
		secure: pub.Scheme == "https",
		base:   strings.TrimSuffix(o.PublicURL, "/"),
		origin: pub.Scheme + "://" + pub.Host,
	}
	l.cookie, l.lcookie = o.CookieName, "crmgate_login_"
	if l.secure {
		// __Host- cookies must be Secure, Path=/ and host-only: a sibling
		// subdomain cannot plant or overwrite them.
		l.cookie, l.lcookie = "__Host-"+o.CookieName, "__Host-crmgate_login_"
	}
	l.mfaACR = slices.Clone(o.MFAACR)
	if o.StepUpACR != "" && !slices.Contains(l.mfaACR, o.StepUpACR) {
		l.mfaACR = append(l.mfaACR, o.StepUpACR)
	}
	l.stopCtx, l.stop = context.WithCancel(context.Background())
	return l, nil
}

// Start discovers the IdP. When the IdP cannot be reached it keeps trying
// in the background (until Close) and returns the first error, so the
// caller can log it; meanwhile logins are answered with the
// IdP-unavailable page and existing sessions keep working until their
// tokens need refreshing.
func (l *Login) Start(ctx context.Context) error {
	err := l.discover(ctx)
	if err == nil {
		return nil
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		wait := time.Second
		for {
			select {
			case <-l.stopCtx.Done():
				return
			case <-time.After(wait):
			}
			ctx, cancel := context.WithTimeout(l.stopCtx, 10*time.Second)
			err := l.discover(ctx)
			cancel()
			if err == nil {
				l.log.Info("oidc discovery succeeded", zap.String("issuer", l.o.Issuer))
				return
			}
			l.log.Warn("oidc discovery failed; retrying", zap.Duration("in", wait), zap.Error(err))
			wait = min(2*wait, 30*time.Second)
		}
	}()
	return err
}

// Ready reports whether discovery has succeeded.
func (l *Login) Ready() bool { return l.idp.Load() != nil }

// Close stops background discovery.
func (l *Login) Close() {
	l.stop()
	l.wg.Wait()
}

func (l *Login) clientCtx(ctx context.Context) context.Context {
	return context.WithValue(oidc.ClientContext(ctx, l.o.HTTPClient), oauth2.HTTPClient, l.o.HTTPClient)
}

func (l *Login) discover(ctx context.Context) error {
	// The provider keeps the client for its key set; the background
	// context keeps JWKS refreshes alive after this call returns.
	p, err := oidc.NewProvider(l.clientCtx(ctx), l.o.Issuer)
	if err != nil {
		return fmt.Errorf("oidc discovery %s: %w", l.o.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
		JWKSURI    string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return fmt.Errorf("oidc discovery %s: read metadata: %w", l.o.Issuer, err)
	}
	if meta.JWKSURI == "" {
		return fmt.Errorf("oidc discovery %s: no jwks_uri", l.o.Issuer)
	}
	// The back-channel logout endpoint verifies tokens anyone can POST: a
	// throttled key set keeps forged ones from making crmgate refetch the
	// IdP's keys on every attempt.
	keys := identity.NewKeySet(meta.JWKSURI, l.o.HTTPClient, 0, l.o.Now)
	v := oidc.NewVerifier(l.o.Issuer, keys, &oidc.Config{
		ClientID:             l.o.ClientID,
		SupportedSigningAlgs: l.o.SigningAlgs,
		Now:                  l.o.Now,
	})
	l.idp.Store(&idp{
		oauth: oauth2.Config{
			ClientID: l.o.ClientID, ClientSecret: l.o.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: l.base + l.o.RedirectPath, Scopes: l.o.Scopes,
		},
		verifier:   v,
		endSession: meta.EndSession,
	})
	return nil
}

// Routes serves LoginPath, the callback, LogoutPath, SignedOutPath and
// BackchannelPath. Anything else under Prefix is 404.
func (l *Login) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LoginPath, l.serveLogin)
	mux.HandleFunc("GET "+l.o.RedirectPath, l.serveCallback)
	mux.HandleFunc("GET "+LogoutPath, l.serveLogoutForm)
	mux.HandleFunc("POST "+LogoutPath, l.serveLogout)
	mux.HandleFunc("GET "+SignedOutPath, l.serveSignedOut)
	mux.HandleFunc("POST "+BackchannelPath, l.serveBackchannel)
	return mux
}

// ttl is how long the store keeps a session from now: until it idles out
// or reaches its absolute lifetime, whichever comes first.
func (l *Login) ttl(s *session.Session, now time.Time) time.Duration {
	return min(l.o.IdleTimeout, s.CreatedAt.Add(l.o.MaxLifetime).Sub(now))
}

// Subject implements proxy.Sessions: one store read for an active session;
// a last-seen write at most once per TouchInterval; a token refresh shortly
// before the ID token expires.
func (l *Login) Subject(r *http.Request) (*policy.Subject, bool, error) {
	id := l.sessionID(r)
	if id == "" {
		return nil, false, nil
	}
	ctx := r.Context()
	s, err := l.o.Store.Get(ctx, id)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("session subject: %w", err)
	}
	now := l.o.Now()
	if !now.Before(s.CreatedAt.Add(l.o.MaxLifetime)) || now.Sub(s.LastSeen) > l.o.IdleTimeout {
		l.end(ctx, id, "lifetime over")
		return nil, false, nil
	}
	if !now.Before(s.TokenExpiry.Add(-l.o.RefreshMargin)) {
		s, err = l.refresh(ctx, id)
		switch {
		case errors.Is(err, errSessionEnded):
			return nil, false, nil
		case err != nil:
			return nil, false, fmt.Errorf("session subject: %w", err)
		}
	}
	if now.Sub(s.LastSeen) >= l.o.TouchInterval {
		if err := l.o.Store.Touch(ctx, id, now, l.ttl(s, now)); err != nil {
			if errors.Is(err, session.ErrNotFound) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("session subject: %w", err)
		}
		if err := l.o.Store.SeenUser(ctx, s.Subject.ID, now); err != nil {
			// Last-seen feeds the dormant-user report only; it does not
			// decide access, so a failed write is logged, not fatal.
			l.log.Warn("record last seen", zap.String("user", s.Subject.ID), zap.Error(err))
		}
	}
	if s.Subject.Auth != identity.AuthSession {
		// Stored subjects are made by this package; anything else is a
		// record it did not write.
		return nil, false, fmt.Errorf("session subject: stored subject has auth %q", s.Subject.Auth)
	}
	return s.Subject, true, nil
}

// end deletes a session that must not be used again.
func (l *Login) end(ctx context.Context, id, why string) {
	if err := l.o.Store.Delete(ctx, id); err != nil {
		l.log.Warn("end session", zap.String("session", session.HashID(id)[:12]), zap.String("why", why), zap.Error(err))
		return
	}
	l.log.Info("session ended", zap.String("session", session.HashID(id)[:12]), zap.String("why", why))
}

// sessionID returns the session cookie's value when it has the shape of a
// session id; anything else is ignored without asking the store.
func (l *Login) sessionID(r *http.Request) string {
	c, err := r.Cookie(l.cookie)
	if err != nil || !wellFormedID(c.Value) {
		return ""
	}
	return c.Value
}

func wellFormedID(v string) bool {
	if len(v) != base64.RawURLEncoding.EncodedLen(32) {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// Redirect implements proxy.Sessions: it starts a login (a step-up login
// with stepUp) that returns to the requested page.
func (l *Login) Redirect(w http.ResponseWriter, r *http.Request, stepUp bool) {
	l.start(w, r, SafeReturn(r.URL.RequestURI()), stepUp)
}

func (l *Login) setSessionCookie(w http.ResponseWriter, id string) {
	// No Max-Age: the cookie ends with the browser; the server-side
	// session decides how long it is valid.
	http.SetCookie(w, &http.Cookie{Name: l.cookie, Value: id, Path: "/", HttpOnly: true, Secure: l.secure,
		SameSite: http.SameSiteLaxMode})
}

func (l *Login) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: l.secure,
		SameSite: http.SameSiteLaxMode})
}

func (l *Login) requiresMFA(s *policy.Subject) bool {
	for _, r := range l.o.RequireMFARoles {
		if slices.Contains(s.Roles, r) {
			return true
		}
	}
	return false
}

// flights lets one goroutine refresh a session's tokens while others with
// the same session wait for its result: refresh tokens rotate, and using
// one twice makes the IdP revoke the whole grant.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done chan struct{}
	s    *session.Session
	err  error
}

func (f *flights) do(key string, fn func() (*session.Session, error)) (*session.Session, error) {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]*flight{}
	}
	if c, ok := f.m[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.s, c.err
	}
	c := &flight{done: make(chan struct{}), err: errors.New("refresh aborted")}
	f.m[key] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.m, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.s, c.err = fn()
	return c.s, c.err
}
