package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// EncryptionKeySize is the length of session.encryption_key once decoded.
const EncryptionKeySize = 32

// minAdminToken is the shortest admin token accepted on a non-loopback
// admin listener: it revokes sessions and reloads policy, so its token must
// not be guessable.
const minAdminToken = 16

// Validate checks the effective configuration (after ApplyDefaults) and
// reports every problem with its path, as an *Error. It is pure: it reads no
// files and no environment, so it may be called on a configuration built in
// code. A zero field that has a default is a problem here, because
// Validate judges what would run.
func (c *Config) Validate() error {
	if c == nil {
		return &Error{Problems: []Problem{{Msg: "no configuration"}}}
	}
	var ps problems
	c.validateListeners(&ps)
	c.validateUpstream(&ps)
	c.validateCRM(&ps)
	c.validateIdentity(&ps)
	c.validateSession(&ps)
	c.validateBudgets(&ps)
	c.validatePolicy(&ps)
	c.validateDecisionLog(&ps)
	for i, r := range c.Metrics.Roles {
		if r == "" {
			ps.add(index("metrics.roles", i), 0, "must not be empty")
		}
	}
	return ps.err()
}

func (c *Config) validateListeners(ps *problems) {
	lh, lp, lok := checkHostPort(ps, "listen", c.Listen.Address, true)
	for i, s := range c.Listen.TrustedProxies {
		if _, err := ParseTrustedProxy(s); err != nil {
			ps.add(index("listen.trusted_proxies", i), 0, "%v", err)
		}
	}
	switch c.Listen.ClientIPHeader {
	case ClientIPXForwardedFor, ClientIPForwarded:
	default:
		ps.add("listen.client_ip_header", 0, "must be %s or %s, got %q", ClientIPXForwardedFor, ClientIPForwarded, c.Listen.ClientIPHeader)
	}
	ah, ap, aok := checkHostPort(ps, "admin_listen", c.AdminListen, true)
	if lok && aok && lp == ap && lp != 0 && sameInterface(lh, ah) {
		ps.add("admin_listen", 0, "must differ from listen: admin endpoints never share the main port")
	}
	if aok && !isLoopbackHost(ah) {
		// Off loopback the token is all that stands between the network
		// and session revocation or policy reload.
		switch {
		case c.Admin.Token == "":
			ps.add("admin.token", 0, "required when admin_listen is not a loopback address")
		case len(c.Admin.Token) < minAdminToken:
			ps.add("admin.token", 0, "too short for a non-loopback admin_listen: use at least %d characters", minAdminToken)
		}
	}
	if c.PublicURL != "" {
		checkURL(ps, "public_url", c.PublicURL, true)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		ps.add("tls", 0, "set both cert_file and key_file, or neither")
	}
}

