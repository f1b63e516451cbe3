package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseTrustedProxy reads one listen.trusted_proxies entry: a CIDR, or a
// single address meaning just that host. It refuses what would trust more
// than the operator meant: a prefix with host bits set (10.1.2.3/8 is
// probably a typo for 10.1.2.3/32 or 10.0.0.0/8), zones, and the whole
// address space (every client could then name any address).
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR: %q", s)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %s?", s, p.Masked())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("not an address or CIDR: %q", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		// Addresses are compared unmapped (see the proxy's client
		// address). A masked prefix keeps ::ffff only with 96 bits or more.
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%q trusts every address: any client could then claim any address", s)
	}
	return p, nil
}
