package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/config"
)

// addrAttack is one way of telling crmgate who the client is.
type addrAttack struct {
	name string
	// mode is the listener's configuration: "untrusted" (the test's
	// connection, from 127.0.0.1, is not a trusted proxy), "xff" or
	// "forwarded" (it is, and that header is read).
	mode string
	hdr  []string
	// want is the remote_ip policy and decision log must see; "" is
	// unknown (a trusted hop's header could not be read).
	want string
}

// clientAddrAttacks are issue 14's header forms: spoofs from an untrusted
// peer, and every way of garbling, padding or doubling the chain a trusted
// proxy passes on.
func clientAddrAttacks() []addrAttack {
	const peer, client = "127.0.0.1", "203.0.113.9"
	many := func(n int, hop string) string { return strings.TrimSuffix(strings.Repeat(hop+", ", n), ", ") }
	return []addrAttack{
		// From an untrusted peer nothing is believed.
		{"untrusted/xff spoof", "untrusted", []string{"X-Forwarded-For", client}, peer},
		{"untrusted/forwarded spoof", "untrusted", []string{"Forwarded", "for=" + client}, peer},
		{"untrusted/x-real-ip", "untrusted", []string{"X-Real-IP", client}, peer},
		{"untrusted/true-client-ip and cf headers", "untrusted", []string{"True-Client-IP", client, "CF-Connecting-IP", client}, peer},
		{"untrusted/chain naming a trusted proxy", "untrusted", []string{"X-Forwarded-For", client + ", 10.1.2.3"}, peer},

		// X-Forwarded-For from a trusted proxy.
		{"xff/one hop", "xff", []string{"X-Forwarded-For", client}, client},
		{"xff/client-supplied left part ignored", "xff", []string{"X-Forwarded-For", "198.51.100.1, " + client}, client},
		{"xff/through an internal hop", "xff", []string{"X-Forwarded-For", "198.51.100.1, " + client + ", 10.1.2.3"}, client},
		{"xff/two headers", "xff", []string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", client}, client},
		{"xff/two headers with an internal hop", "xff", []string{"X-Forwarded-For", client, "X-Forwarded-For", "10.1.2.3"}, client},
		{"xff/every hop trusted", "xff", []string{"X-Forwarded-For", "10.1.1.1, 10.2.2.2"}, "10.1.1.1"},
		{"xff/ipv6", "xff", []string{"X-Forwarded-For", "2001:db8::7"}, "2001:db8::7"},
		{"xff/ipv6 uppercase", "xff", []string{"X-Forwarded-For", "2001:DB8::7"}, "2001:db8::7"},
		{"xff/bracketed ipv6 with port", "xff", []string{"X-Forwarded-For", "[2001:db8::7]:4711"}, "2001:db8::7"},
		{"xff/ipv4 with port", "xff", []string{"X-Forwarded-For", client + ":8080"}, client},
		{"xff/ipv4-mapped ipv6", "xff", []string{"X-Forwarded-For", "::ffff:" + client}, client},
		{"xff/ipv4-mapped internal hop is trusted", "xff", []string{"X-Forwarded-For", client + ", ::ffff:10.1.2.3"}, client},
		{"xff/spaces and tabs", "xff", []string{"X-Forwarded-For", " \t" + client + "\t "}, client},
		{"xff/zone", "xff", []string{"X-Forwarded-For", "fe80::1%eth0"}, ""},
		{"xff/garbage", "xff", []string{"X-Forwarded-For", "not-an-ip"}, ""},
		{"xff/empty element nearest", "xff", []string{"X-Forwarded-For", client + ", , "}, ""},
		{"xff/garbage behind the client is not reached", "xff", []string{"X-Forwarded-For", "junk, " + client}, client},
		{"xff/obfuscated port", "xff", []string{"X-Forwarded-For", client + ":_x"}, ""},
		{"xff/port too long", "xff", []string{"X-Forwarded-For", client + ":123456"}, ""},
		{"xff/bracketed ipv4", "xff", []string{"X-Forwarded-For", "[" + client + "]"}, ""},
		{"xff/leading zeros", "xff", []string{"X-Forwarded-For", "203.000.113.009"}, ""},
		{"xff/decimal address", "xff", []string{"X-Forwarded-For", "3405803785"}, ""},
		{"xff/hex octet", "xff", []string{"X-Forwarded-For", "0xcb.0.113.9"}, ""},
		{"xff/1000 spoofed hops then the client", "xff", []string{"X-Forwarded-For", many(999, "198.51.100.1") + ", " + client}, client},
		{"xff/1000 trusted hops", "xff", []string{"X-Forwarded-For", many(1000, "10.0.0.1")}, ""},
		{"xff/forwarded ignored in xff mode", "xff", []string{"Forwarded", "for=" + client}, peer},

		// RFC 7239 Forwarded from a trusted proxy.
		{"forwarded/token", "forwarded", []string{"Forwarded", "for=" + client}, client},
		{"forwarded/key case and quotes", "forwarded", []string{"Forwarded", `For="` + client + `"`}, client},
		{"forwarded/ipv6 quoted with port", "forwarded", []string{"Forwarded", `for="[2001:db8::7]:4711"`}, "2001:db8::7"},
		{"forwarded/ipv6 unquoted", "forwarded", []string{"Forwarded", "for=[2001:db8::7]"}, ""},
		{"forwarded/bare ipv6", "forwarded", []string{"Forwarded", `for="2001:db8::7"`}, ""},
		{"forwarded/unknown", "forwarded", []string{"Forwarded", "for=unknown"}, ""},
		{"forwarded/obfuscated node", "forwarded", []string{"Forwarded", "for=_hidden"}, ""},
		{"forwarded/obfuscated port", "forwarded", []string{"Forwarded", `for="` + client + `:_abc"`}, client},
		{"forwarded/chain with other pairs", "forwarded", []string{"Forwarded", "for=198.51.100.1, for=" + client + ";proto=https;by=10.0.0.1"}, client},
		{"forwarded/comma inside quotes", "forwarded", []string{"Forwarded", `for="198.51.100.1,` + client + `"`}, ""},
		{"forwarded/escaped quote", "forwarded", []string{"Forwarded", `for="` + client + `\"";by=x`}, ""},
		{"forwarded/two for in one element", "forwarded", []string{"Forwarded", "for=198.51.100.1;for=" + client}, ""},
		{"forwarded/two headers", "forwarded", []string{"Forwarded", "for=198.51.100.1", "Forwarded", "for=" + client}, client},
		{"forwarded/element without for", "forwarded", []string{"Forwarded", "proto=https"}, ""},
		{"forwarded/xff ignored in forwarded mode", "forwarded", []string{"X-Forwarded-For", client}, peer},
	}
}

// TestBypassClientAddress sends every header form through the whole
// pipeline and reads the address the decision log recorded (the one the
// policy saw); the CRM gets that address as its only X-Forwarded-For and
// none of the other headers.
func TestBypassClientAddress(t *testing.T) {
	cases := clientAddrAttacks()
	if len(cases) < 25 {
		t.Fatalf("%d client-address cases, want at least 25", len(cases))
	}
	modes := map[string]func(*config.Config){
		"untrusted": func(c *config.Config) { c.Listen.TrustedProxies = []string{"10.0.0.0/8"} },
		"xff":       func(c *config.Config) { c.Listen.TrustedProxies = []string{"127.0.0.1", "10.0.0.0/8"} },
		"forwarded": func(c *config.Config) {
			c.Listen.TrustedProxies = []string{"127.0.0.1/32", "10.0.0.0/8"}
			c.Listen.ClientIPHeader = config.ClientIPForwarded
		},
	}
	for mode, opt := range modes {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, "suitecrm8", opt)
			want := map[string]addrAttack{} // by request id
			for _, a := range cases {
				if a.mode != mode {
					continue
				}
				e.upstream.reset()
				r := e.do("GET", "/Api/V8/module/Accounts/acc-1", "alice", "", a.hdr...)
				if r.Status != http.StatusOK {
					t.Fatalf("%s: %d %s", a.name, r.Status, r.Body)
				}
				got := e.upstream.crmRequests()
				if len(got) != 1 {
					t.Fatalf("%s: %d CRM requests", a.name, len(got))
				}
				for _, h := range []string{"Forwarded", "X-Real-IP", "True-Client-IP", "CF-Connecting-IP"} {
					if v := got[0].Header.Values(h); len(v) > 0 {
						t.Errorf("%s: %s reached the CRM: %q", a.name, h, v)
					}
				}
				// The CRM is told the client crmgate established, and
				// nothing when that is unknown.
				if xff := got[0].Header.Values("X-Forwarded-For"); a.want == "" && len(xff) > 0 ||
					a.want != "" && (len(xff) != 1 || xff[0] != a.want) {
					t.Errorf("%s: CRM got X-Forwarded-For %q, want %q", a.name, xff, a.want)
				}
				want[got[0].Header.Get("X-Request-Id")] = a
			}
			found := 0
			for _, l := range e.flushLog() {
				in, _ := l["input"].(map[string]any)
				req, _ := in["request"].(map[string]any)
				a, ok := want[asString(req["id"])]
				if !ok {
					continue
				}
				found++
				if got := asString(req["remote_ip"]); got != a.want {
					t.Errorf("%s: remote_ip %q, want %q", a.name, got, a.want)
				}
			}
			if found != len(want) {
				t.Errorf("%d of %d requests found in the decision log", found, len(want))
			}
		})
	}
}

func asString(v any) string { s, _ := v.(string); return s }
