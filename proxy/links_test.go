package proxy

import (
	"net/url"
	"testing"
)

func TestRewriteLink(t *testing.T) {
	t.Parallel()
	up, _ := url.Parse("https://contoso.crm4.dynamics.com/org")
	h := &Handler{o: Options{Upstream: UpstreamOptions{URL: up}, PublicURL: "https://gw.example/"}}
	ok := map[string]string{
		"https://contoso.crm4.dynamics.com/org/api/data/v9.2/accounts?$skiptoken=%3Ccookie%3E": "https://gw.example/api/data/v9.2/accounts?$skiptoken=%3Ccookie%3E",
		"HTTPS://CONTOSO.crm4.dynamics.com/org/api/data/v9.2/$metadata#accounts":               "https://gw.example/api/data/v9.2/$metadata#accounts",
	}
	for in, want := range ok {
		if got, good := h.rewriteLink(in); !good || got != want {
			t.Errorf("%s = %q %v, want %q", in, got, good, want)
		}
	}
	for _, in := range []string{
		"https://evil.example/org/api/data/v9.2/accounts",
		"http://contoso.crm4.dynamics.com/org/api/data/v9.2/accounts",      // another scheme
		"https://contoso.crm4.dynamics.com:8443/org/api/data/v9.2/x",       // another port
		"https://contoso.crm4.dynamics.com/orgX/api/data/v9.2/accounts",    // not under the base path
		"https://contoso.crm4.dynamics.com/api/data/v9.2/accounts",         // outside the base path
		"https://user@contoso.crm4.dynamics.com/org/api/data/v9.2/a",       // userinfo
		"https://contoso.crm4.dynamics.com.evil.example/org/api/data/v9.2", // look-alike host
		"//contoso.crm4.dynamics.com/org/api/data/v9.2/accounts",           // scheme-relative
		"/org/api/data/v9.2/accounts",                                      // relative
		"https:contoso.crm4.dynamics.com/org",                              // opaque
		"https://contoso.crm4.dynamics.com/org",                            // the base itself
		"%zz",
	} {
		if got, good := h.rewriteLink(in); good {
			t.Errorf("%s rewritten to %q", in, got)
		}
	}
	// Without public_url the link becomes path-absolute at crmgate.
	h.o.PublicURL = ""
	if got, good := h.rewriteLink("https://contoso.crm4.dynamics.com/org/api/data/v9.2/accounts?a=1"); !good || got != "/api/data/v9.2/accounts?a=1" {
		t.Errorf("no public_url: %q %v", got, good)
	}
}
