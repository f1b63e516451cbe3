package config

import (
	"slices"
	"time"
)

// Defaults. They live here and nowhere else: a package that needs one reads
// the effective Config, never its own copy of the number.
const (
	DefaultListen                = "127.0.0.1:8080"
	DefaultAdminListen           = "127.0.0.1:9090"
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultUpstreamTimeout       = 60 * time.Second
	DefaultMaxIdleConnsPerHost   = 256
	DefaultMaxRequestBody        = 10 << 20
	DefaultProfile               = ProfileSuiteCRM8
	DefaultRedirectPath          = "/.crmgate/callback"
	DefaultCookieName            = "crmgate_session"
	DefaultIdleTimeout           = 30 * time.Minute
	DefaultMaxLifetime           = 12 * time.Hour
	DefaultRedisKeyPrefix        = "crmgate:"
	DefaultPolicyPackage         = "crmgate"
	DefaultBundlePollInterval    = 30 * time.Second
	DefaultDecisionLogBuffer     = 8192
	DefaultMaxRecordIDs          = 100
)

// Enumerated values of the schema.
const (
	AuthNone              = "none"
	AuthHeader            = "header"
	AuthClientCredentials = "oauth2_client_credentials"

	ClientIPXForwardedFor = "x-forwarded-for"
	ClientIPForwarded     = "forwarded"

	ProfileSuiteCRM8  = "suitecrm8"
	ProfileEspoCRM    = "espocrm"
	ProfileDynamics   = "dynamics"
	ProfileGeneric    = "generic"
	ProfileHubSpot    = "hubspot"
	ProfileSalesforce = "salesforce"

	StoreMemory = "memory"
	StoreRedis  = "redis"

	LogStdout = "stdout"
	LogFile   = "file"
	LogHTTP   = "http"
	LogNone   = "none"
)

// Default returns the configuration an empty file yields before
// validation. It does not validate: an empty file names no CRM, no
// identity provider and no policy.
func Default() *Config {
	c := &Config{}
	ApplyDefaults(c)
	return c
}

// ApplyDefaults fills every unset (zero) field that has a default. It is
// idempotent and never overrides a value the file set. Lists are filled only
// when absent: an explicit empty list (mask_paths: []) is kept. Slices it
// fills are fresh copies, so callers may modify them.
//
// Defaults that are not plain constants:
//   - identity.oidc.scopes: [openid, profile, email];
//   - identity.bearer.issuer: identity.oidc.issuer (tokens from the same IdP
//     as the browser login);
//   - identity.bearer.algorithms: [RS256, ES256, PS256];
//   - identity.claims: id=sub, email=email, name=name, roles=roles,
//     groups=groups, teams=teams;
//   - identity.mfa.amr: [mfa, otp, hwk, swk] (RFC 8176 values that imply a
//     second factor), only when neither amr nor acr is set — an operator who
//     lists ACR values alone must not get AMR matching they did not ask for;
//   - decision_log.mask_paths: /input/resource/body and /input/record. The
//     decision log answers who did what to which record; the values written
//     and the records' contents are the CRM's data, not audit data, and may
//     hold passwords or personal data. Field names (input.resource.fields)
//     and record ids stay in the log;
//   - metrics.roles: the role names of identity.roles, sorted, which are a
//     bounded set the operator chose.
func ApplyDefaults(c *Config) {
	setString(&c.Listen.Address, DefaultListen)
	setString(&c.Listen.ClientIPHeader, ClientIPXForwardedFor)
	setString(&c.AdminListen, DefaultAdminListen)

	u := &c.Upstream
	setDuration(&u.DialTimeout, DefaultDialTimeout)
	setDuration(&u.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDuration(&u.IdleConnTimeout, DefaultIdleConnTimeout)
	setDuration(&u.Timeout, DefaultUpstreamTimeout)
	if u.MaxIdleConnsPerHost == 0 {
		u.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if u.MaxRequestBody == 0 {
		u.MaxRequestBody = DefaultMaxRequestBody
	}
	setString(&u.Auth.Type, AuthNone)

	setString(&c.CRM.Profile, DefaultProfile)
	if c.CRM.Pushdown == nil {
		on := true
		c.CRM.Pushdown = &on
	}

	id := &c.Identity
	setStrings(&id.OIDC.Scopes, "openid", "profile", "email")
	setString(&id.OIDC.RedirectPath, DefaultRedirectPath)
	setString(&id.Bearer.Issuer, id.OIDC.Issuer)
	setStrings(&id.Bearer.Algorithms, "RS256", "ES256", "PS256")
	setString(&id.Claims.ID, "sub")
	setString(&id.Claims.Email, "email")
	setString(&id.Claims.Name, "name")
	setString(&id.Claims.Roles, "roles")
	setString(&id.Claims.Groups, "groups")
	setString(&id.Claims.Teams, "teams")
	if id.MFA.AMR == nil && id.MFA.ACR == nil {
		id.MFA.AMR = []string{"mfa", "otp", "hwk", "swk"}
	}

	s := &c.Session
	setString(&s.Store, StoreMemory)
	setString(&s.CookieName, DefaultCookieName)
	setDuration(&s.IdleTimeout, DefaultIdleTimeout)
	setDuration(&s.MaxLifetime, DefaultMaxLifetime)
	setString(&s.Redis.KeyPrefix, DefaultRedisKeyPrefix)
	if s.Redis.LocalCache == nil {
		on := true
		s.Redis.LocalCache = &on
	}

	setString(&c.Budgets.Store, s.Store)
	setString(&c.Budgets.OnStoreError, BudgetDeny)
	if c.Budgets.Reserve == 0 {
		c.Budgets.Reserve = 50
	}

	setString(&c.Policy.Package, DefaultPolicyPackage)
	setDuration(&c.Policy.Bundle.PollInterval, DefaultBundlePollInterval)

	l := &c.DecisionLog
	setString(&l.Output, LogStdout)
	if l.BufferSize == 0 {
		l.BufferSize = DefaultDecisionLogBuffer
	}
	if l.MaxRecordIDs == 0 {
		l.MaxRecordIDs = DefaultMaxRecordIDs
	}
	setStrings(&l.MaskPaths, "/input/resource/body", "/input/record")

	if c.Metrics.Roles == nil && len(id.Roles) > 0 {
		roles := make([]string, 0, len(id.Roles))
		for r := range id.Roles {
			roles = append(roles, r)
		}
		slices.Sort(roles)
		c.Metrics.Roles = roles
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setDuration(p *time.Duration, def time.Duration) {
	if *p == 0 {
		*p = def
	}
}

// setStrings fills a list that is absent (nil). An explicit empty list
// (key: []) is the operator's choice and is left for Validate to judge.
func setStrings(p *[]string, def ...string) {
	if *p == nil {
		*p = slices.Clone(def)
	}
}
