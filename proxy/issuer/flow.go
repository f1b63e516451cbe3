package issuer

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// errFull is returned when a table reached maxPending live entries.
var errFull = errors.New("too many pending sign-ins")

// flow is the login flow's state: the configured personas and clients and
// the short-lived artefacts it hands out. Everything lives in memory, so a
// restart signs everyone out, which is fine for a demo issuer.
type flow struct {
	tokenTTL time.Duration

	mu       sync.Mutex
	personas []Persona
	clients  map[string]Client
	pages    map[string]*page    // by page id
	codes    map[string]*grant   // by code
	refresh  map[string]*refresh // by refresh token
}

// page is one rendered persona picker: the validated authorization request
// and the CSRF token the form must post back.
type page struct {
	req     authRequest
	csrf    string
	expires time.Time
}

// authRequest is what the relying party asked for at /authorize.
type authRequest struct {
	clientID    string
	redirectURI string
	state       string
	nonce       string
	challenge   string
	scope       string
	mfaOnly     bool
}

// grant is an issued authorization code.
type grant struct {
	req      authRequest
	persona  string
	mfa      bool
	authTime time.Time
	expires  time.Time
	// used marks a redeemed code; it stays in the table until it expires
	// so that a replay is recognised and revokes what the code yielded.
	used   bool
	family string
}

// refresh is an issued refresh token. Rotation keeps the old token, marked
// rotated, so that presenting it again is recognised as theft and revokes
// its whole family (every token descended from the same sign-in).
type refresh struct {
	clientID string
	persona  string
	mfa      bool
	scope    string
	authTime time.Time
	family   string
	expires  time.Time
	rotated  bool
}

func newFlow(s settings) (*flow, error) {
	f := &flow{
		tokenTTL: s.tokenTTL,
		clients:  map[string]Client{},
		pages:    map[string]*page{},
		codes:    map[string]*grant{},
		refresh:  map[string]*refresh{},
	}
	if f.tokenTTL <= 0 {
		f.tokenTTL = DefaultTokenTTL
	}
	seen := map[string]bool{}
	for _, p := range s.personas {
		if err := validatePersona(p); err != nil {
			return nil, err
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("persona %q listed twice", p.Name)
		}
		seen[p.Name] = true
		f.personas = append(f.personas, p)
	}
	for _, c := range s.clients {
		if err := validateClient(c); err != nil {
			return nil, err
		}
		c.RedirectURIs = slices.Clone(c.RedirectURIs)
		c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
		f.clients[c.ID] = c
	}
	return f, nil
}

// randomToken returns 32 random bytes, base64url: unguessable and safe in
// URLs, form fields and cookie names.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// The helpers below require f.mu to be held.

func (f *flow) client(id string) (Client, bool) {
	c, ok := f.clients[id]
	return c, ok
}

func (f *flow) persona(name string) (Persona, bool) {
	idx := slices.IndexFunc(f.personas, func(p Persona) bool { return p.Name == name })
	if idx < 0 {
		return Persona{}, false
	}
	return f.personas[idx], true
}

// prune drops expired entries from a table and reports whether there is
// room for one more.
func prune[V any](table map[string]V, expires func(V) time.Time, now time.Time) bool {
	for k, v := range table {
		if !now.Before(expires(v)) {
			delete(table, k)
		}
	}
	return len(table) < maxPending
}

func (f *flow) addPage(p *page, now time.Time) (string, error) {
	if !prune(f.pages, func(p *page) time.Time { return p.expires }, now) {
		return "", errFull
	}
	id, err := randomToken()
	if err != nil {
		return "", err
	}
	f.pages[id] = p
	return id, nil
}

func (f *flow) addCode(g *grant, now time.Time) (string, error) {
	if !prune(f.codes, func(g *grant) time.Time { return g.expires }, now) {
		return "", errFull
	}
	code, err := randomToken()
	if err != nil {
		return "", err
	}
	f.codes[code] = g
	return code, nil
}

func (f *flow) addRefresh(r *refresh, now time.Time) (string, error) {
	if !prune(f.refresh, func(r *refresh) time.Time { return r.expires }, now) {
		return "", errFull
	}
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	f.refresh[tok] = r
	return tok, nil
}

// revokeFamily removes every refresh token descended from one sign-in.
func (f *flow) revokeFamily(family string) {
	for k, r := range f.refresh {
		if r.family == family {
			delete(f.refresh, k)
		}
	}
}
