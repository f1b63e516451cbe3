package config

import (
	"slices"
	"strings"
)

// asymmetricAlgorithms are the JWS algorithms a bearer token may use. HS*
// would make every holder of the shared secret an issuer, and "none" is no
// signature at all.
var asymmetricAlgorithms = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

func (c *Config) validateIdentity(ps *problems) {
	id := c.Identity
	if id.OIDC.Issuer == "" && !id.Bearer.Enabled {
		ps.add("identity", 0, "set identity.oidc.issuer or identity.bearer.enabled: crmgate does not run unauthenticated")
	}
	c.validateOIDC(ps)
	c.validateBearer(ps)

	cl := id.Claims
	for _, f := range []struct{ name, v string }{
		{"id", cl.ID}, {"email", cl.Email}, {"name", cl.Name},
		{"roles", cl.Roles}, {"groups", cl.Groups}, {"teams", cl.Teams},
	} {
		if f.v == "" {
			ps.add(field("identity.claims", f.name), 0, "must not be empty")
		}
	}
	for _, k := range sortedKeys(cl.Attributes) {
		p := mapKey("identity.claims.attributes", k)
		if strings.TrimSpace(k) == "" {
			ps.add(p, 0, "attribute name must not be empty")
		}
		if cl.Attributes[k] == "" {
			ps.add(p, 0, "claim name must not be empty")
		}
	}

	for _, role := range sortedKeys(id.Roles) {
		p := mapKey("identity.roles", role)
		if strings.TrimSpace(role) == "" || strings.TrimSpace(role) != role {
			ps.add(p, 0, "role name must be non-empty without surrounding spaces")
		}
		if len(id.Roles[role]) == 0 {
			ps.add(p, 0, "grants nothing: list the IdP values (groups or roles) that grant it")
		}
		for i, v := range id.Roles[role] {
			if v == "" {
				ps.add(index(p, i), 0, "must not be empty")
			}
		}
	}

	m := id.MFA
	if len(m.AMR) == 0 && len(m.ACR) == 0 {
		ps.add("identity.mfa", 0, "list amr or acr values: otherwise no login ever counts as MFA")
	}
	checkNonEmpty(ps, "identity.mfa.amr", m.AMR)
	checkNonEmpty(ps, "identity.mfa.acr", m.ACR)
	if m.StepUpMaxAge < 0 {
		ps.add("identity.mfa.step_up_max_age", 0, "must not be negative")
	}
	for i, r := range m.RequireForRoles {
		p := index("identity.mfa.require_for_roles", i)
		if r == "" {
			ps.add(p, 0, "must not be empty")
			continue
		}
		// A misspelt role here would silently require MFA of nobody.
		if len(id.Roles) > 0 {
			if _, ok := id.Roles[r]; !ok {
				ps.add(p, 0, "%s is not a role in identity.roles", quote(r))
			}
		}
	}
}

func (c *Config) validateOIDC(ps *problems) {
	o := c.Identity.OIDC
	const p = "identity.oidc"
	if o.Issuer == "" {
		if o.ClientID != "" || o.ClientSecret != "" {
			ps.add(p+".issuer", 0, "required when client_id or client_secret is set")
		}
		return
	}
	checkURL(ps, p+".issuer", o.Issuer, true)
	if o.ClientID == "" {
		ps.add(p+".client_id", 0, "required")
	}
	if c.PublicURL == "" {
		ps.add("public_url", 0, "required for identity.oidc (the redirect URI is built from it)")
	}
	if !slices.Contains(o.Scopes, "openid") {
		ps.add(p+".scopes", 0, "must include openid")
	}
	checkNonEmpty(ps, p+".scopes", o.Scopes)
	switch rp := o.RedirectPath; {
	case !strings.HasPrefix(rp, "/"):
		ps.add(p+".redirect_path", 0, "must start with /")
	case !isCleanPath(rp) || strings.ContainsAny(rp, "%?#\\") || hasControlOrSpace(rp):
		ps.add(p+".redirect_path", 0, "must be a clean path without %%, ?, #, \\ or spaces")
	}
}

func (c *Config) validateBearer(ps *problems) {
	b := c.Identity.Bearer
	const p = "identity.bearer"
	if !b.Enabled {
		return
	}
	switch {
	case b.Issuer == "" && c.Identity.OIDC.Issuer == "":
		ps.add(p+".issuer", 0, "required (or set identity.oidc.issuer)")
	case b.Issuer != "" && b.Issuer != c.Identity.OIDC.Issuer:
		// When it equals the OIDC issuer, validateOIDC already checked it.
		checkURL(ps, p+".issuer", b.Issuer, true)
	}
	if len(b.Audiences) == 0 {
		ps.add(p+".audiences", 0, "at least one audience is required: a token issued for another service must not be accepted")
	}
	checkNonEmpty(ps, p+".audiences", b.Audiences)
	if len(b.Algorithms) == 0 {
		ps.add(p+".algorithms", 0, "at least one algorithm is required")
	}
	for i, a := range b.Algorithms {
		if slices.Contains(asymmetricAlgorithms, a) {
			continue
		}
		if strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS") {
			ps.add(index(p+".algorithms", i), 0, "%s is refused: only asymmetric signatures are accepted", quote(a))
			continue
		}
		ps.add(index(p+".algorithms", i), 0, "must be one of %s; got %s", strings.Join(asymmetricAlgorithms, ", "), quote(a))
	}
}

func checkNonEmpty(ps *problems, p string, list []string) {
	for i, s := range list {
		if s == "" {
			ps.add(index(p, i), 0, "must not be empty")
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