func (c *Config) validateUpstream(ps *problems) {
	u := c.Upstream
	if u.URL == "" {
		ps.add("upstream.url", 0, "required")
	} else {
		checkURL(ps, "upstream.url", u.URL, false)
	}
	for _, d := range []struct {
		path string
		v    int64
	}{
		{"upstream.dial_timeout", int64(u.DialTimeout)},
		{"upstream.response_header_timeout", int64(u.ResponseHeaderTimeout)},
		{"upstream.idle_conn_timeout", int64(u.IdleConnTimeout)},
		{"upstream.timeout", int64(u.Timeout)},
		{"upstream.max_idle_conns_per_host", int64(u.MaxIdleConnsPerHost)},
		{"upstream.max_request_body", u.MaxRequestBody},
	} {
		if d.v <= 0 {
			ps.add(d.path, 0, "must be greater than zero")
		}
	}

	a := u.Auth
	const p = "upstream.auth"
	// Fields of the other types are refused rather than ignored: a value
	// set with the wrong type usually means the type was forgotten, and the
	// CRM would then be called without credentials.
	unexpected := func(name, v string) {
		if v != "" {
			ps.add(field(p, name), 0, "not used with type %s", a.Type)
		}
	}
	switch a.Type {
	case AuthNone:
		unexpected("header", a.Header)
		unexpected("value", a.Value)
		unexpected("token_url", a.TokenURL)
		unexpected("client_id", a.ClientID)
		unexpected("client_secret", a.ClientSecret)
	case AuthHeader:
		if a.Header == "" {
			ps.add(p+".header", 0, "required for type header")
		} else if !isToken(a.Header) {
			ps.add(p+".header", 0, "not a valid header name")
		} else if hopByHop(a.Header) {
			ps.add(p+".header", 0, "%s is a hop-by-hop or framing header and cannot carry a credential", a.Header)
		}
		if a.Value == "" {
			ps.add(p+".value", 0, "required for type header (or set value_file)")
		} else if strings.ContainsAny(a.Value, "\r\n\x00") {
			ps.add(p+".value", 0, "must not contain line breaks or NUL")
		}
		unexpected("token_url", a.TokenURL)
		unexpected("client_id", a.ClientID)
		unexpected("client_secret", a.ClientSecret)
	case AuthClientCredentials:
		if a.TokenURL == "" {
			ps.add(p+".token_url", 0, "required for type oauth2_client_credentials")
		} else {
			checkURL(ps, p+".token_url", a.TokenURL, false)
		}
		if a.ClientID == "" {
			ps.add(p+".client_id", 0, "required for type oauth2_client_credentials")
		}
		if a.ClientSecret == "" {
			ps.add(p+".client_secret", 0, "required for type oauth2_client_credentials (or set client_secret_file)")
		}
		unexpected("header", a.Header)
		unexpected("value", a.Value)
	default:
		ps.add(p+".type", 0, "must be one of none, header, oauth2_client_credentials; got %s", quote(a.Type))
	}
	for i, s := range a.Scopes {
		if s == "" {
			ps.add(index(p+".scopes", i), 0, "must not be empty")
		}
	}
	if len(a.Scopes) > 0 && a.Type != AuthClientCredentials {
		ps.add(p+".scopes", 0, "not used with type %s", a.Type)
	}
}

