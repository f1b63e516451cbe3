package login

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

const (
	// probeTimeout bounds how long a login start waits to learn that the
	// IdP is down (a connection refused answers at once; a black hole
	// costs this much).
	probeTimeout = 2 * time.Second
	// probeTTL is how long an answer from the IdP vouches for it: logins
	// in a burst probe it once, and an IdP that has gone away is noticed
	// within this time.
	probeTTL = time.Second
	// maxProbeBody bounds what is read of the discovery document.
	maxProbeBody = 64 << 10
)

// idpAnswers reports whether the IdP answered its discovery document
// recently, asking it again when the last answer is older than probeTTL.
// Discovery succeeded once at start; without this check a login started
// after the IdP went down would send the browser to a dead address instead
// of the IdP-unavailable page.
func (l *Login) idpAnswers(ctx context.Context) bool {
	now := l.o.Now()
	if last := l.probedAt.Load(); last != 0 {
		if age := now.Sub(time.Unix(0, last)); age >= 0 && age < probeTTL {
			return true
		}
	}
	if err := l.probe(ctx); err != nil {
		l.log.Warn("identity provider unavailable at login start", zap.Error(err))
		return false
	}
	l.probedAt.Store(now.UnixNano())
	return true
}

func (l *Login) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	u := strings.TrimSuffix(l.o.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("probe idp: %w", err)
	}
	res, err := l.o.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe idp: %w", err)
	}
	defer res.Body.Close()
	// Read (bounded) so the connection can be reused for the next probe.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxProbeBody))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("probe idp: %s: status %d", u, res.StatusCode)
	}
	return nil
}
