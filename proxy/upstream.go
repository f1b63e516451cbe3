package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// UpstreamOptions configures the connection to the CRM.
type UpstreamOptions struct {
	URL                   *url.URL
	DialTimeout           time.Duration
	ResponseHeaderTimeout time.Duration
	IdleConnTimeout       time.Duration
	// Timeout bounds one whole upstream exchange, body included.
	Timeout             time.Duration
	MaxIdleConnsPerHost int
	// Credential adds crmgate's own credential to every upstream request.
	Credential Credential
}

// Credential is crmgate's own identity towards the CRM: one header set on
// every upstream request after every client-supplied credential has been
// removed. It is fetched before the exchange starts, so a failure to get one
// refuses the request instead of sending it unauthenticated.
type Credential interface {
	Header(ctx context.Context) (name, value string, err error)
}

// NoCredential sends nothing: the CRM trusts the network path.
type NoCredential struct{}

// Header implements Credential.
func (NoCredential) Header(context.Context) (string, string, error) { return "", "", nil }

// HeaderCredential sets one static header, e.g. EspoCRM's X-Api-Key.
type HeaderCredential struct{ Name, Value string }

// Header implements Credential.
func (c HeaderCredential) Header(context.Context) (string, string, error) {
	return c.Name, c.Value, nil
}

// ClientCredentials obtains and caches an OAuth2 client-credentials token
// (SuiteCRM's V8 API grants exactly this) and sends it as a bearer token.
type ClientCredentials struct{ src oauth2.TokenSource }

// NewClientCredentials builds a cached, auto-refreshing token source. The
// HTTP client used to fetch tokens is passed in so tests and timeouts apply.
func NewClientCredentials(cfg clientcredentials.Config, client *http.Client) *ClientCredentials {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
	return &ClientCredentials{src: oauth2.ReuseTokenSource(nil, cfg.TokenSource(ctx))}
}

// Header implements Credential.
func (c *ClientCredentials) Header(context.Context) (string, string, error) {
	tok, err := c.src.Token()
	if err != nil {
		return "", "", fmt.Errorf("upstream credential: %w", err)
	}
	return "Authorization", tok.Type() + " " + tok.AccessToken, nil
}

// NewTransport returns the upstream transport: a keep-alive pool sized for
// the proxy's concurrency (the default of 2 idle connections per host makes
// a busy proxy open and close connections constantly).
func NewTransport(o UpstreamOptions) *http.Transport {
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // never route CRM traffic through an environment proxy
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          o.MaxIdleConnsPerHost * 2,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// crmgate decides itself whether it can read a compressed body; the
		// transport must not silently inflate (and then mislabel) anything.
		DisableCompression: true,
	}
}

// forwardHeaders are the only client request headers passed to the CRM.
// An allow-list, not a deny-list: identity headers (X-Forwarded-User,
// Remote-User, X-Api-Key, cookies, Authorization...) and path-override
// headers (X-Original-URL, X-Rewrite-URL) can never reach the CRM, including
// ones nobody has thought of yet.
var forwardHeaders = []string{
	"Accept",
	"Accept-Language",
	"Content-Type",
	"If-Match",
	"If-None-Match",
	"If-Modified-Since",
	"If-Unmodified-Since",
	"User-Agent",
}

// upstreamErrorProblem maps a transport failure to 502 or 504 without
// revealing the cause.
func upstreamErrorProblem(err error) *Problem {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &Problem{Status: http.StatusGatewayTimeout, Kind: "upstream-timeout", Title: "CRM timed out",
			Detail: "The CRM did not answer in time.", Outcome: OutcomeError, Reason: "upstream timeout", Cause: err}
	}
	return &Problem{Status: http.StatusBadGateway, Kind: "upstream-unavailable", Title: "CRM unavailable",
		Detail: "The CRM could not be reached.", Outcome: OutcomeError, Reason: "upstream error", Cause: err}
}
