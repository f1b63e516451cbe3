// Package config is crmgate's configuration schema: one YAML file, decoded
// strictly (an unknown key is an error naming its path), with ${ENV}
// expansion, secrets from the environment or *_file, defaults in one place
// and a pure Validate that reports every problem at once.
//
// The structs below are the user's schema; their comments are the reference
// the README points to. Nothing built at run time is stored back here.
package config

import "time"

// Config is the whole configuration file.
type Config struct {
	// Listen is the main listener (clients and browsers): an address
	// ("0.0.0.0:8443"), or a mapping with the address and who may tell
	// crmgate the client's address.
	Listen Listener `yaml:"listen"`
	// AdminListen serves /metrics, /healthz, /readyz and /admin/*. It must
	// differ from Listen.
	AdminListen string `yaml:"admin_listen"`
	// PublicURL is the externally visible base URL (used for OIDC redirect
	// URIs and cookie security). Required when identity.oidc is set.
	PublicURL   string      `yaml:"public_url"`
	TLS         TLS         `yaml:"tls"`
	Upstream    Upstream    `yaml:"upstream"`
	CRM         CRM         `yaml:"crm"`
	Identity    Identity    `yaml:"identity"`
	Session     Session     `yaml:"session"`
	Policy      Policy      `yaml:"policy"`
	DecisionLog DecisionLog `yaml:"decision_log"`
	Metrics     Metrics     `yaml:"metrics"`
	Admin       Admin       `yaml:"admin"`
	// Budgets is where the policy's read budgets are counted.
	Budgets Budgets `yaml:"budgets"`
}

// Listener is the main listener. `listen: ":8443"` is short for
// `listen: {address: ":8443"}`.
type Listener struct {
	// Address is host:port.
	Address string `yaml:"address,scalar"`
	// TrustedProxies are the CIDRs (or single addresses) of the load
	// balancers and ingresses in front of crmgate. Only a connection from
	// one of them may say, in ClientIPHeader, whom it forwards; the client
	// address (input.request.remote_ip, the decision log) is then the
	// first address, walking the header right to left from the connection,
	// that is not a trusted proxy. From anyone else the header is ignored.
	// Empty: the connection's address is the client's.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ClientIPHeader is the header the trusted proxies write:
	// x-forwarded-for (default) or forwarded (RFC 7239). Only that one is
	// read: with both, the other could be the client's own. Neither
	// reaches the CRM.
	ClientIPHeader string `yaml:"client_ip_header"`
}

// TLS enables HTTPS on the main listener when both files are set (see
// UsesTLS). Relative paths are relative to the configuration file.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Upstream is the CRM crmgate forwards to.
type Upstream struct {
	// URL is the CRM's base URL, e.g. https://crm.internal.
	URL  string       `yaml:"url"`
	Auth UpstreamAuth `yaml:"auth"`
	// DialTimeout, ResponseHeaderTimeout and IdleConnTimeout bound the
	// transport; Timeout bounds a whole upstream exchange.
	DialTimeout           time.Duration `yaml:"dial_timeout"`
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	IdleConnTimeout       time.Duration `yaml:"idle_conn_timeout"`
	Timeout               time.Duration `yaml:"timeout"`
	// MaxIdleConnsPerHost sizes the keep-alive pool.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	// MaxRequestBody caps request bodies crmgate reads (bytes).
	MaxRequestBody int64 `yaml:"max_request_body"`
}

