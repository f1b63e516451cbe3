package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/proxy/metrics"
	"github.com/crmgate/crmgate/proxy/page"
	"github.com/crmgate/crmgate/proxy/session"
)

// maxFormBytes bounds the bodies of crmgate's own form endpoints.
const maxFormBytes = 64 << 10

// serveLogoutForm shows a sign-out button (GET /.crmgate/logout). Logout
// itself is a POST, so a link or image on another site cannot sign a user
// out.
func (l *Login) serveLogoutForm(w http.ResponseWriter, r *http.Request) {
	page.ConfirmLogout(w, LogoutPath, l.keys.csrfToken(l.sessionID(r)))
}

// serveSignedOut is where the IdP sends the browser after RP-initiated
// logout.
func (l *Login) serveSignedOut(w http.ResponseWriter, _ *http.Request) {
	page.SignedOut(w, LoginPath)
}

// sameOrigin reports whether a state-changing request demonstrably comes
// from a page of crmgate's own origin: the Origin header says so, or (for
// browsers that send no Origin) Sec-Fetch-Site does, or the form carries
// the token only crmgate's logout page knows. An Origin of another site
// is refused even with a token.
func (l *Login) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return o == l.origin
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	} else if s == "same-origin" {
		return true
	}
	return l.keys.csrfOK(l.sessionID(r), r.PostFormValue("csrf"))
}

// serveLogout ends the session (POST /.crmgate/logout) and, when the IdP
// offers RP-initiated logout, continues there so the IdP session ends too.
func (l *Login) serveLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if !l.sameOrigin(r) {
		l.log.Info("logout refused: not from this site", zap.String("origin", r.Header.Get("Origin")),
			zap.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")))
		page.Forbidden(w, r, "Sign-out requests must come from this site's own sign-out page.")
		return
	}
	var idToken string
	if id := l.sessionID(r); id != "" {
		s, err := l.o.Store.Get(r.Context(), id)
		switch {
		case err == nil:
			idToken = s.IDToken
			l.log.Info("logout", zap.String("user", s.Subject.ID))
		case !errors.Is(err, session.ErrNotFound):
			// Telling the user they are signed out while the session
			// lives on would be worse than an error.
			l.log.Warn("logout: load session", zap.Error(err))
			page.Problem(w, http.StatusServiceUnavailable, "Temporarily unavailable",
				"Sign-out could not be completed right now; try again shortly.", "")
			return
		}
		if err := l.o.Store.Delete(r.Context(), id); err != nil {
			l.log.Warn("logout: delete session", zap.Error(err))
			page.Problem(w, http.StatusServiceUnavailable, "Temporarily unavailable",
				"Sign-out could not be completed right now; try again shortly.", "")
			return
		}
	}
	l.clearCookie(w, l.cookie)
	w.Header().Set("Cache-Control", "no-store")
	next := SignedOutPath
	if p := l.idp.Load(); p != nil && p.endSession != "" && idToken != "" {
		next = l.endSessionURL(p.endSession, idToken)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (l *Login) endSessionURL(endpoint, idToken string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return SignedOutPath
	}
	q := u.Query()
	q.Set("id_token_hint", idToken)
	q.Set("post_logout_redirect_uri", l.base+SignedOutPath)
	q.Set("client_id", l.o.ClientID)
	u.RawQuery = q.Encode()
	return u.String()
}

// serveBackchannel implements OIDC Back-Channel Logout 1.0: the IdP posts a
// logout token naming a user (sub) and/or one of their IdP sessions (sid);
// the sessions it names end on every replica sharing the store.
func (l *Login) serveBackchannel(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	p := l.idp.Load()
	if p == nil {
		l.o.Metrics.Authentication(metrics.AuthBackchannel, metrics.AuthFailure)
		backchannelError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		l.o.Metrics.Authentication(metrics.AuthBackchannel, metrics.AuthFailure)
		backchannelError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	// VerifyLogout checks signature, issuer, audience, expiry, the
	// back-channel event, sub and/or sid, jti, and that there is no nonce
	// (so an ID token cannot be replayed as a logout token).
	lt, err := p.verifier.VerifyLogout(l.clientCtx(r.Context()), raw)
	if err == nil && !l.replays.first(lt.TokenID, lt.Expiry, l.o.Now()) {
		err = errors.New("logout token replayed")
	}
	if err != nil {
		l.o.Metrics.Authentication(metrics.AuthBackchannel, metrics.AuthFailure)
		l.log.Info("back-channel logout refused", zap.Error(err))
		backchannelError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	n, err := l.revokeNamed(r.Context(), lt.Subject, lt.SessionID)
	if err != nil {
		l.o.Metrics.Authentication(metrics.AuthBackchannel, metrics.AuthFailure)
		l.log.Warn("back-channel logout: revoke", zap.Error(err))
		backchannelError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	l.o.Metrics.Authentication(metrics.AuthBackchannel, metrics.AuthSuccess)
	l.log.Info("back-channel logout", zap.String("user", lt.Subject), zap.Bool("by_sid", lt.SessionID != ""), zap.Int("sessions", n))
	w.WriteHeader(http.StatusOK)
}

// revokeNamed ends the sessions a logout token names: with a sid, the
// sessions of that IdP session (of the user, when sub is given too, plus
// the user's sessions that carry no sid, which cannot be told apart);
// with sub alone, every session of the user. A sid alone is looked up in
// the store's sid index rather than by scanning sessions, so the one named
// is found however many sessions the store holds: a 200 to the IdP must
// mean the logout happened.
func (l *Login) revokeNamed(ctx context.Context, sub, sid string) (int, error) {
	if sid == "" {
		return l.o.Store.RevokeUser(ctx, sub)
	}
	var list []*session.Session
	var err error
	if sub != "" {
		list, err = l.o.Store.ListUser(ctx, sub)
	} else {
		list, err = l.o.Store.ListSID(ctx, sid)
	}
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	n := 0
	for _, s := range list {
		if s.SID != sid && (sub == "" || s.SID != "") {
			continue
		}
		if err := l.o.Store.DeleteHash(ctx, s.Hash); err != nil {
			return n, fmt.Errorf("revoke sessions: %w", err)
		}
		n++
	}
	return n, nil
}

func backchannelError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":%q}`, code)
}

// replayCache remembers the jti of logout tokens until they expire, so a
// captured token cannot be replayed to this replica to end sessions the
// user made after it.
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// maxReplayEntries bounds the cache; tokens are short-lived, so it only
// fills under attack, and then the oldest entries are dropped first.
const maxReplayEntries = 10_000

func (c *replayCache) first(jti string, exp, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	if len(c.seen) >= maxReplayEntries {
		for k, e := range c.seen {
			if !e.After(now) {
				delete(c.seen, k)
			}
		}
	}
	if _, ok := c.seen[jti]; ok {
		return false
	}
	if len(c.seen) < maxReplayEntries {
		c.seen[jti] = exp
	}
	return true
}
