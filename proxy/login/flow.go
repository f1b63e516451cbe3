package login

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/identity"
	"github.com/crmgate/crmgate/proxy/metrics"
	"github.com/crmgate/crmgate/proxy/page"
	"github.com/crmgate/crmgate/proxy/session"
)

// loginState is what the login cookie carries from the start of a login to
// its callback.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Return   string `json:"r"`
	StepUp   bool   `json:"u,omitempty"`
	Expires  int64  `json:"e"`
}

// maxLoginCookies bounds the parallel logins one browser keeps; beyond it
// the older ones are dropped (a page opening logins in a loop must not
// grow the browser's cookie header without bound).
const maxLoginCookies = 4

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// loginCookieName is per login (derived from its state), so logins started
// in several tabs do not overwrite each other's state.
func (l *Login) loginCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return l.lcookie + hex.EncodeToString(sum[:8])
}

func (l *Login) loginURL(rd string) string {
	return LoginPath + "?rd=" + url.QueryEscape(rd)
}

// serveLogin starts a login: GET /.crmgate/login?rd=/path[&mfa=1].
func (l *Login) serveLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	l.start(w, r, SafeReturn(q.Get("rd")), q.Get("mfa") == "1")
}

// start sends the browser to the IdP with a fresh state, nonce and PKCE
// verifier sealed into a login cookie.
func (l *Login) start(w http.ResponseWriter, r *http.Request, rd string, stepUp bool) {
	p := l.idp.Load()
	if p == nil || !l.idpAnswers(r.Context()) {
		l.o.Metrics.Authentication(metrics.AuthLogin, metrics.AuthFailure)
		page.IdPUnavailable(w, r, l.loginURL(rd))
		return
	}
	state, err1 := randomToken()
	nonce, err2 := randomToken()
	if err := errors.Join(err1, err2); err != nil {
		l.log.Error("start login", zap.Error(err))
		page.LoginError(w, r, http.StatusInternalServerError, "The sign-in could not be started.", l.loginURL(rd))
		return
	}
	ls := loginState{State: state, Nonce: nonce, Verifier: oauth2.GenerateVerifier(), Return: rd, StepUp: stepUp,
		Expires: l.o.Now().Add(LoginStateTTL).Unix()}
	plain, err := json.Marshal(ls)
	if err != nil {
		l.log.Error("start login: encode state", zap.Error(err))
		page.LoginError(w, r, http.StatusInternalServerError, "The sign-in could not be started.", l.loginURL(rd))
		return
	}
	name := l.loginCookieName(state)
	sealed, err := sealString(l.keys.state, plain, []byte(name))
	if err != nil {
		l.log.Error("start login: seal state", zap.Error(err))
		page.LoginError(w, r, http.StatusInternalServerError, "The sign-in could not be started.", l.loginURL(rd))
		return
	}
	l.dropExcessLoginCookies(w, r)
	http.SetCookie(w, &http.Cookie{Name: name, Value: sealed, Path: "/", MaxAge: int(LoginStateTTL / time.Second),
		HttpOnly: true, Secure: l.secure, SameSite: http.SameSiteLaxMode})
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(ls.Verifier), oidc.Nonce(nonce)}
	if stepUp {
		if l.o.StepUpACR != "" {
			opts = append(opts, oauth2.SetAuthURLParam("acr_values", l.o.StepUpACR))
		}
		if l.o.StepUpMaxAge > 0 {
			opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(int64(l.o.StepUpMaxAge/time.Second), 10)))
		}
		if l.o.StepUpACR == "" && l.o.StepUpMaxAge <= 0 {
			opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
		}
	}
	page.Redirect(w, p.oauth.AuthCodeURL(state, opts...), stepUp)
}

func (l *Login) dropExcessLoginCookies(w http.ResponseWriter, r *http.Request) {
	var names []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, l.lcookie) {
			names = append(names, c.Name)
		}
	}
	if len(names) < maxLoginCookies {
		return
	}
	for _, n := range names {
		l.clearCookie(w, n)
	}
}

// loginFailure is a refused callback: what the user is told, what is
// logged, and the status.
type loginFailure struct {
	status int
	detail string
	cause  error
}

func (l *Login) fail(w http.ResponseWriter, r *http.Request, rd string, f loginFailure) {
	l.o.Metrics.Authentication(metrics.AuthLogin, metrics.AuthFailure)
	l.log.Info("login refused", zap.Int("status", f.status), zap.Error(f.cause))
	if f.status == http.StatusServiceUnavailable {
		page.IdPUnavailable(w, r, l.loginURL(rd))
		return
	}
	page.LoginError(w, r, f.status, f.detail, l.loginURL(rd))
}

