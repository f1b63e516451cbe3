package proxy

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientAddr: whatever the headers say, the client address is the
// peer, an address a trusted proxy named, or unknown; never a value the
// chain did not contain, and never a trusted proxy while an untrusted hop
// stands between it and crmgate.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "198.51.100.1, 203.0.113.9, 10.1.2.3", "[2001:db8::7]:4711",
		`for="[2001:db8::7]:4711";proto=https`, `for=198.51.100.1, for="203.0.113.9:_p"`, "unknown", `for="a\"b"`, ",,,"} {
		f.Add(s, s, false)
		f.Add(s, s, true)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, h1, h2 string, fwd bool) {
		c := &ClientAddr{Trusted: trusted, Forwarded: fwd}
		name := "X-Forwarded-For"
		if fwd {
			name = "Forwarded"
		}
		r := &http.Request{RemoteAddr: "127.0.0.1:5555", Header: http.Header{name: {h1, h2}}}
		got := c.Of(r)
		if got == "" || got == "127.0.0.1" {
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("%q is not an address", got)
		}
		if !strings.Contains(strings.ToLower(h1+","+h2), strings.Split(a.String(), ":")[0]) && !a.Is6() {
			t.Fatalf("%q named by neither header %q %q", got, h1, h2)
		}
		// From an untrusted peer the headers never count.
		r.RemoteAddr = "192.0.2.1:5555"
		if got := c.Of(r); got != "192.0.2.1" {
			t.Fatalf("untrusted peer: %q", got)
		}
	})
}

func TestClientAddrWithoutTrustedProxies(t *testing.T) {
	t.Parallel()
	var c ClientAddr
	for _, remote := range []string{"203.0.113.9:1", "[2001:db8::7]:1", "[::ffff:203.0.113.9]:1", "[fe80::1%eth0]:1"} {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=198.51.100.1"}}}
		got := c.Of(r)
		if got == "198.51.100.1" || got == "" {
			t.Errorf("%s: %q", remote, got)
		}
	}
	if got := c.Of(&http.Request{RemoteAddr: "@unix"}); got != "" {
		t.Errorf("a peer that is not an address: %q, want unknown", got)
	}
}