// UpstreamAuth is crmgate's own credential towards the CRM; whatever the
// client sent is never forwarded.
type UpstreamAuth struct {
	// Type is none, header or oauth2_client_credentials.
	Type string `yaml:"type"`
	// Header/Value (or ValueFile) for type header, e.g. X-Api-Key.
	Header    string `yaml:"header"`
	Value     string `yaml:"value"`
	ValueFile string `yaml:"value_file"`
	// TokenURL, ClientID, ClientSecret(/File) and Scopes for
	// oauth2_client_credentials (SuiteCRM V8: {crm}/Api/access_token).
	TokenURL         string   `yaml:"token_url"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	Scopes           []string `yaml:"scopes"`
}

// CRM selects the profile that classifies requests.
type CRM struct {
	// Profile is suitecrm8, espocrm, dynamics (Dataverse Web API),
	// salesforce (REST API and SOQL), hubspot (CRM v3) or generic.
	Profile string `yaml:"profile"`
	// Routes are the generic profile's routes (and extra routes for a
	// built-in one).
	Routes []Route `yaml:"routes"`
	// Shape overrides where records and fields live (generic profile).
	Shape *Shape `yaml:"shape"`
	// Modules are extra module names this CRM knows (custom modules), on
	// top of the profile's built-in list. Unknown names are still
	// classified, but metrics label them "other".
	Modules []string `yaml:"modules"`
	// PublicPaths are passed through without authentication or policy
	// (exact paths, or prefixes ending in /; "/" itself is refused). Keep
	// this short. See Config.PublicPath.
	PublicPaths []string `yaml:"public_paths"`
	// Pushdown (default true) adds the record rule to the CRM's own list
	// query where the profile can say it exactly, so lists come back in
	// full pages with the CRM's true totals. false filters every list after
	// the CRM answers (short pages, totals hidden). Records are checked
	// either way.
	Pushdown *bool `yaml:"pushdown"`
}

// Route is one generic-profile route (it mirrors profile.Route).
type Route struct {
	// Method is an upper-case HTTP method (GET, HEAD, POST, PUT, PATCH,
	// DELETE, OPTIONS).
	Method string `yaml:"method"`
	// Path is a clean pattern starting with /; a whole segment may be
	// {module}, {id} or {any}.
	Path string `yaml:"path"`
	// Action is a lowercase word (list, read, create, update, delete,
	// export, relate, or one the policy knows).
	Action string `yaml:"action"`
	// Kind is list, record, related or other.
	Kind string `yaml:"kind"`
	// Module fixes the module; exactly one of {module} in Path, Module or
	// ModuleFromBody must give it.
	Module string `yaml:"module"`
	// ModuleFromBody and IDFromBody are JSON paths into the request body.
	ModuleFromBody []string `yaml:"module_from_body"`
	IDFromBody     []string `yaml:"id_from_body"`
}

// Shape mirrors profile.Shape for the generic profile.
type Shape struct {
	ListPath   []string   `yaml:"list_path"`
	RecordPath []string   `yaml:"record_path"`
	FieldsPath []string   `yaml:"fields_path"`
	IDField    string     `yaml:"id_field"`
	TotalPaths [][]string `yaml:"total_paths"`
}

// Identity configures how callers are authenticated and what their claims
// mean.
type Identity struct {
	OIDC   OIDC   `yaml:"oidc"`
	Bearer Bearer `yaml:"bearer"`
	Claims Claims `yaml:"claims"`
	// Roles maps crmgate role → IdP values (groups or role claim values)
	// that grant it. A value may grant several roles.
	Roles map[string][]string `yaml:"roles"`
	MFA   MFA                 `yaml:"mfa"`
}

// OIDC is the browser login (authorization code + PKCE).
type OIDC struct {
	// Issuer is the OpenID provider's issuer URL (discovery is used).
	Issuer           string   `yaml:"issuer"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	Scopes           []string `yaml:"scopes"`
	// RedirectPath defaults to /.crmgate/callback under public_url.
	RedirectPath string `yaml:"redirect_path"`
}

// Bearer verifies API clients' Authorization: Bearer JWTs.
type Bearer struct {
	// Enabled turns bearer authentication on.
	Enabled bool `yaml:"enabled"`
	// Issuer defaults to identity.oidc.issuer.
	Issuer string `yaml:"issuer"`
	// Audiences the token must carry (at least one).
	Audiences []string `yaml:"audiences"`
	// Algorithms allowed (default RS256, ES256, PS256).
	Algorithms []string `yaml:"algorithms"`
}

// Claims names the token claims that feed the Subject.
type Claims struct {
	ID     string `yaml:"id"`     // default sub
	Email  string `yaml:"email"`  // default email
	Name   string `yaml:"name"`   // default name
	Roles  string `yaml:"roles"`  // default roles
	Groups string `yaml:"groups"` // default groups
	Teams  string `yaml:"teams"`  // default teams
	// Attributes maps attribute name → claim name.
	Attributes map[string]string `yaml:"attributes"`
}

// MFA says which IdP evidence counts as multi-factor, and how to ask for it.
type MFA struct {
	// AMR values that count as MFA (any of them), e.g. [mfa, otp, hwk].
	AMR []string `yaml:"amr"`
	// ACR values that count as MFA (any of them).
	ACR []string `yaml:"acr"`
	// StepUpACR is sent as acr_values when stepping a user up.
	StepUpACR string `yaml:"step_up_acr"`
	// StepUpMaxAge, when set, is sent as max_age on step-up.
	StepUpMaxAge time.Duration `yaml:"step_up_max_age"`
	// RequireForRoles forces MFA at login for these roles.
	RequireForRoles []string `yaml:"require_for_roles"`
}

