package config

import (
	"strings"
	"testing"
)

func TestParseTrustedProxy(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"10.0.0.0/8":          "10.0.0.0/8",
		" 192.0.2.7 ":         "192.0.2.7/32",
		"2001:db8::/32":       "2001:db8::/32",
		"2001:db8::1":         "2001:db8::1/128",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
		"::ffff:192.0.2.7":    "192.0.2.7/32",
	}
	for in, want := range good {
		p, err := ParseTrustedProxy(in)
		if err != nil || p.String() != want {
			t.Errorf("%q: %v %v, want %s", in, p, err, want)
		}
	}
	bad := map[string]string{
		"10.1.2.3/8":        "host bits",
		"0.0.0.0/0":         "every address",
		"::/0":              "every address",
		"::ffff:0.0.0.0/96": "every address",
		"fe80::1%eth0":      "not an address",
		"10.0.0.0/33":       "not a CIDR",
		"proxy.internal":    "not an address",
		"":                  "not an address",
		"10.0.0.1-10.0.0.9": "not an address",
	}
	for in, want := range bad {
		if _, err := ParseTrustedProxy(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want one saying %q", in, err, want)
		}
	}
}

// TestListenForms: listen is an address, or a mapping with it and the
// trusted proxies; the short form stays valid for every existing file.
func TestListenForms(t *testing.T) {
	t.Parallel()
	base := "upstream: {url: http://crm.internal}\nidentity: {bearer: {enabled: true, issuer: https://idp.example, audiences: [crmgate]}}\npolicy: {paths: [p.rego]}\n"
	cfg, err := Parse([]byte("listen: \"127.0.0.1:9000\"\n"+base), func(string) (string, bool) { return "", false }, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.Address != "127.0.0.1:9000" || cfg.Listen.ClientIPHeader != ClientIPXForwardedFor || len(cfg.Listen.TrustedProxies) != 0 {
		t.Errorf("short form: %+v", cfg.Listen)
	}
	cfg, err = Parse([]byte("listen: {address: \"127.0.0.1:9000\", trusted_proxies: [10.0.0.0/8], client_ip_header: forwarded}\n"+base),
		func(string) (string, bool) { return "", false }, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.Address != "127.0.0.1:9000" || cfg.Listen.ClientIPHeader != ClientIPForwarded || cfg.Listen.TrustedProxies[0] != "10.0.0.0/8" {
		t.Errorf("mapping form: %+v", cfg.Listen)
	}
	for in, want := range map[string]string{
		"listen: {address: \"127.0.0.1:9000\", trusted_proxy: [10.0.0.0/8]}\n":            "listen.trusted_proxy",
		"listen: {address: \"127.0.0.1:9000\", trusted_proxies: [10.0.0.0/0]}\n":          "listen.trusted_proxies[0]",
		"listen: {address: \"127.0.0.1:9000\", client_ip_header: x-real-ip}\n":            "listen.client_ip_header",
		"listen: {address: \"127.0.0.1:9000\", trusted_proxies: [0.0.0.0/0, \"::/0\"]}\n": "listen.trusted_proxies[1]",
	} {
		_, err := Parse([]byte(in+base), func(string) (string, bool) { return "", false }, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want one naming %s", in, err, want)
		}
	}
}