var (
	failState = loginFailure{status: http.StatusBadRequest,
		detail: "This sign-in was started in another browser or tab, or has expired. Start again."}
	failToken = loginFailure{status: http.StatusBadRequest,
		detail: "The identity provider's answer could not be verified. Start again."}
)

// serveCallback completes a login: the IdP redirected the browser back with
// a code (or an error) and the state.
func (l *Login) serveCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ls, err := l.openState(w, r, q.Get("state"))
	if err != nil {
		f := failState
		f.cause = err
		l.fail(w, r, "/", f)
		return
	}
	if e := q.Get("error"); e != "" {
		l.fail(w, r, ls.Return, loginFailure{status: http.StatusUnauthorized,
			detail: "The identity provider did not sign you in.", cause: fmt.Errorf("callback: idp error %q", e)})
		return
	}
	p := l.idp.Load()
	if p == nil {
		l.fail(w, r, ls.Return, loginFailure{status: http.StatusServiceUnavailable, cause: errors.New("callback: no discovery")})
		return
	}
	code := q.Get("code")
	if code == "" {
		f := failToken
		f.cause = errors.New("callback: no code")
		l.fail(w, r, ls.Return, f)
		return
	}
	ctx := l.clientCtx(r.Context())
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			// A used, expired or foreign code, or a PKCE mismatch.
			l.fail(w, r, ls.Return, loginFailure{status: http.StatusBadRequest,
				detail: "The sign-in code was refused by the identity provider. Start again.",
				cause:  fmt.Errorf("callback: exchange code: %w", err)})
			return
		}
		l.fail(w, r, ls.Return, loginFailure{status: http.StatusServiceUnavailable, cause: fmt.Errorf("callback: exchange code: %w", err)})
		return
	}
	v, err := l.verify(ctx, p, tok, ls.Nonce)
	if err != nil {
		f := failToken
		f.cause = err
		l.fail(w, r, ls.Return, f)
		return
	}
	subj, err := l.subject(v, ls.StepUp)
	if err != nil {
		f := failToken
		f.cause = err
		l.fail(w, r, ls.Return, f)
		return
	}
	if l.requiresMFA(subj) && !subj.MFA {
		if !ls.StepUp {
			// Straight back to the IdP for the second factor: this user
			// never gets a session without it.
			l.log.Info("login needs mfa for role; stepping up", zap.String("user", subj.ID))
			l.start(w, r, ls.Return, true)
			return
		}
		l.o.Metrics.Authentication(metrics.AuthLogin, metrics.AuthFailure)
		l.log.Info("login refused: role requires mfa, step-up gave none", zap.String("user", subj.ID))
		page.MFARequired(w, r, "Your role requires multi-factor authentication, and this sign-in did not use it.", l.loginURL(ls.Return))
		return
	}
	if err := l.createSession(w, r, v, subj, tok); err != nil {
		if errors.Is(err, session.ErrUnavailable) {
			l.fail(w, r, ls.Return, loginFailure{status: http.StatusServiceUnavailable, cause: err})
			return
		}
		l.fail(w, r, ls.Return, loginFailure{status: http.StatusInternalServerError,
			detail: "The session could not be created. Start again.", cause: err})
		return
	}
	l.o.Metrics.Authentication(metrics.AuthLogin, metrics.AuthSuccess)
	l.log.Info("login", zap.String("user", subj.ID), zap.Bool("mfa", subj.MFA), zap.Strings("amr", subj.AMR),
		zap.Bool("step_up", ls.StepUp))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, ls.Return, http.StatusSeeOther)
}

// openState finds, opens and clears the login cookie that belongs to state.
func (l *Login) openState(w http.ResponseWriter, r *http.Request, state string) (*loginState, error) {
	if state == "" || len(state) > 128 {
		return nil, errors.New("callback: no state")
	}
	name := l.loginCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, errors.New("callback: no login cookie for this state")
	}
	// One use only, whatever happens next.
	l.clearCookie(w, name)
	plain, err := openString(l.keys.state, c.Value, []byte(name))
	if err != nil {
		return nil, fmt.Errorf("callback: login cookie: %w", err)
	}
	var ls loginState
	if err := json.Unmarshal(plain, &ls); err != nil {
		return nil, fmt.Errorf("callback: login cookie: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(ls.State), []byte(state)) != 1 {
		return nil, errors.New("callback: state does not match the login cookie")
	}
	if !l.o.Now().Before(time.Unix(ls.Expires, 0)) {
		return nil, errors.New("callback: login state expired")
	}
	ls.Return = SafeReturn(ls.Return)
	return &ls, nil
}

// verified is an ID token that passed every check, with its raw form and
// claims.
type verified struct {
	raw    string
	token  *oidc.IDToken
	claims map[string]any
}

