package profile

import (
	"fmt"
	"net/url"
	"strings"
)

// splitPath checks that escapedPath is in the one canonical form crmgate
// forwards and returns its segments.
//
// The rule is an allow-list, not a list of known tricks: a path may contain
// only "/" and RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~). That
// alone refuses every percent-escape (%2e, %2f, %5c, %00, overlong UTF-8),
// backslashes, ";" path parameters, control characters, spaces and
// non-ASCII look-alikes; what remains is refused when it could still be
// read two ways: empty segments (doubled or trailing slashes) and dot
// segments. No CRM path needs anything else: module names, ids and link
// names are all drawn from smaller charsets, checked again when captured.
//
// With odataKeys, "(" and ")" are accepted too, for OData key predicates
// (accounts(guid)); the route match then admits them only in a
// {module}({id}) segment, whose key must be a GUID.
func splitPath(escapedPath string, odataKeys bool) ([]string, error) {
	if escapedPath == "" || escapedPath[0] != '/' {
		return nil, fmt.Errorf("path must start with /: %w", ErrBadPath)
	}
	if len(escapedPath) > maxPathLen {
		return nil, fmt.Errorf("path longer than %d bytes: %w", maxPathLen, ErrBadPath)
	}
	for i := 0; i < len(escapedPath); i++ {
		if c := escapedPath[i]; c != '/' && !unreserved(c) && !(odataKeys && (c == '(' || c == ')')) {
			return nil, fmt.Errorf("path byte %#02x at %d: %w", c, i, ErrBadPath)
		}
	}
	segs := strings.Split(escapedPath[1:], "/")
	if len(segs) > maxSegments {
		return nil, fmt.Errorf("path has more than %d segments: %w", maxSegments, ErrBadPath)
	}
	for _, s := range segs {
		switch s {
		case "":
			return nil, fmt.Errorf("empty path segment (doubled or trailing slash): %w", ErrBadPath)
		case ".", "..":
			return nil, fmt.Errorf("dot segment: %w", ErrBadPath)
		}
	}
	return segs, nil
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// validLiteral accepts a route pattern's literal segment.
func validLiteral(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			return false
		}
	}
	return true
}

// validModuleName implements [A-Za-z][A-Za-z0-9_]{0,63}.
func validModuleName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// validID implements [A-Za-z0-9_-]{1,64}: SuiteCRM's UUIDs and EspoCRM's
// 17-character ids fit, and nothing that any layer could decode, split or
// normalise does.
func validID(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validAction(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}

// CheckQuery refuses a raw query string that carries a method override
// (_method, as Laravel/Symfony-style frameworks read it, or Salesforce's
// _HttpMethod) and one that does not parse. Names are compared as PHP would see them: percent-decoded,
// "+" as space, leading spaces dropped, " " "." and "[" turned into "_",
// array suffixes removed, case ignored, so "%5Fmethod", ".method" and
// "_METHOD[]" are all caught.
func CheckQuery(rawQuery string) error {
	if err := checkFormNames(rawQuery); err != nil {
		return fmt.Errorf("check query: %w", err)
	}
	return nil
}

// CheckQuery is the package-level CheckQuery; the method form lets a
// caller holding only a *Profile check the query too. No profile changes
// the rule.
func (p *Profile) CheckQuery(rawQuery string) error { return CheckQuery(rawQuery) }

func checkFormNames(raw string) error {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		name, _, _ := strings.Cut(pair, "=")
		dec, err := url.QueryUnescape(name)
		if err != nil {
			return fmt.Errorf("parameter name %q: %w", truncate(name), ErrBadPath)
		}
		// _HttpMethod is Salesforce's tunnel (POST ...?_HttpMethod=PATCH).
		if n := phpParamName(dec); n == "_method" || n == "_httpmethod" {
			return fmt.Errorf("parameter %q: %w", truncate(name), ErrMethodOverride)
		}
	}
	return nil
}

// phpParamName lower-cases name the way PHP's request parser mangles it
// into a $_GET/$_POST key: leading spaces are dropped, the base name ends
// at the first "[" (which starts an array index), and " " and "." become
// "_". A NUL ends the name in PHP, so it ends it here too.
func phpParamName(name string) string {
	name = strings.TrimLeft(name, " ")
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	name = strings.Map(func(r rune) rune {
		if r == ' ' || r == '.' {
			return '_'
		}
		return r
	}, name)
	return strings.ToLower(name)
}