func (c *Config) validateCRM(ps *problems) {
	crm := c.CRM
	switch crm.Profile {
	case ProfileSuiteCRM8, ProfileEspoCRM, ProfileDynamics, ProfileSalesforce, ProfileHubSpot:
	case ProfileGeneric:
		if len(crm.Routes) == 0 {
			ps.add("crm.routes", 0, "required for profile generic")
		}
		if crm.Shape == nil {
			ps.add("crm.shape", 0, "required for profile generic")
		}
	default:
		ps.add("crm.profile", 0, "must be one of suitecrm8, espocrm, dynamics, salesforce, hubspot, generic; got %s", quote(crm.Profile))
	}
	seen := make(map[string]int, len(crm.Routes))
	for i, r := range crm.Routes {
		p := index("crm.routes", i)
		validateRoute(ps, p, r)
		key := r.Method + " " + r.Path
		if first, dup := seen[key]; dup {
			ps.add(p, 0, "duplicate of crm.routes[%d] (%s)", first, key)
		} else {
			seen[key] = i
		}
	}
	if s := crm.Shape; s != nil {
		if s.IDField == "" {
			ps.add("crm.shape.id_field", 0, "required")
		}
		checkSegments(ps, "crm.shape.list_path", s.ListPath)
		checkSegments(ps, "crm.shape.record_path", s.RecordPath)
		checkSegments(ps, "crm.shape.fields_path", s.FieldsPath)
		for i, tp := range s.TotalPaths {
			p := index("crm.shape.total_paths", i)
			if len(tp) == 0 {
				ps.add(p, 0, "must not be empty")
			}
			checkSegments(ps, p, tp)
		}
	}
	for i, m := range crm.Modules {
		if !isWord(m) {
			ps.add(index("crm.modules", i), 0, "must be a module name (letters, digits, _ or -); got %s", quote(m))
		}
	}
	for i, pp := range crm.PublicPaths {
		checkPublicPath(ps, index("crm.public_paths", i), pp)
	}
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func validateRoute(ps *problems, p string, r Route) {
	if !slices.Contains(httpMethods, r.Method) {
		ps.add(p+".method", 0, "must be one of %s; got %s", strings.Join(httpMethods, ", "), quote(r.Method))
	}
	var hasModule, hasID bool
	switch {
	case r.Path == "":
		ps.add(p+".path", 0, "required")
	case !strings.HasPrefix(r.Path, "/"):
		ps.add(p+".path", 0, "must start with /")
	case !isCleanPath(r.Path) || strings.ContainsAny(r.Path, "%?#\\ "):
		ps.add(p+".path", 0, "must be a clean path without //, . or .. segments, %%, ?, #, \\ or spaces")
	default:
		for _, seg := range strings.Split(r.Path[1:], "/") {
			if !strings.ContainsAny(seg, "{}") {
				continue
			}
			switch seg {
			case "{module}":
				if hasModule {
					ps.add(p+".path", 0, "{module} may appear only once")
				}
				hasModule = true
			case "{id}":
				if hasID {
					ps.add(p+".path", 0, "{id} may appear only once")
				}
				hasID = true
			case "{any}":
			default:
				ps.add(p+".path", 0, "segment %s: placeholders are whole segments {module}, {id} or {any}", quote(seg))
			}
		}
	}
	if !isLowerWord(r.Action) {
		ps.add(p+".action", 0, "must be a lowercase word such as read or update; got %s", quote(r.Action))
	}
	switch r.Kind {
	case "list", "record", "related", "other":
	default:
		ps.add(p+".kind", 0, "must be one of list, record, related, other; got %s", quote(r.Kind))
	}
	sources := 0
	for _, set := range []bool{hasModule, r.Module != "", len(r.ModuleFromBody) > 0} {
		if set {
			sources++
		}
	}
	switch {
	case sources == 0:
		ps.add(p+".module", 0, "required: put {module} in the path, set module, or set module_from_body")
	case sources > 1:
		ps.add(p+".module", 0, "give the module once: {module} in the path, module, or module_from_body")
	}
	if r.Module != "" && !isWord(r.Module) {
		ps.add(p+".module", 0, "must be a module name; got %s", quote(r.Module))
	}
	if hasID && len(r.IDFromBody) > 0 {
		ps.add(p+".id_from_body", 0, "the path already has {id}")
	}
	checkSegments(ps, p+".module_from_body", r.ModuleFromBody)
	checkSegments(ps, p+".id_from_body", r.IDFromBody)
}

func checkSegments(ps *problems, p string, segs []string) {
	for i, s := range segs {
		if s == "" {
			ps.add(index(p, i), 0, "must not be empty")
		}
	}
}

// checkPublicPath refuses entries that could not be compared safely with
// a cleaned request path, and "/" (which would make the whole CRM public).
func checkPublicPath(ps *problems, p, pp string) {
	switch {
	case !strings.HasPrefix(pp, "/"):
		ps.add(p, 0, "must start with /")
	case pp == "/":
		ps.add(p, 0, "/ would make the whole CRM public")
	case strings.Contains(pp, ".."), strings.Contains(pp, "//"), strings.Contains(pp, "%"):
		ps.add(p, 0, "must not contain .., // or %%")
	case strings.ContainsAny(pp, "?#\\") || hasControlOrSpace(pp) || !isCleanPath(pp):
		ps.add(p, 0, "must be a clean path without ?, #, \\, spaces or . segments")
	}
}

func (c *Config) validateBudgets(ps *problems) {
	b := c.Budgets
	switch b.Store {
	case StoreMemory:
	case StoreRedis:
		if len(c.Session.Redis.Addrs) == 0 {
			ps.add("budgets.store", 0, "redis needs session.redis.addrs")
		}
	default:
		ps.add("budgets.store", 0, "must be memory or redis; got %s", quote(b.Store))
	}
	if b.OnStoreError != BudgetDeny && b.OnStoreError != BudgetAllow {
		ps.add("budgets.on_store_error", 0, "must be deny or allow; got %s", quote(b.OnStoreError))
	}
	if b.Reserve < 1 || b.Reserve > 10000 {
		ps.add("budgets.reserve", 0, "must be between 1 and 10000")
	}
}

func (c *Config) validateSession(ps *problems) {
	s := c.Session
	switch s.Store {
	case StoreMemory:
	case StoreRedis:
		if len(s.Redis.Addrs) == 0 {
			ps.add("session.redis.addrs", 0, "required for store redis")
		}
		if s.EncryptionKey == "" {
			// Replicas sharing sessions must share the key that seals
			// them; a per-process random key would break every login that
			// lands on another replica.
			ps.add("session.encryption_key", 0, "required for store redis (or set encryption_key_file)")
		}
	default:
		ps.add("session.store", 0, "must be memory or redis; got %s", quote(s.Store))
	}
	for i, a := range s.Redis.Addrs {
		if _, port, ok := checkHostPort(ps, index("session.redis.addrs", i), a, false); ok && port == 0 {
			ps.add(index("session.redis.addrs", i), 0, "port must not be 0")
		}
	}
	if s.Redis.DB < 0 {
		ps.add("session.redis.db", 0, "must not be negative")
	} else if s.Redis.DB != 0 && len(s.Redis.Addrs) > 1 && s.Redis.MasterName == "" {
		ps.add("session.redis.db", 0, "a Redis Cluster has only db 0")
	}
	if !isToken(s.CookieName) {
		ps.add("session.cookie_name", 0, "must be a cookie name (RFC 6265 token)")
	}
	if s.IdleTimeout <= 0 {
		ps.add("session.idle_timeout", 0, "must be greater than zero")
	}
	if s.MaxLifetime <= 0 {
		ps.add("session.max_lifetime", 0, "must be greater than zero")
	}
	if s.IdleTimeout > 0 && s.MaxLifetime > 0 && s.IdleTimeout > s.MaxLifetime {
		ps.add("session.idle_timeout", 0, "must not exceed session.max_lifetime (%s)", s.MaxLifetime)
	}
	if s.EncryptionKey != "" {
		if _, err := s.EncryptionKeyBytes(); err != nil {
			ps.addErr("session.encryption_key", 0, err, "%v", err)
		}
	}
}

// ErrEncryptionKey is the cause of a session.encryption_key problem.
var ErrEncryptionKey = errors.New("encryption key must be base64 of 32 bytes (e.g. openssl rand -base64 32)")

// EncryptionKeyBytes decodes session.encryption_key (standard or URL-safe
// base64, padded or not). The error never contains the key.
func (s Session) EncryptionKeyBytes() ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := enc.DecodeString(s.EncryptionKey)
		if err != nil {
			continue
		}
		if len(key) != EncryptionKeySize {
			return nil, fmt.Errorf("%w: decodes to %d bytes", ErrEncryptionKey, len(key))
		}
		return key, nil
	}
	return nil, fmt.Errorf("%w: not base64", ErrEncryptionKey)
}