// verify checks the token response's ID token: signature (asymmetric
// only), issuer, audience, expiry (go-oidc), then the nonce and the
// access-token hash. wantNonce "" is a refresh, where no nonce is expected.
func (l *Login) verify(ctx context.Context, p *idp, tok *oauth2.Token, wantNonce string) (*verified, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, errors.New("verify id token: token response has no id_token")
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("verify id token: %w", err)
	}
	if wantNonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(wantNonce)) != 1 {
		return nil, errors.New("verify id token: nonce does not match the login")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("verify id token: %w", err)
		}
	}
	var payload json.RawMessage
	if err := idt.Claims(&payload); err != nil {
		return nil, fmt.Errorf("verify id token: claims: %w", err)
	}
	// json.Number keeps large numeric claims exact, as bearer tokens do.
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("verify id token: claims: %w", err)
	}
	return &verified{raw: raw, token: idt, claims: claims}, nil
}

// subject maps the claims. After a step-up request, MFA counts only when
// the IdP asserted one of the MFA acr values (and, when max_age was sent,
// authenticated recently enough): amr values alone may describe an
// earlier authentication the IdP merely remembered.
func (l *Login) subject(v *verified, stepUp bool) (*policy.Subject, error) {
	mapped, err := l.o.Mapper.Subject(v.claims, identity.AuthSession)
	if err != nil {
		return nil, err
	}
	s := *mapped
	if stepUp && (l.o.StepUpACR != "" || l.o.StepUpMaxAge > 0) {
		if l.o.StepUpACR != "" && !slices.Contains(l.mfaACR, s.ACR) {
			s.MFA = false
		}
		if l.o.StepUpMaxAge > 0 {
			const skew = time.Minute
			at := time.Unix(s.AuthTime, 0)
			if s.AuthTime == 0 || l.o.Now().Sub(at) > l.o.StepUpMaxAge+skew {
				s.MFA = false
			}
		}
	}
	return &s, nil
}

// createSession stores a new session for the login and sets its cookie.
// The id is always new: a session id the browser already had, valid or
// not, is never reused (session fixation), and a valid one is deleted.
func (l *Login) createSession(w http.ResponseWriter, r *http.Request, v *verified, subj *policy.Subject, tok *oauth2.Token) error {
	ctx := r.Context()
	if old := l.sessionID(r); old != "" {
		if err := l.o.Store.Delete(ctx, old); err != nil {
			return fmt.Errorf("create session: delete previous: %w", err)
		}
	}
	id, err := session.NewID()
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	now := l.o.Now()
	s := &session.Session{
		ID: id, Subject: subj, IDToken: v.raw, TokenExpiry: v.token.Expiry,
		CreatedAt: now, LastSeen: now, AMR: subj.AMR, ACR: subj.ACR,
	}
	if subj.AuthTime != 0 {
		s.AuthTime = time.Unix(subj.AuthTime, 0)
	}
	if sid, ok := v.claims["sid"].(string); ok {
		s.SID = sid
	}
	if tok.RefreshToken != "" {
		if s.RefreshToken, err = seal(l.keys.refresh, []byte(tok.RefreshToken), []byte(session.HashID(id))); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
	}
	if err := l.o.Store.Create(ctx, s, l.ttl(s, now)); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if err := l.o.Store.SeenUser(ctx, subj.ID, now); err != nil {
		l.log.Warn("record last seen", zap.String("user", subj.ID), zap.Error(err))
	}
	l.setSessionCookie(w, id)
	return nil
}

// Cross-replica refresh lease (session.Store.Lock).
const (
	// refreshLease is how long one replica keeps a session's refresh to
	// itself: longer than its refresh may take (refreshWork), short enough
	// that a replica dying mid-refresh costs the session's other requests a
	// wait, not the login.
	refreshLease = 15 * time.Second
	// refreshWork bounds the refresh done under the lease, so the new
	// tokens are stored before the lease can run out and another replica
	// spend the refresh token the IdP has already rotated.
	refreshWork = 10 * time.Second
	// refreshPoll is how often a replica waiting for another's refresh
	// looks for its result.
	refreshPoll = 50 * time.Millisecond
)

