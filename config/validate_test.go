package config

import (
	"strings"
	"testing"
	"time"
)

// valid returns an effective configuration that passes Validate, for the
// table below to break one rule at a time.
func valid() *Config {
	c := &Config{}
	c.Upstream.URL = "http://crm.internal:8080"
	c.Identity.Bearer.Enabled = true
	c.Identity.Bearer.Issuer = "https://id.example"
	c.Identity.Bearer.Audiences = []string{"crmgate"}
	c.Policy.Paths = []string{"rego"}
	ApplyDefaults(c)
	return c
}

// withOIDC adds a browser login to valid().
func withOIDC(c *Config) {
	c.PublicURL = "https://crm.example"
	c.Identity.OIDC.Issuer = "https://id.example"
	c.Identity.OIDC.ClientID = "crmgate"
}

const key32 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func TestValidateAcceptsValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"bearer only", func(*Config) {}},
		{"oidc only", func(c *Config) {
			withOIDC(c)
			c.Identity.Bearer = Bearer{}
		}},
		{"oidc issuer on loopback over http", func(c *Config) {
			withOIDC(c)
			c.Identity.OIDC.Issuer = "http://127.0.0.1:5556/dex"
			c.PublicURL = "http://localhost:8080"
		}},
		{"admin on ipv6 loopback without token", func(c *Config) { c.AdminListen = "[::1]:9090" }},
		{"short admin token on loopback", func(c *Config) { c.Admin.Token = "admin-token" }},
		{"admin on all interfaces with token", func(c *Config) {
			c.AdminListen = ":9090"
			c.Admin.Token = "0123456789abcdef"
		}},
		{"two ephemeral ports", func(c *Config) { c.Listen.Address, c.AdminListen = "127.0.0.1:0", "127.0.0.1:0" }},
		{"same port on different addresses", func(c *Config) { c.Listen.Address, c.AdminListen = "10.0.0.1:8080", "127.0.0.1:8080" }},
		{"every asymmetric algorithm", func(c *Config) { c.Identity.Bearer.Algorithms = asymmetricAlgorithms }},
		{"header auth", func(c *Config) {
			c.Upstream.Auth = UpstreamAuth{Type: AuthHeader, Header: "X-Api-Key", Value: "k"}
		}},
		{"client credentials", func(c *Config) {
			c.Upstream.Auth = UpstreamAuth{Type: AuthClientCredentials, TokenURL: "http://crm.internal/Api/access_token",
				ClientID: "id", ClientSecret: "s", Scopes: []string{"api"}}
		}},
		{"redis sentinel with url-safe raw key", func(c *Config) {
			c.Session.Store = StoreRedis
			c.Session.Redis = Redis{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "m", DB: 2, KeyPrefix: "x:"}
			c.Session.EncryptionKey = strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(key32), "=")
		}},
		{"generic profile", func(c *Config) {
			c.CRM.Profile = ProfileGeneric
			c.CRM.Shape = &Shape{ListPath: []string{"data"}, IDField: "id", TotalPaths: [][]string{{"meta", "total"}}}
			c.CRM.Routes = []Route{
				{Method: "GET", Path: "/api/{module}", Action: "list", Kind: "list"},
				{Method: "GET", Path: "/api/{module}/{id}", Action: "read", Kind: "record"},
				{Method: "GET", Path: "/api/{module}/{id}/{any}", Action: "read", Kind: "related"},
				{Method: "PATCH", Path: "/api/records", Action: "update", Kind: "record",
					ModuleFromBody: []string{"data", "type"}, IDFromBody: []string{"data", "id"}},
				{Method: "POST", Path: "/api/export", Action: "export", Kind: "other", Module: "Accounts"},
			}
		}},
		{"public paths", func(c *Config) { c.CRM.PublicPaths = []string{"/dist/", "/favicon.ico", "/legacy/themes/default/"} }},
		{"bundle only", func(c *Config) {
			c.Policy.Paths = nil
			c.Policy.Bundle.URL = "https://bundles.example/crmgate.tar.gz"
			c.Policy.Bundle.Token = "t"
		}},
		{"dotted package", func(c *Config) { c.Policy.Package = "acme.crm.v2" }},
		{"decision log over https", func(c *Config) {
			c.DecisionLog.Output = LogHTTP
			c.DecisionLog.URL = "https://logs.example/logs"
		}},
		{"acr only", func(c *Config) { c.Identity.MFA = MFA{ACR: []string{"urn:mfa"}} }},
		{"mfa roles that exist", func(c *Config) {
			c.Identity.Roles = map[string][]string{"admin": {"crm-admins"}}
			c.Identity.MFA.RequireForRoles = []string{"admin"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tc.mutate(c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		path   string
		msg    string
	}{
		// listeners
		{"listen missing", func(c *Config) { c.Listen.Address = "" }, "listen", "required"},
		{"listen without port", func(c *Config) { c.Listen.Address = "8080" }, "listen", "host:port"},
		{"listen port out of range", func(c *Config) { c.Listen.Address = "127.0.0.1:99999" }, "listen", "invalid port"},
		{"listen named port", func(c *Config) { c.Listen.Address = "127.0.0.1:http" }, "listen", "invalid port"},
		{"listen bad host", func(c *Config) { c.Listen.Address = "bad_host!:80" }, "listen", "invalid host"},
		{"admin equals listen", func(c *Config) { c.AdminListen = c.Listen.Address }, "admin_listen", "must differ"},
		{"admin on wildcard of listen port", func(c *Config) { c.Listen.Address = ":9090"; c.Admin.Token = "0123456789abcdef" }, "admin_listen", "must differ"},
		{"admin localhost vs 127.0.0.1", func(c *Config) { c.Listen.Address = "localhost:9090" }, "admin_listen", "must differ"},
		{"public admin without token", func(c *Config) { c.AdminListen = "0.0.0.0:9090" }, "admin.token", "required"},
		{"all-interfaces admin without token", func(c *Config) { c.AdminListen = ":9090" }, "admin.token", "required"},
		{"admin by hostname without token", func(c *Config) { c.AdminListen = "crmgate.internal:9090" }, "admin.token", "required"},
		{"short admin token off loopback", func(c *Config) {
			c.AdminListen = "10.0.0.5:9090"
			c.Admin.Token = "secret"
		}, "admin.token", "too short"},
		{"public url over http", func(c *Config) { c.PublicURL = "http://crm.example" }, "public_url", "https"},
		{"public url relative", func(c *Config) { c.PublicURL = "crm.example" }, "public_url", "absolute"},
		{"public url with query", func(c *Config) { c.PublicURL = "https://crm.example/?x=1" }, "public_url", "query"},
		{"tls cert without key", func(c *Config) { c.TLS.CertFile = "c.pem" }, "tls", "both"},
		{"tls key without cert", func(c *Config) { c.TLS.KeyFile = "k.pem" }, "tls", "both"},

		// upstream
		{"upstream missing", func(c *Config) { c.Upstream.URL = "" }, "upstream.url", "required"},
		{"upstream without scheme", func(c *Config) { c.Upstream.URL = "crm.internal" }, "upstream.url", "absolute"},
		{"upstream ftp", func(c *Config) { c.Upstream.URL = "ftp://crm.internal" }, "upstream.url", "absolute"},
		{"upstream without host", func(c *Config) { c.Upstream.URL = "http:///x" }, "upstream.url", "host"},
		{"upstream opaque", func(c *Config) { c.Upstream.URL = "http:crm.internal" }, "upstream.url", "host"},
		{"upstream with credentials", func(c *Config) { c.Upstream.URL = "http://admin:hunter2@crm.internal" }, "upstream.url", "credentials"},
		{"upstream with query", func(c *Config) { c.Upstream.URL = "http://crm.internal/?x=1" }, "upstream.url", "query"},
		{"upstream with empty query", func(c *Config) { c.Upstream.URL = "http://crm.internal/?" }, "upstream.url", "query"},
		{"upstream with fragment", func(c *Config) { c.Upstream.URL = "http://crm.internal/#x" }, "upstream.url", "fragment"},
		{"negative timeout", func(c *Config) { c.Upstream.Timeout = -time.Second }, "upstream.timeout", "greater than zero"},
		{"zero dial timeout", func(c *Config) { c.Upstream.DialTimeout = 0 }, "upstream.dial_timeout", "greater than zero"},
		{"zero idle conns", func(c *Config) { c.Upstream.MaxIdleConnsPerHost = 0 }, "upstream.max_idle_conns_per_host", "greater than zero"},
		{"negative body limit", func(c *Config) { c.Upstream.MaxRequestBody = -1 }, "upstream.max_request_body", "greater than zero"},
		{"unknown auth type", func(c *Config) { c.Upstream.Auth.Type = "basic" }, "upstream.auth.type", "must be one of"},
		{"empty auth type", func(c *Config) { c.Upstream.Auth.Type = "" }, "upstream.auth.type", "must be one of"},
		{"value without type", func(c *Config) { c.Upstream.Auth.Value = "k" }, "upstream.auth.value", "not used with type none"},
		{"header missing", func(c *Config) { c.Upstream.Auth = UpstreamAuth{Type: AuthHeader, Value: "k"} }, "upstream.auth.header", "required"},
		{"header invalid", func(c *Config) { c.Upstream.Auth = UpstreamAuth{Type: AuthHeader, Header: "X Api", Value: "k"} }, "upstream.auth.header", "valid header"},
		{"header hop-by-hop", func(c *Config) { c.Upstream.Auth = UpstreamAuth{Type: AuthHeader, Header: "connection", Value: "k"} }, "upstream.auth.header", "hop-by-hop"},
		{"header value missing", func(c *Config) { c.Upstream.Auth = UpstreamAuth{Type: AuthHeader, Header: "X-K"} }, "upstream.auth.value", "required"},
		{"header value injection", func(c *Config) {
			c.Upstream.Auth = UpstreamAuth{Type: AuthHeader, Header: "X-K", Value: "k\r\nX-Admin: 1"}
		}, "upstream.auth.value", "line breaks"},
		{"client credentials missing token url", func(c *Config) {
			c.Upstream.Auth = UpstreamAuth{Type: AuthClientCredentials, ClientID: "i", ClientSecret: "s"}
		}, "upstream.auth.token_url", "required"},
		{"client credentials missing id", func(c *Config) {
			c.Upstream.Auth = UpstreamAuth{Type: AuthClientCredentials, TokenURL: "http://crm/t", ClientSecret: "s"}
		}, "upstream.auth.client_id", "required"},
		{"client credentials missing secret", func(c *Config) {
			c.Upstream.Auth = UpstreamAuth{Type: AuthClientCredentials, TokenURL: "http://crm/t", ClientID: "i"}
		}, "upstream.auth.client_secret", "required"},
		{"scopes with header auth", func(c *Config) {
			c.Upstream.Auth = UpstreamAuth{Type: AuthHeader, Header: "X-K", Value: "k", Scopes: []string{"a"}}
		}, "upstream.auth.scopes", "not used"},

		// crm
		{"unknown profile", func(c *Config) { c.CRM.Profile = "zoho" }, "crm.profile", "must be one of"},
		{"generic without routes", func(c *Config) { c.CRM.Profile = ProfileGeneric }, "crm.routes", "required for profile generic"},
		{"generic without shape", func(c *Config) { c.CRM.Profile = ProfileGeneric }, "crm.shape", "required for profile generic"},
		{"shape without id field", func(c *Config) { c.CRM.Shape = &Shape{} }, "crm.shape.id_field", "required"},
		{"shape empty total path", func(c *Config) { c.CRM.Shape = &Shape{IDField: "id", TotalPaths: [][]string{{}}} }, "crm.shape.total_paths[0]", "must not be empty"},
		{"shape empty segment", func(c *Config) { c.CRM.Shape = &Shape{IDField: "id", ListPath: []string{"data", ""}} }, "crm.shape.list_path[1]", "must not be empty"},
		{"custom module name", func(c *Config) { c.CRM.Modules = []string{"ok", "not ok"} }, "crm.modules[1]", "module name"},
		{"route lowercase method", route(func(r *Route) { r.Method = "get" }), "crm.routes[0].method", "must be one of"},
		{"route trace method", route(func(r *Route) { r.Method = "TRACE" }), "crm.routes[0].method", "must be one of"},
		{"route path missing", route(func(r *Route) { r.Path = "" }), "crm.routes[0].path", "required"},
		{"route path relative", route(func(r *Route) { r.Path = "api/{module}" }), "crm.routes[0].path", "start with /"},
		{"route path double slash", route(func(r *Route) { r.Path = "/api//{module}" }), "crm.routes[0].path", "clean"},
		{"route path dot dot", route(func(r *Route) { r.Path = "/api/../{module}" }), "crm.routes[0].path", "clean"},
		{"route path percent", route(func(r *Route) { r.Path = "/api/%7Bmodule%7D" }), "crm.routes[0].path", "clean"},
		{"route unknown placeholder", route(func(r *Route) { r.Path = "/api/{mod}" }), "crm.routes[0].path", "placeholders"},
		{"route partial placeholder", route(func(r *Route) { r.Path = "/api/{module}/x{id}" }), "crm.routes[0].path", "placeholders"},
		{"route placeholder twice", route(func(r *Route) { r.Path = "/api/{module}/{module}" }), "crm.routes[0].path", "only once"},
		{"route id twice", route(func(r *Route) { r.Path = "/api/{module}/{id}/{id}" }), "crm.routes[0].path", "only once"},
		{"route capital action", route(func(r *Route) { r.Action = "Read" }), "crm.routes[0].action", "lowercase"},
		{"route empty action", route(func(r *Route) { r.Action = "" }), "crm.routes[0].action", "lowercase"},
		{"route action with space", route(func(r *Route) { r.Action = "read all" }), "crm.routes[0].action", "lowercase"},
		{"route kind", route(func(r *Route) { r.Kind = "single" }), "crm.routes[0].kind", "must be one of"},
		{"route without module", route(func(r *Route) { r.Path = "/api/things" }), "crm.routes[0].module", "required"},
		{"route module twice", route(func(r *Route) { r.Module = "Accounts" }), "crm.routes[0].module", "once"},
		{"route module from body and fixed", route(func(r *Route) {
			r.Path, r.Module, r.ModuleFromBody = "/api/x", "Accounts", []string{"type"}
		}), "crm.routes[0].module", "once"},
		{"route id twice sources", route(func(r *Route) { r.Path, r.IDFromBody = "/api/{module}/{id}", []string{"id"} }), "crm.routes[0].id_from_body", "already has {id}"},
		{"route empty body path", route(func(r *Route) { r.Path, r.ModuleFromBody = "/api/x", []string{"data", ""} }), "crm.routes[0].module_from_body[1]", "must not be empty"},
		{"duplicate route", func(c *Config) {
			r := Route{Method: "GET", Path: "/api/{module}", Action: "list", Kind: "list"}
			c.CRM.Routes = []Route{r, r}
		}, "crm.routes[1]", "duplicate of crm.routes[0]"},
		{"public path relative", publicPath("static/"), "crm.public_paths[0]", "start with /"},
		{"public path root", publicPath("/"), "crm.public_paths[0]", "whole CRM"},
		{"public path dot dot", publicPath("/static/../Api/"), "crm.public_paths[0]", ".."},
		{"public path double slash", publicPath("/static//"), "crm.public_paths[0]", "//"},
		{"public path percent", publicPath("/static%2f"), "crm.public_paths[0]", "%"},
		{"public path dot segment", publicPath("/static/./x"), "crm.public_paths[0]", "clean"},
		{"public path query", publicPath("/login?x"), "crm.public_paths[0]", "clean"},
		{"public path space", publicPath("/a b"), "crm.public_paths[0]", "clean"},
		{"public path backslash", publicPath("/static\\x"), "crm.public_paths[0]", "clean"},

		// identity
		{"no authentication", func(c *Config) { c.Identity.Bearer.Enabled = false }, "identity", "unauthenticated"},
		{"oidc without client id", func(c *Config) { withOIDC(c); c.Identity.OIDC.ClientID = "" }, "identity.oidc.client_id", "required"},
		{"oidc without public url", func(c *Config) { withOIDC(c); c.PublicURL = "" }, "public_url", "required"},
		{"oidc issuer over http", func(c *Config) { withOIDC(c); c.Identity.OIDC.Issuer = "http://id.example" }, "identity.oidc.issuer", "https"},
		{"oidc issuer relative", func(c *Config) { withOIDC(c); c.Identity.OIDC.Issuer = "id.example" }, "identity.oidc.issuer", "absolute"},
		{"oidc without openid scope", func(c *Config) { withOIDC(c); c.Identity.OIDC.Scopes = []string{"profile"} }, "identity.oidc.scopes", "openid"},
		{"oidc redirect path relative", func(c *Config) { withOIDC(c); c.Identity.OIDC.RedirectPath = "callback" }, "identity.oidc.redirect_path", "start with /"},
		{"oidc redirect path unclean", func(c *Config) { withOIDC(c); c.Identity.OIDC.RedirectPath = "/a/../cb" }, "identity.oidc.redirect_path", "clean"},
		{"oidc client id without issuer", func(c *Config) { c.Identity.OIDC.ClientID = "x" }, "identity.oidc.issuer", "required"},
		{"bearer without issuer", func(c *Config) { c.Identity.Bearer.Issuer = "" }, "identity.bearer.issuer", "required"},
		{"bearer issuer over http", func(c *Config) { c.Identity.Bearer.Issuer = "http://id.example" }, "identity.bearer.issuer", "https"},
		{"bearer without audience", func(c *Config) { c.Identity.Bearer.Audiences = nil }, "identity.bearer.audiences", "at least one"},
		{"bearer empty audience", func(c *Config) { c.Identity.Bearer.Audiences = []string{""} }, "identity.bearer.audiences[0]", "must not be empty"},
		{"bearer alg none", func(c *Config) { c.Identity.Bearer.Algorithms = []string{"RS256", "none"} }, "identity.bearer.algorithms[1]", "refused"},
		{"bearer alg None", func(c *Config) { c.Identity.Bearer.Algorithms = []string{"None"} }, "identity.bearer.algorithms[0]", "refused"},
		{"bearer alg HS256", func(c *Config) { c.Identity.Bearer.Algorithms = []string{"HS256"} }, "identity.bearer.algorithms[0]", "refused"},
		{"bearer alg hs512", func(c *Config) { c.Identity.Bearer.Algorithms = []string{"hs512"} }, "identity.bearer.algorithms[0]", "refused"},
		{"bearer alg lowercase rs256", func(c *Config) { c.Identity.Bearer.Algorithms = []string{"rs256"} }, "identity.bearer.algorithms[0]", "must be one of"},
		{"bearer alg unknown", func(c *Config) { c.Identity.Bearer.Algorithms = []string{"RS999"} }, "identity.bearer.algorithms[0]", "must be one of"},
		{"bearer no algorithms", func(c *Config) { c.Identity.Bearer.Algorithms = []string{} }, "identity.bearer.algorithms", "at least one"},
		{"empty id claim", func(c *Config) { c.Identity.Claims.ID = "" }, "identity.claims.id", "must not be empty"},
		{"empty attribute claim", func(c *Config) { c.Identity.Claims.Attributes = map[string]string{"crm_user_id": ""} }, "identity.claims.attributes.crm_user_id", "claim name"},
		{"empty attribute name", func(c *Config) { c.Identity.Claims.Attributes = map[string]string{"": "x"} }, `identity.claims.attributes[""]`, "attribute name"},
		{"empty role name", func(c *Config) { c.Identity.Roles = map[string][]string{"": {"g"}} }, `identity.roles[""]`, "role name"},
		{"role name with spaces", func(c *Config) { c.Identity.Roles = map[string][]string{" admin": {"g"}} }, `identity.roles[" admin"]`, "role name"},
		{"role granting nothing", func(c *Config) { c.Identity.Roles = map[string][]string{"sales": {}} }, "identity.roles.sales", "grants nothing"},
		{"role empty value", func(c *Config) { c.Identity.Roles = map[string][]string{"sales": {"g", ""}} }, "identity.roles.sales[1]", "must not be empty"},
		{"no mfa evidence", func(c *Config) { c.Identity.MFA = MFA{AMR: []string{}} }, "identity.mfa", "no login ever counts as MFA"},
		{"empty amr value", func(c *Config) { c.Identity.MFA.AMR = []string{"otp", ""} }, "identity.mfa.amr[1]", "must not be empty"},
		{"negative step up max age", func(c *Config) { c.Identity.MFA.StepUpMaxAge = -time.Minute }, "identity.mfa.step_up_max_age", "negative"},
		{"mfa for unknown role", func(c *Config) {
			c.Identity.Roles = map[string][]string{"admin": {"crm-admins"}}
			c.Identity.MFA.RequireForRoles = []string{"admn"}
		}, "identity.mfa.require_for_roles[0]", "not a role"},

		// session
		{"unknown store", func(c *Config) { c.Session.Store = "postgres" }, "session.store", "memory or redis"},
		{"redis without addrs", func(c *Config) { c.Session.Store = StoreRedis; c.Session.EncryptionKey = key32 }, "session.redis.addrs", "required"},
		{"redis without key", func(c *Config) {
			c.Session.Store = StoreRedis
			c.Session.Redis.Addrs = []string{"r:6379"}
		}, "session.encryption_key", "required for store redis"},
		{"redis addr without port", func(c *Config) { c.Session.Redis.Addrs = []string{"redis"} }, "session.redis.addrs[0]", "host:port"},
		{"redis addr port zero", func(c *Config) { c.Session.Redis.Addrs = []string{"redis:0"} }, "session.redis.addrs[0]", "invalid port"},
		{"redis cluster db", func(c *Config) { c.Session.Redis.Addrs = []string{"a:1", "b:2"}; c.Session.Redis.DB = 3 }, "session.redis.db", "only db 0"},
		{"redis negative db", func(c *Config) { c.Session.Redis.DB = -1 }, "session.redis.db", "negative"},
		{"cookie name with space", func(c *Config) { c.Session.CookieName = "crm gate" }, "session.cookie_name", "cookie name"},
		{"cookie name empty", func(c *Config) { c.Session.CookieName = "" }, "session.cookie_name", "cookie name"},
		{"zero idle timeout", func(c *Config) { c.Session.IdleTimeout = 0 }, "session.idle_timeout", "greater than zero"},
		{"negative lifetime", func(c *Config) { c.Session.MaxLifetime = -time.Hour }, "session.max_lifetime", "greater than zero"},
		{"idle beyond lifetime", func(c *Config) { c.Session.IdleTimeout = 13 * time.Hour }, "session.idle_timeout", "must not exceed"},
		{"key not base64", func(c *Config) { c.Session.EncryptionKey = "not base64!" }, "session.encryption_key", "not base64"},
		{"key too short", func(c *Config) { c.Session.EncryptionKey = "MDEyMzQ1Njc4OWFiY2RlZg==" }, "session.encryption_key", "decodes to 16 bytes"},

		// policy
		{"no policy", func(c *Config) { c.Policy.Paths = nil }, "policy.paths", "required"},
		{"two policy sources", func(c *Config) { c.Policy.Bundle.URL = "https://bundles.example.com/crmgate.tar.gz" }, "policy.bundle.url", "one policy source"},
		{"empty policy path", func(c *Config) { c.Policy.Paths = []string{""} }, "policy.paths[0]", "must not be empty"},
		{"watch without paths", func(c *Config) {
			c.Policy.Paths = nil
			c.Policy.Watch = true
			c.Policy.Bundle.URL = "https://b.example/b.tar.gz"
		}, "policy.watch", "needs policy.paths"},
		{"package with dash", func(c *Config) { c.Policy.Package = "crm-gate" }, "policy.package", "Rego package"},
		{"package with leading digit", func(c *Config) { c.Policy.Package = "1crm" }, "policy.package", "Rego package"},
		{"package empty segment", func(c *Config) { c.Policy.Package = "acme..crm" }, "policy.package", "Rego package"},
		{"package keyword", func(c *Config) { c.Policy.Package = "acme.import" }, "policy.package", "Rego package"},
		{"package data", func(c *Config) { c.Policy.Package = "data" }, "policy.package", "Rego package"},
		{"package empty", func(c *Config) { c.Policy.Package = "" }, "policy.package", "Rego package"},
		{"bundle over http", func(c *Config) { c.Policy.Bundle.URL = "http://bundles.example/b.tar.gz" }, "policy.bundle.url", "https"},
		{"bundle poll zero", func(c *Config) {
			c.Policy.Bundle.URL = "https://b.example/b.tar.gz"
			c.Policy.Bundle.PollInterval = 0
		}, "policy.bundle.poll_interval", "greater than zero"},
		{"bundle token without url", func(c *Config) { c.Policy.Bundle.Token = "t" }, "policy.bundle.token", "without policy.bundle.url"},

		// decision log
		{"unknown output", func(c *Config) { c.DecisionLog.Output = "syslog" }, "decision_log.output", "must be one of"},
		{"file output without file", func(c *Config) { c.DecisionLog.Output = LogFile }, "decision_log.file", "required"},
		{"http output without url", func(c *Config) { c.DecisionLog.Output = LogHTTP }, "decision_log.url", "required"},
		{"http output over http", func(c *Config) {
			c.DecisionLog.Output = LogHTTP
			c.DecisionLog.URL = "http://logs.example"
		}, "decision_log.url", "https"},
		{"file with stdout output", func(c *Config) { c.DecisionLog.File = "x.log" }, "decision_log.file", "set but output"},
		{"url with file output", func(c *Config) {
			c.DecisionLog.Output, c.DecisionLog.File, c.DecisionLog.URL = LogFile, "x.log", "https://l.example"
		}, "decision_log.url", "set but output"},
		{"zero buffer", func(c *Config) { c.DecisionLog.BufferSize = 0 }, "decision_log.buffer_size", "greater than zero"},
		{"zero record ids", func(c *Config) { c.DecisionLog.MaxRecordIDs = 0 }, "decision_log.max_record_ids", "greater than zero"},
		{"mask path relative", func(c *Config) { c.DecisionLog.MaskPaths = []string{"input/record"} }, "decision_log.mask_paths[0]", "/input/"},
		{"mask path root", func(c *Config) { c.DecisionLog.MaskPaths = []string{"/input/"} }, "decision_log.mask_paths[0]", "/input/"},
		{"mask path elsewhere", func(c *Config) { c.DecisionLog.MaskPaths = []string{"/subject/x"} }, "decision_log.mask_paths[0]", "/input/"},
		{"mask path empty segment", func(c *Config) { c.DecisionLog.MaskPaths = []string{"/input//x"} }, "decision_log.mask_paths[0]", "/input/"},

		// metrics
		{"empty metrics role", func(c *Config) { c.Metrics.Roles = []string{""} }, "metrics.roles[0]", "must not be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tc.mutate(c)
			err := c.Validate()
			wantProblem(t, err, tc.path, tc.msg)
			for _, p := range problemsOf(t, err) {
				if p.Line != 0 {
					t.Errorf("Validate problem %v has a line number", p)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats a credential: %v", err)
			}
		})
	}
}

// route replaces crm.routes with one route that is valid until mutate
// breaks it.
func route(mutate func(*Route)) func(*Config) {
	return func(c *Config) {
		r := Route{Method: "GET", Path: "/api/{module}/{id}", Action: "read", Kind: "record"}
		mutate(&r)
		c.CRM.Routes = []Route{r}
	}
}

func publicPath(p string) func(*Config) {
	return func(c *Config) { c.CRM.PublicPaths = []string{p} }
}

func TestValidateReportsEverything(t *testing.T) {
	t.Parallel()
	var nilCfg *Config
	wantProblem(t, nilCfg.Validate(), "", "no configuration")

	err := (&Config{}).Validate()
	for _, path := range []string{
		"listen", "admin_listen", "upstream.url", "upstream.timeout", "upstream.auth.type",
		"crm.profile", "identity", "session.store", "policy.paths", "policy.package", "decision_log.output",
	} {
		wantProblem(t, err, path, "")
	}
	if a, b := err.Error(), (&Config{}).Validate().Error(); a != b {
		t.Errorf("Validate is not deterministic:\n%s\n---\n%s", a, b)
	}
}

func TestPublicPath(t *testing.T) {
	t.Parallel()
	c := valid()
	c.CRM.PublicPaths = []string{"/dist/", "/favicon.ico", "/legacy/themes/", ""}
	tests := []struct {
		path string
		want bool
	}{
		{"/dist/app.js", true},
		{"/dist/assets/x.css", true},
		{"/dist/", true},
		{"/favicon.ico", true},
		{"/legacy/themes/suite8/x.png", true},
		// Exact entries match exactly; prefixes only at a "/" boundary.
		{"/dist", false},
		{"/distx/app.js", false},
		{"/favicon.ico/x", false},
		{"/favicon.icox", false},
		{"/legacy/themes", false},
		{"/Api/V8/module/Accounts", false},
		{"/DIST/app.js", false},
		// Paths that a differently-normalising upstream could turn into a
		// CRM API path are never public.
		{"/dist/../Api/V8/module/Accounts", false},
		{"/dist/./app.js", false},
		{"/dist//Api/V8/module/Accounts", false},
		{"/dist/%2e%2e/Api/V8/module/Accounts", false},
		{"/dist/..%2fApi", false},
		{"/dist/..\\Api\\V8", false},
		{"/dist/a\x00.js", false},
		{"/dist/a\n.js", false},
		{"dist/app.js", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			if got := c.PublicPath(tc.path); got != tc.want {
				t.Errorf("PublicPath(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}

	// "/" is refused by Validate; PublicPath refuses it as well, for a
	// configuration built in code that never met Validate.
	open := &Config{CRM: CRM{PublicPaths: []string{"/"}}}
	if open.PublicPath("/Api/V8/module/Accounts") || open.PublicPath("/") {
		t.Error("a public path of / made the CRM public")
	}
}

func TestUsesTLS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tls  TLS
		want bool
	}{
		{TLS{}, false},
		{TLS{CertFile: "c"}, false},
		{TLS{KeyFile: "k"}, false},
		{TLS{CertFile: "c", KeyFile: "k"}, true},
	} {
		c := &Config{TLS: tc.tls}
		if got := c.UsesTLS(); got != tc.want {
			t.Errorf("UsesTLS(%+v) = %v, want %v", tc.tls, got, tc.want)
		}
	}
}

func TestEncryptionKeyBytes(t *testing.T) {
	t.Parallel()
	want := "0123456789abcdef0123456789abcdef"
	for _, k := range []string{
		key32,
		strings.TrimRight(key32, "="),
		"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
	} {
		got, err := Session{EncryptionKey: k}.EncryptionKeyBytes()
		if err != nil || string(got) != want {
			t.Errorf("EncryptionKeyBytes(%q) = %q, %v", k, got, err)
		}
	}
	for _, k := range []string{"", "!!!!", want, "MDEyMzQ1Njc4OWFiY2RlZg=="} {
		if _, err := (Session{EncryptionKey: k}).EncryptionKeyBytes(); err == nil {
			t.Errorf("EncryptionKeyBytes(%q) accepted", k)
		} else if strings.Contains(err.Error(), k) && k != "" {
			t.Errorf("error repeats the key: %v", err)
		}
	}
}
