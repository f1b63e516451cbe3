package issuer

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"
)

// The two authentication context classes the persona picker can assert.
const (
	// ACRPassword is the acr of a sign-in with the "sign in" button
	// (amr ["pwd"]).
	ACRPassword = "urn:crmgate:acr:pwd"
	// ACRMFA is the acr of a sign-in with the "sign in with MFA" button
	// (amr ["pwd","otp","mfa"]).
	ACRMFA = "urn:crmgate:acr:mfa"
)

// Lifetimes of the login flow's artefacts.
const (
	// CodeTTL is how long an authorization code can be redeemed.
	CodeTTL = 60 * time.Second
	// pageTTL is how long a persona page (and its CSRF token) stays valid.
	pageTTL = 10 * time.Minute
	// DefaultTokenTTL is the lifetime of ID and access tokens unless
	// WithTokenTTL says otherwise.
	DefaultTokenTTL = time.Hour
	// RefreshTTL is the lifetime of a refresh token (each rotation starts
	// a new one, but never past the sign-in's own end).
	RefreshTTL = 8 * time.Hour
	// maxPending bounds each in-memory table (open pages, codes, refresh
	// tokens) so that a loop hammering /authorize cannot exhaust memory.
	maxPending = 10000
)

// Persona is a user the sign-in page offers. The issuer authenticates
// nobody: whoever clicks a persona's button becomes that persona.
type Persona struct {
	// Name identifies the persona on the page and in form posts; letters,
	// digits, '.', '_' and '-' only. It is the sub claim unless Claims
	// sets one.
	Name string
	// Description is shown next to the name.
	Description string
	// Claims are copied into every ID token minted for the persona. The
	// issuer sets iss, aud, azp, iat, nbf, exp, auth_time, amr, acr and
	// nonce itself, overriding any value here.
	Claims map[string]any
	// MFA offers the "sign in with MFA" button for this persona.
	MFA bool
}

// Client is a registered relying party of the login flow.
type Client struct {
	// ID is the client_id.
	ID string
	// Secret authenticates the client at the token endpoint
	// (client_secret_basic or client_secret_post).
	Secret string
	// RedirectURIs are the only redirect_uri values accepted, compared as
	// exact strings.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the only post_logout_redirect_uri values
	// the logout endpoint redirects to, compared as exact strings.
	PostLogoutRedirectURIs []string
}

// Option configures an Issuer at New.
type Option func(*settings)

type settings struct {
	personas []Persona
	clients  []Client
	tokenTTL time.Duration
}

// WithPersonas enables the login flow (/authorize, /token, /logout) and
// lists the personas its sign-in page offers, in order. Without it those
// endpoints answer 501.
func WithPersonas(ps ...Persona) Option {
	return func(s *settings) { s.personas = append(s.personas, ps...) }
}

// WithClient registers a relying party; see also Issuer.RegisterClient.
func WithClient(c Client) Option {
	return func(s *settings) { s.clients = append(s.clients, c) }
}

// WithTokenTTL sets the lifetime of ID and access tokens (default
// DefaultTokenTTL); tests of refresh use a short one.
func WithTokenTTL(d time.Duration) Option {
	return func(s *settings) { s.tokenTTL = d }
}

var personaName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func validatePersona(p Persona) error {
	if !personaName.MatchString(p.Name) {
		return fmt.Errorf("persona name %q must be letters, digits, '.', '_' or '-'", p.Name)
	}
	if sub, ok := p.Claims["sub"]; ok {
		if s, isString := sub.(string); !isString || s == "" {
			return fmt.Errorf("persona %s: sub claim must be a non-empty string", p.Name)
		}
	}
	return nil
}

func validateClient(c Client) error {
	if c.ID == "" || c.Secret == "" {
		return errors.New("client needs an id and a secret")
	}
	if len(c.RedirectURIs) == 0 {
		return fmt.Errorf("client %s: at least one redirect uri is required", c.ID)
	}
	for _, raw := range slices.Concat(c.RedirectURIs, c.PostLogoutRedirectURIs) {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("client %s: redirect uri %q: %w", c.ID, raw, err)
		}
		// A fragment cannot carry a query-encoded code, and a relative
		// URI would resolve against the issuer: both are configuration
		// mistakes worth failing on.
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("client %s: redirect uri %q must be an absolute http(s) url without fragment", c.ID, raw)
		}
	}
	return nil
}

// RegisterClient adds or replaces a relying party at run time, for callers
// that learn their callback URL only after the issuer runs. It fails when
// the login flow is disabled (no personas) or the client is malformed.
func (i *Issuer) RegisterClient(c Client) error {
	if i.flow == nil {
		return errors.New("register client: the issuer has no personas, so no login flow")
	}
	if err := validateClient(c); err != nil {
		return fmt.Errorf("register client: %w", err)
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	i.flow.mu.Lock()
	defer i.flow.mu.Unlock()
	i.flow.clients[c.ID] = c
	return nil
}

// UpdatePersona replaces the persona with p's name. Tokens minted later,
// including those minted on refresh, carry the new claims, which is how a
// test shows that a role change at the IdP reaches a relying party.
func (i *Issuer) UpdatePersona(p Persona) error {
	if i.flow == nil {
		return errors.New("update persona: the issuer has no personas")
	}
	if err := validatePersona(p); err != nil {
		return fmt.Errorf("update persona: %w", err)
	}
	i.flow.mu.Lock()
	defer i.flow.mu.Unlock()
	idx := slices.IndexFunc(i.flow.personas, func(q Persona) bool { return q.Name == p.Name })
	if idx < 0 {
		return fmt.Errorf("update persona: no persona %q", p.Name)
	}
	i.flow.personas[idx] = p
	return nil
}

// subject is the sub claim of a persona.
func (p Persona) subject() string {
	if s, ok := p.Claims["sub"].(string); ok {
		return s
	}
	return p.Name
}