// Session is the browser session store.
type Session struct {
	// Store is memory (single node) or redis (shared by replicas).
	Store string `yaml:"store"`
	Redis Redis  `yaml:"redis"`
	// CookieName defaults to crmgate_session (__Host-crmgate_session over https).
	CookieName  string        `yaml:"cookie_name"`
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// EncryptionKey(/File) encrypts refresh tokens and signs login state
	// (32 bytes, base64; see EncryptionKeyBytes). Required with store
	// redis, since every replica must open every session.
	EncryptionKey     string `yaml:"encryption_key"`
	EncryptionKeyFile string `yaml:"encryption_key_file"`
}

// Budgets says where records read against the policy's read_budget are
// counted (README "Read budgets").
type Budgets struct {
	// Store is memory (one node: replicas would each count alone) or
	// redis (every replica shares one count, on session.redis and its
	// key_prefix). Default: session.store.
	Store string `yaml:"store"`
	// OnStoreError is what happens to reads under a budget while the
	// store cannot be reached: deny (default; 503 problem
	// read-budget-unavailable) or allow (records pass uncounted).
	OnStoreError string `yaml:"on_store_error"`
	// Reserve is how many records a list takes from the store per round
	// trip (default 50, at most 10000).
	Reserve int `yaml:"reserve"`
}

// Budget store-error choices.
const (
	BudgetDeny  = "deny"
	BudgetAllow = "allow"
)

// Redis is a go-redis UniversalClient: one address = single node, several
// = cluster, master_name set = Sentinel.
type Redis struct {
	Addrs        []string `yaml:"addrs"`
	MasterName   string   `yaml:"master_name"`
	Username     string   `yaml:"username"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	DB           int      `yaml:"db"`
	// KeyPrefix namespaces crmgate's keys (default crmgate:).
	KeyPrefix string `yaml:"key_prefix"`
	TLS       bool   `yaml:"tls"`
	// LocalCache (default true) lets each replica keep the sessions it
	// reads in memory, invalidated by Redis client-side-caching broadcasts
	// (CLIENT TRACKING, Redis 6+, needs the CLIENT command); false reads
	// Redis on every request. Ignored on Cluster, which is always read
	// through.
	LocalCache *bool `yaml:"local_cache"`
}

// Policy is where the Rego policies and data come from.
type Policy struct {
	// Paths are .rego files, data .json/.yaml files or directories,
	// relative to the configuration file.
	Paths []string `yaml:"paths"`
	// Package is the Rego package root (default crmgate).
	Package string `yaml:"package"`
	// Watch reloads on file change.
	Watch  bool   `yaml:"watch"`
	Bundle Bundle `yaml:"bundle"`
}

// Bundle pulls an OPA bundle from a bundle server (https unless on
// loopback).
type Bundle struct {
	URL          string        `yaml:"url"`
	PollInterval time.Duration `yaml:"poll_interval"`
	Token        string        `yaml:"token"`
	TokenFile    string        `yaml:"token_file"`
}

// DecisionLog is the per-decision audit trail.
type DecisionLog struct {
	// Output is stdout, file, http or none.
	Output string `yaml:"output"`
	// File is the log file for output file, relative to the configuration
	// file.
	File string `yaml:"file"`
	// URL is an OPA decision-log upload endpoint (output http; https
	// unless on loopback).
	URL string `yaml:"url"`
	// BufferSize bounds queued events; beyond it events are dropped and counted.
	BufferSize int `yaml:"buffer_size"`
	// MaskPaths are input paths erased from logged input, e.g.
	// /input/resource/body/password.
	MaskPaths []string `yaml:"mask_paths"`
	// MaxRecordIDs bounds how many returned record ids one event lists.
	MaxRecordIDs int `yaml:"max_record_ids"`
}

// Metrics configures Prometheus exposition.
type Metrics struct {
	// Roles are the only role names used as a metric label value; others
	// are counted as "other".
	Roles []string `yaml:"roles"`
}

// Admin protects the admin listener.
type Admin struct {
	// Token (or TokenFile) is required as Authorization: Bearer on every
	// admin endpoint except /healthz and /readyz. It must be set, and at
	// least 16 characters, when admin_listen is not a loopback address.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}
