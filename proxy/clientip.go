package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr finds the address of the client a request came from. Behind a
// load balancer every connection comes from the balancer, which says whom
// it forwards in X-Forwarded-For or Forwarded (RFC 7239). Such a header is
// believed only from a trusted proxy, and only as far as the chain of
// trusted proxies goes: walking it right to left from the connection, the
// client is the first address that is not a trusted proxy. Everything to
// its left was written by that client and could be anything.
type ClientAddr struct {
	// Trusted are the proxies whose word is taken (listen.trusted_proxies).
	Trusted []netip.Prefix
	// Forwarded reads the RFC 7239 header instead of X-Forwarded-For.
	// Only one is read: a proxy that writes one passes the other on as the
	// client sent it.
	Forwarded bool
}

// maxHops bounds how far the chain is followed. A real one has a hop or
// two; a longer chain of trusted addresses is treated as unknown rather
// than followed into a megabyte of header.
const maxHops = 32

// Of returns the client's address, or "" when a trusted proxy's header
// cannot be read (a malformed or obfuscated hop, a chain longer than
// maxHops): an unknown address matches no network a policy allows, where
// stopping at the proxy's own address could match an internal one.
func (c *ClientAddr) Of(r *http.Request) string {
	peer, ok := peerAddr(r.RemoteAddr)
	if !ok {
		return ""
	}
	if !c.trusted(peer) {
		return peer.String()
	}
	name := "X-Forwarded-For"
	if c.Forwarded {
		name = "Forwarded"
	}
	lines := r.Header.Values(name)
	addr := peer
	hops := 0
	// Lines in order, elements in order within a line: the last element
	// of the last line is the hop nearest crmgate.
	for li := len(lines) - 1; li >= 0; li-- {
		line := lines[li]
		for line != "" {
			var elem string
			elem, line = lastElement(line, c.Forwarded)
			if !c.trusted(addr) {
				return addr.String()
			}
			if hops++; hops > maxHops {
				return ""
			}
			var ok bool
			if c.Forwarded {
				addr, ok = forwardedFor(elem)
			} else {
				addr, ok = parseNode(strings.Trim(elem, " \t"), false)
			}
			if !ok {
				return ""
			}
		}
	}
	// Every hop was a trusted proxy, or the last one named is the client
	// (trusted or not, nothing further says otherwise).
	return addr.String()
}

func (c *ClientAddr) trusted(a netip.Addr) bool {
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the connection's address, IPv4-mapped IPv6 unmapped so that
// it compares with IPv4 CIDRs.
func peerAddr(remote string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// lastElement splits off the last comma-separated element of a header
// line. In Forwarded, a comma inside a quoted string is not a separator.
func lastElement(line string, quoted bool) (elem, rest string) {
	if !quoted {
		i := strings.LastIndexByte(line, ',')
		if i < 0 {
			return line, ""
		}
		return line[i+1:], line[:i]
	}
	// Find the separators left to right (quotes are only known that way)
	// and keep the last.
	last, inQuote := -1, false
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				last = i
			}
		}
	}
	if last < 0 {
		return line, ""
	}
	return line[last+1:], line[:last]
}

// forwardedFor reads the for= parameter of one Forwarded element
// (RFC 7239 section 4): pairs separated by ";", a value a token or a
// quoted string. An element without exactly one for=, or one that does not
// parse, is malformed.
func forwardedFor(elem string) (netip.Addr, bool) {
	var found netip.Addr
	seen := false
	for elem != "" {
		var pair string
		pair, elem = nextPair(elem)
		pair = strings.Trim(pair, " \t")
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" || !isToken(k) {
			return netip.Addr{}, false
		}
		val, quoted, ok := pairValue(v)
		if !ok {
			return netip.Addr{}, false
		}
		if !strings.EqualFold(k, "for") {
			continue
		}
		if seen {
			return netip.Addr{}, false
		}
		seen = true
		if found, ok = parseNode(val, quoted); !ok {
			return netip.Addr{}, false
		}
	}
	return found, seen
}

// nextPair splits off the first ";"-separated pair, outside quotes.
func nextPair(s string) (pair, rest string) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ';':
			if !inQuote {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

// pairValue is a token, or a quoted string with its escapes removed.
func pairValue(v string) (val string, quoted, ok bool) {
	if v == "" {
		return "", false, false
	}
	if v[0] != '"' {
		return v, false, isToken(v)
	}
	if len(v) < 2 || v[len(v)-1] != '"' {
		return "", false, false
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		switch {
		case c == '\\':
			if i++; i >= len(v)-1 {
				return "", false, false
			}
			b.WriteByte(v[i])
		case c == '"':
			return "", false, false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true, true
}

// isToken reports whether s is an RFC 7230 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseNode reads an address with an optional port: "192.0.2.1",
// "192.0.2.1:443", "2001:db8::1" (X-Forwarded-For only), "[2001:db8::1]"
// and "[2001:db8::1]:443". In Forwarded an IPv6 address must be bracketed
// and quoted, a port may be obfuscated ("_a1"), and "unknown" or an
// obfuscated node name ("_hidden") names no address, so is not one.
func parseNode(s string, forwarded bool) (netip.Addr, bool) {
	host, port := s, ""
	bracketed := strings.HasPrefix(s, "[")
	switch {
	case bracketed:
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		var rest string
		host, rest = s[1:end], s[end+1:]
		if rest != "" {
			if rest[0] != ':' || len(rest) == 1 {
				return netip.Addr{}, false
			}
			port = rest[1:]
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return netip.Addr{}, false
		}
	case forwarded && strings.Contains(s, ":"):
		// A bare IPv6 address is not a Forwarded node.
		return netip.Addr{}, false
	}
	if port != "" && !validPort(port, forwarded) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || bracketed && !a.Is6() {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validPort is 1-5 digits, or in Forwarded an obfuscated port.
func validPort(p string, forwarded bool) bool {
	if forwarded && strings.HasPrefix(p, "_") {
		return len(p) > 1 && isObfChars(p[1:])
	}
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

func isObfChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