// refresh renews the session's tokens so the IdP's current roles and
// groups reach crmgate. Concurrent requests of one session share one
// refresh: within a process through flights, across the replicas sharing
// the store through a lease on the session, because a rotated refresh
// token used twice makes the IdP revoke the whole grant. errSessionEnded:
// the IdP refused (user disabled, logged out, grant revoked) or the
// session cannot be refreshed: it is deleted.
func (l *Login) refresh(ctx context.Context, id string) (*session.Session, error) {
	return l.flights.do(session.HashID(id), func() (*session.Session, error) {
		// Another request may have refreshed while this one waited.
		s, fresh, err := l.loadForRefresh(ctx, id)
		if err != nil || fresh {
			return s, err
		}
		unlock, s, err := l.leaseRefresh(ctx, id, s.Hash)
		if err != nil || unlock == nil {
			return s, err
		}
		defer unlock()
		// Another replica may have refreshed between the read above and
		// the lease, spending the refresh token this copy still holds.
		if s, fresh, err = l.loadForRefresh(ctx, id); err != nil || fresh {
			return s, err
		}
		ctx, cancel := context.WithTimeout(ctx, refreshWork)
		defer cancel()
		now := l.o.Now()
		p := l.idp.Load()
		if p == nil {
			return nil, fmt.Errorf("refresh session: %w: no discovery yet", ErrIdPUnavailable)
		}
		if len(s.RefreshToken) == 0 {
			l.end(ctx, id, "id token expired and no refresh token")
			return nil, errSessionEnded
		}
		rt, err := open(l.keys.refresh, s.RefreshToken, []byte(s.Hash))
		if err != nil {
			l.end(ctx, id, "refresh token does not open")
			return nil, errSessionEnded
		}
		cctx := l.clientCtx(ctx)
		tok, err := p.oauth.TokenSource(cctx, &oauth2.Token{RefreshToken: string(rt)}).Token()
		if err != nil {
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
				l.end(ctx, id, "idp refused refresh")
				return nil, errSessionEnded
			}
			return nil, fmt.Errorf("refresh session: %w: %w", ErrIdPUnavailable, err)
		}
		v, err := l.verify(cctx, p, tok, "")
		var subj *policy.Subject
		if err == nil {
			subj, err = l.subject(v, false)
		}
		if err == nil && subj.ID != s.Subject.ID {
			err = errors.New("refresh session: id token maps to another subject")
		}
		if err != nil {
			l.log.Warn("refresh refused", zap.Error(err))
			l.end(ctx, id, "refreshed id token refused")
			return nil, errSessionEnded
		}
		// A refresh is no new authentication: it can keep MFA, never
		// grant it.
		subj.MFA = subj.MFA && s.Subject.MFA
		if l.requiresMFA(subj) && !subj.MFA {
			l.end(ctx, id, "role now requires mfa")
			return nil, errSessionEnded
		}
		s.Subject, s.IDToken, s.TokenExpiry = subj, v.raw, v.token.Expiry
		s.AMR, s.ACR = subj.AMR, subj.ACR
		if tok.RefreshToken != "" {
			if s.RefreshToken, err = seal(l.keys.refresh, []byte(tok.RefreshToken), []byte(s.Hash)); err != nil {
				return nil, fmt.Errorf("refresh session: %w", err)
			}
		}
		s.ID = id
		if err := l.o.Store.Update(ctx, s, l.ttl(s, now)); err != nil {
			if errors.Is(err, session.ErrNotFound) {
				return nil, errSessionEnded
			}
			return nil, fmt.Errorf("refresh session: %w", err)
		}
		l.log.Debug("session refreshed", zap.String("user", subj.ID))
		return s, nil
	})
}

// loadForRefresh reads the session and reports whether its tokens are
// still outside the refresh margin. A missing session is errSessionEnded.
func (l *Login) loadForRefresh(ctx context.Context, id string) (*session.Session, bool, error) {
	s, err := l.o.Store.Get(ctx, id)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return nil, false, errSessionEnded
	case err != nil:
		return nil, false, err
	}
	return s, l.o.Now().Before(s.TokenExpiry.Add(-l.o.RefreshMargin)), nil
}

// leaseRefresh takes the session's refresh lease, waiting while another
// replica holds it. It returns unlock once this replica holds the lease,
// or (unlock nil) the session another replica refreshed meanwhile. The
// lease is retried while waiting, so a holder that gave up (IdP down,
// request cancelled) hands over at once rather than after its whole lease.
func (l *Login) leaseRefresh(ctx context.Context, id, hash string) (func(), *session.Session, error) {
	// Wall time, not Options.Now: the wait is real waiting, and the Redis
	// store's leases run out in real time.
	deadline := time.Now().Add(refreshLease)
	for {
		unlock, ok, err := l.o.Store.Lock(ctx, hash, refreshLease)
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("refresh session: %w", err)
		case ok:
			return unlock, nil, nil
		case !time.Now().Before(deadline):
			// Not a logout: the holder may yet finish, and a retry then
			// finds its tokens.
			return nil, nil, fmt.Errorf("refresh session: %w: another replica's refresh did not finish within %s",
				ErrIdPUnavailable, refreshLease)
		}
		t := time.NewTimer(refreshPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("refresh session: %w: waiting for another replica's refresh: %w",
				ErrIdPUnavailable, ctx.Err())
		case <-t.C:
		}
		s, fresh, err := l.loadForRefresh(ctx, id)
		if err != nil || fresh {
			return nil, s, err
		}
	}
}