func (c *Config) validatePolicy(ps *problems) {
	p := c.Policy
	if len(p.Paths) == 0 && p.Bundle.URL == "" {
		ps.add("policy.paths", 0, "required: set policy.paths or policy.bundle.url")
	}
	if len(p.Paths) > 0 && p.Bundle.URL != "" {
		// Each source would replace the other's policy on its next reload.
		ps.add("policy.bundle.url", 0, "set together with policy.paths: use one policy source")
	}
	for i, f := range p.Paths {
		if f == "" {
			ps.add(index("policy.paths", i), 0, "must not be empty")
		}
	}
	if p.Watch && len(p.Paths) == 0 {
		ps.add("policy.watch", 0, "needs policy.paths to watch")
	}
	if !isRegoRef(p.Package) {
		ps.add("policy.package", 0, "must be a dotted Rego package name such as crmgate or acme.crm; got %s", quote(p.Package))
	}
	b := p.Bundle
	if b.URL != "" {
		// Whoever can alter the bundle in transit decides every request.
		checkURL(ps, "policy.bundle.url", b.URL, true)
		if b.PollInterval <= 0 {
			ps.add("policy.bundle.poll_interval", 0, "must be greater than zero")
		}
	} else if b.Token != "" {
		ps.add("policy.bundle.token", 0, "set without policy.bundle.url")
	}
}

