package proxy

import (
	"net/url"
	"strings"
)

// rewriteLink turns a URL the CRM wrote into its answer (Dataverse's
// @odata.nextLink, @odata.context) into the same path and query at
// crmgate, so a client pages through crmgate and never learns, or is sent
// to, the CRM's own address. A following request is classified and judged
// like any other: the link carries no authority of its own. A link that
// does not point under the upstream URL (another host, scheme or base
// path, userinfo, a relative reference) is dropped: crmgate cannot tell
// where it would send the client.
func (h *Handler) rewriteLink(link string) (string, bool) {
	u, err := url.Parse(link)
	up := h.o.Upstream.URL
	if err != nil || u.User != nil || !strings.EqualFold(u.Scheme, up.Scheme) || !strings.EqualFold(u.Host, up.Host) || u.Opaque != "" {
		return "", false
	}
	base := strings.TrimSuffix(up.EscapedPath(), "/")
	p := u.EscapedPath()
	if base != "" && p != base && !strings.HasPrefix(p, base+"/") {
		return "", false
	}
	rest := strings.TrimPrefix(p, base)
	if rest == "" || rest[0] != '/' {
		return "", false
	}
	out := strings.TrimSuffix(h.o.PublicURL, "/") + rest
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		out += "#" + u.EscapedFragment()
	}
	return out, true
}
