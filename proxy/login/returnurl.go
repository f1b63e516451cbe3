package login

import (
	"net/url"
	"strings"
)

// maxReturnURL bounds the return URL kept in the login cookie.
const maxReturnURL = 2048

// SafeReturn returns raw when it is a same-origin relative reference
// (a path starting with a single "/", optionally with a query) and "/"
// otherwise. After login the browser is sent to this URL, so anything that
// a browser could resolve to another origin is refused: scheme-relative
// "//host", "/\host" (browsers treat \ as /), absolute URLs, their
// percent-encoded spellings (decoded repeatedly, since a CRM or another
// proxy may decode again), control characters and whitespace. crmgate's own
// endpoints are refused too, so a login can never return into a login or
// logout.
func SafeReturn(raw string) string {
	if !safeReturn(raw) {
		return "/"
	}
	return raw
}

func safeReturn(raw string) bool {
	if raw == "" || len(raw) > maxReturnURL || raw[0] != '/' {
		return false
	}
	s := raw
	for round := 0; ; round++ {
		if s == "" || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\") || hasControl(s) ||
			(round == 0 && !safeReturnChars(s)) {
			return false
		}
		dec, err := url.PathUnescape(s)
		if err != nil {
			return false
		}
		if dec == s {
			break
		}
		if round == 3 {
			// Still encoded after four rounds: nobody needs that much.
			return false
		}
		s = dec
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return false
	}
	if strings.HasPrefix(u.Path, "/.crmgate/") || u.Path == "/.crmgate" {
		return false
	}
	return true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// safeReturnChars (applied to the URL as sent; decoded forms are checked
// for control characters, backslashes and "//" only) refuses backslashes, whitespace, control characters,
// the fragment separator and non-ASCII bytes (a browser percent-encodes
// those in a URL it sends): none belongs in a return path, and each has
// been used to make browsers and servers disagree about where a URL points.
func safeReturnChars(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ', c >= 0x7f, c == '\\', c == '#':
			return false
		}
	}
	return true
}