func (c *Config) validateDecisionLog(ps *problems) {
	l := c.DecisionLog
	switch l.Output {
	case LogStdout, LogNone:
	case LogFile:
		if l.File == "" {
			ps.add("decision_log.file", 0, "required for output file")
		}
	case LogHTTP:
		if l.URL == "" {
			ps.add("decision_log.url", 0, "required for output http")
		} else {
			// Decision logs carry who read which record.
			checkURL(ps, "decision_log.url", l.URL, true)
		}
	default:
		ps.add("decision_log.output", 0, "must be one of stdout, file, http, none; got %s", quote(l.Output))
	}
	if l.File != "" && l.Output != LogFile {
		ps.add("decision_log.file", 0, "set but output is %s", quote(l.Output))
	}
	if l.URL != "" && l.Output != LogHTTP {
		ps.add("decision_log.url", 0, "set but output is %s", quote(l.Output))
	}
	if l.BufferSize <= 0 {
		ps.add("decision_log.buffer_size", 0, "must be greater than zero")
	}
	if l.MaxRecordIDs <= 0 {
		ps.add("decision_log.max_record_ids", 0, "must be greater than zero")
	}
	for i, m := range l.MaskPaths {
		if !validMaskPath(m) {
			ps.add(index("decision_log.mask_paths", i), 0, "must be /input/... or /result/... with non-empty segments; got %s", quote(m))
		}
	}
}

func validMaskPath(m string) bool {
	rest, ok := strings.CutPrefix(m, "/input/")
	if !ok {
		rest, ok = strings.CutPrefix(m, "/result/")
	}
	if !ok || rest == "" {
		return false
	}
	return !slices.Contains(strings.Split(rest, "/"), "")
}

// checkHostPort checks a listen-style address. An empty host means every
// interface; allowZero permits port 0 (an ephemeral port, used in tests).
func checkHostPort(ps *problems, p, addr string, allowZero bool) (host string, port int, ok bool) {
	if addr == "" {
		ps.add(p, 0, "required")
		return "", 0, false
	}
	h, ps2, err := net.SplitHostPort(addr)
	if err != nil {
		ps.add(p, 0, "must be host:port; got %s", quote(addr))
		return "", 0, false
	}
	n, err := strconv.Atoi(ps2)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !allowZero) {
		ps.add(p, 0, "invalid port %s", quote(ps2))
		return "", 0, false
	}
	if h != "" && net.ParseIP(h) == nil && !isHostname(h) {
		ps.add(p, 0, "invalid host %s", quote(h))
		return "", 0, false
	}
	return h, n, true
}

func isWildcardHost(h string) bool {
	return h == "" || h == "0.0.0.0" || h == "::"
}

// sameInterface reports whether two listeners on one port would collide.
func sameInterface(a, b string) bool {
	return a == b || isWildcardHost(a) || isWildcardHost(b) || (isLoopbackHost(a) && isLoopbackHost(b))
}

// isLoopbackHost reports whether h names only this machine. Names other
// than localhost are not resolved: Validate does no I/O, and DNS could say
// anything.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func isHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkURL checks an absolute http(s) base URL. The URL itself is never
// repeated in a message, since one may carry credentials.
func checkURL(ps *problems, p, raw string, httpsUnlessLoopback bool) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		ps.add(p, 0, "not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		ps.add(p, 0, "must be an absolute http:// or https:// URL")
	case u.Opaque != "" || u.Hostname() == "":
		ps.add(p, 0, "must name a host")
	case u.User != nil:
		ps.add(p, 0, "must not contain credentials; use the *_file or token settings")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		ps.add(p, 0, "must not have a query or fragment")
	case httpsUnlessLoopback && u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		ps.add(p, 0, "must use https (http is allowed only for loopback hosts)")
	}
}

// isCleanPath reports whether p is already in path.Clean form, allowing a
// trailing slash.
func isCleanPath(p string) bool {
	if p == "/" {
		return true
	}
	return path.Clean(p) == strings.TrimSuffix(p, "/") && !strings.HasSuffix(p, "//")
}

func hasControlOrSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func isLowerWord(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token (header and cookie names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func hopByHop(h string) bool {
	switch strings.ToLower(h) {
	case "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
		"host", "content-length":
		return true
	}
	return false
}

var regoKeywords = []string{
	"as", "contains", "data", "default", "else", "every", "false", "if", "import",
	"in", "input", "not", "null", "package", "some", "true", "with",
}

// isRegoRef reports whether s is a dotted package name Rego accepts
// without quoting (crmgate, acme.crm.v2).
func isRegoRef(s string) bool {
	if s == "" {
		return false
	}
	for _, seg := range strings.Split(s, ".") {
		if !isEnvName(seg) || slices.Contains(regoKeywords, seg) {
			return false
		}
	}
	return true
}
