package config

import "strings"

// UsesTLS reports whether the main listener serves HTTPS itself (both
// tls.cert_file and tls.key_file are set).
func (c *Config) UsesTLS() bool {
	return c.TLS.CertFile != "" && c.TLS.KeyFile != ""
}

// PublicPath reports whether a request path is listed in crm.public_paths:
// an exact match, or a prefix match for entries ending in "/".
//
// p must be the cleaned, decoded request path (URL.Path after path.Clean).
// A path that is not in that form — with //, . or .. segments, a '%', a
// backslash or a control character — is never public: such paths are how
// "/static/..%2fApi/V8/..." style requests would reach the CRM unchecked
// when the upstream normalises differently from crmgate.
func (c *Config) PublicPath(p string) bool {
	if !strings.HasPrefix(p, "/") || !isCleanPath(p) || strings.ContainsAny(p, "%\\") || hasControl(p) {
		return false
	}
	for _, e := range c.CRM.PublicPaths {
		if e == "" {
			continue
		}
		if strings.HasSuffix(e, "/") {
			// "/" is refused by Validate; it is also refused here so a
			// configuration that skipped Validate cannot open everything.
			if e != "/" && strings.HasPrefix(p, e) {
				return true
			}
			continue
		}
		if p == e {
			return true
		}
	}
	return false
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
