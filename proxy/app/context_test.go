package app_test

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/demo"
	refpolicy "github.com/crmgate/crmgate/rego"
)

// The reference data's context (rego/data.json): offices 198.51.100.0/24 and
// 2001:db8:100::/48, staff 08:00-18:00 Monday to Friday in Europe/Berlin
// (UTC+1 in November).
const (
	officeV4 = "198.51.100.7"
	officeV6 = "2001:db8:100::5"
	outside  = "203.0.113.9"
	// mondayNoon is 13:00 in Berlin, a Monday.
	mondayNoon = "2026-11-23T12:00:00Z"
)

const (
	reasonOffice = "admin access is allowed only from an office network"
	reasonHours  = "sales access is allowed only within working hours (08:00-18:00"
)

// clock is a proxy clock a test moves.
type clock struct{ ns atomic.Int64 }

func (c *clock) set(t testing.TB, rfc3339 string) {
	at, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		t.Fatal(err)
	}
	c.ns.Store(at.UnixNano())
}

func (c *clock) now() time.Time { return time.Unix(0, c.ns.Load()) }

// contextEnv is crmgate with the reference policy and its reference data,
// the proxy's clock at the test's hand, and the given listener settings.
func contextEnv(t *testing.T, listen func(*config.Listener)) (*env, *clock) {
	t.Helper()
	c := &clock{}
	c.set(t, mondayNoon)
	e := newEnvAt(t, "suitecrm8", refpolicy.FS, c.now, func(cfg *config.Config) {
		listen(&cfg.Listen)
		cfg.Identity.Claims.Attributes["time_zone"] = "zoneinfo"
	})
	return e, c
}

// trustLoopback makes the test's own connection a trusted proxy whose
// X-Forwarded-For places the client.
func trustLoopback(l *config.Listener) { l.TrustedProxies = []string{"127.0.0.1/32", "::1/128"} }

type contextCase struct {
	name, persona, at string
	hdr               []string
	status            int
	// remoteIP is what the policy and the decision log must see; reason,
	// when set, must be among the decision's reasons.
	remoteIP, reason string
}

// runContext sends each case's read of one account and checks the answer,
// then the decision log's remote_ip and reasons.
func runContext(t *testing.T, e *env, c *clock, cases []contextCase) {
	t.Helper()
	byID := map[string]contextCase{}
	for _, k := range cases {
		c.set(t, k.at)
		e.upstream.reset()
		r := e.do("GET", "/Api/V8/module/Accounts/acc-1", k.persona, "", k.hdr...)
		if r.Status != k.status {
			t.Errorf("%s: status %d, want %d: %s", k.name, r.Status, k.status, r.Body)
			continue
		}
		id := r.json(t)["decision_id"]
		if k.status == http.StatusOK {
			crm := e.upstream.crmRequests()
			if len(crm) != 1 {
				t.Fatalf("%s: %d CRM requests", k.name, len(crm))
			}
			id = crm[0].Header.Get("X-Request-Id")
		}
		byID[asString(id)] = k
	}
	found := 0
	for _, l := range e.flushLog() {
		in, _ := l["input"].(map[string]any)
		req, _ := in["request"].(map[string]any)
		k, ok := byID[asString(req["id"])]
		if !ok {
			k, ok = byID[asString(l["decision_id"])]
		}
		if !ok {
			continue
		}
		found++
		if got := asString(req["remote_ip"]); got != k.remoteIP {
			t.Errorf("%s: remote_ip %q, want %q", k.name, got, k.remoteIP)
		}
		if got := asString(req["time"]); got == "" || !sameInstant(t, got, k.at) {
			t.Errorf("%s: input.request.time %q, want %s", k.name, got, k.at)
		}
		if k.reason != "" {
			res, _ := l["result"].(map[string]any)
			var reasons []string
			for _, r := range asSlice(res["reasons"]) {
				reasons = append(reasons, asString(r))
			}
			if !slices.ContainsFunc(reasons, func(r string) bool { return strings.HasPrefix(r, k.reason) }) {
				t.Errorf("%s: reasons %q, want %q among them", k.name, reasons, k.reason)
			}
		}
	}
	if found != len(byID) {
		t.Errorf("%d of %d requests found in the decision log", found, len(byID))
	}
}

func sameInstant(t *testing.T, a, b string) bool {
	ta, err := time.Parse(time.RFC3339Nano, a)
	if err != nil {
		t.Errorf("time %q: %v", a, err)
		return false
	}
	tb, _ := time.Parse(time.RFC3339, b)
	return ta.Equal(tb)
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// TestContextRules runs the reference policy's context rules through the
// whole pipeline, with the client placed by a trusted proxy's
// X-Forwarded-For and the clock set per request.
func TestContextRules(t *testing.T) {
	e, c := contextEnv(t, trustLoopback)
	xff := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	runContext(t, e, c, []contextCase{
		{"admin from the office", "sam", mondayNoon, xff(officeV4), 200, officeV4, ""},
		{"admin from the IPv6 office", "sam", mondayNoon, xff(officeV6), 200, officeV6, ""},
		{"admin from the office on a Sunday night", "sam", "2026-11-29T02:00:00Z", xff(officeV4), 200, officeV4, ""},
		{"admin with MFA from outside", "sam", mondayNoon, xff(outside), 403, outside, reasonOffice},
		{"admin from next to the IPv6 office", "sam", mondayNoon, xff("2001:db8:101::5"), 403, "2001:db8:101::5", reasonOffice},
		// Loopback, the trusted proxy itself, is no office in the
		// reference data.
		{"admin through the proxy without a header", "sam", mondayNoon, nil, 403, "127.0.0.1", reasonOffice},
		// An unreadable hop leaves the address unknown: no office.
		{"admin with a garbled chain", "sam", mondayNoon, xff(officeV4 + ", junk"), 403, "", reasonOffice},
		// Without MFA the admin is stepped up (401 for a bearer client)
		// even in the office, and never let through.
		{"admin without MFA from the office", "sam-nomfa", mondayNoon, xff(officeV4), 401, officeV4, "admin requires MFA"},
		{"customer on a Saturday night from anywhere", "pat", "2026-11-28T23:30:00Z", xff(outside), 200, outside, ""},
		{"sales at 13:00", "alice", mondayNoon, xff(outside), 200, outside, ""},
		{"sales one minute before hours", "alice", "2026-11-23T06:59:00Z", xff(outside), 403, outside, reasonHours},
		{"sales at opening", "alice", "2026-11-23T07:00:00Z", xff(outside), 200, outside, ""},
		{"sales in the last minute", "alice", "2026-11-23T16:59:00Z", xff(outside), 200, outside, ""},
		{"sales at closing", "alice", "2026-11-23T17:00:00Z", xff(outside), 403, outside, reasonHours},
		{"sales on Saturday in the office", "alice", "2026-11-28T12:00:00Z", xff(officeV4), 403, officeV4, reasonHours},
		{"support on Sunday", "sky", "2026-11-29T12:00:00Z", xff(outside), 403, outside, ""},
		{"line manager on Friday 17:30", "morgan", "2026-11-27T16:30:00Z", xff(outside), 200, outside, ""},
	})
}

// TestContextRulesSpoofedOffice: an admin outside the office cannot claim
// the office with a forwarding header, whether the peer is not a trusted
// proxy at all or is one that appends the real client.
func TestContextRulesSpoofedOffice(t *testing.T) {
	t.Run("untrusted peer", func(t *testing.T) {
		// Loopback is not an office and not trusted: the headers are
		// ignored and the policy sees the peer.
		e, c := contextEnv(t, func(l *config.Listener) { l.TrustedProxies = []string{"10.0.0.0/8"} })
		runContext(t, e, c, []contextCase{
			{"xff", "sam", mondayNoon, []string{"X-Forwarded-For", officeV4}, 403, "127.0.0.1", reasonOffice},
			{"xff ipv6", "sam", mondayNoon, []string{"X-Forwarded-For", officeV6}, 403, "127.0.0.1", reasonOffice},
			{"forwarded", "sam", mondayNoon, []string{"Forwarded", "for=" + officeV4}, 403, "127.0.0.1", reasonOffice},
			{"x-real-ip", "sam", mondayNoon, []string{"X-Real-IP", officeV4}, 403, "127.0.0.1", reasonOffice},
			{"office then a trusted hop", "sam", mondayNoon, []string{"X-Forwarded-For", officeV4 + ", 10.1.2.3"}, 403, "127.0.0.1", reasonOffice},
			// The same spoof gives staff no extra hours either.
			{"sales on Saturday", "alice", "2026-11-28T12:00:00Z", []string{"X-Forwarded-For", officeV4}, 403, "127.0.0.1", reasonHours},
		})
	})
	t.Run("trusted proxy appends the real client", func(t *testing.T) {
		e, c := contextEnv(t, trustLoopback)
		runContext(t, e, c, []contextCase{
			{"office on the left", "sam", mondayNoon, []string{"X-Forwarded-For", officeV4 + ", " + outside}, 403, outside, reasonOffice},
			{"office in an earlier header", "sam", mondayNoon, []string{"X-Forwarded-For", officeV4, "X-Forwarded-For", outside}, 403, outside, reasonOffice},
			{"forwarded not read in xff mode", "sam", mondayNoon, []string{"Forwarded", "for=" + officeV4, "X-Forwarded-For", outside}, 403, outside, reasonOffice},
		})
	})
	t.Run("trusted proxy with Forwarded", func(t *testing.T) {
		e, c := contextEnv(t, func(l *config.Listener) {
			trustLoopback(l)
			l.ClientIPHeader = config.ClientIPForwarded
		})
		runContext(t, e, c, []contextCase{
			{"office on the left", "sam", mondayNoon, []string{"Forwarded", "for=" + officeV4 + ", for=" + outside}, 403, outside, reasonOffice},
			{"office in a quoted pair", "sam", mondayNoon, []string{"Forwarded", `for="` + officeV4 + `, for=` + outside + `"`}, 403, "", reasonOffice},
			{"xff not read in forwarded mode", "sam", mondayNoon, []string{"X-Forwarded-For", officeV4, "Forwarded", "for=" + outside}, 403, outside, reasonOffice},
			{"real office client", "sam", mondayNoon, []string{"Forwarded", `for="[` + officeV6 + `]:4711"`}, 200, officeV6, ""},
		})
	})
}

// TestContextRulesSubjectTimeZone: the subject's own zone (the zoneinfo
// claim, mapped to attributes.time_zone) decides the hours; an unknown zone
// lets nothing through.
func TestContextRulesSubjectTimeZone(t *testing.T) {
	e, c := contextEnv(t, trustLoopback)
	mint := func(name, zone string) {
		tok, err := e.iss.Mint(map[string]any{
			"aud": demo.Audience, "sub": name, "roles": []string{"sales"}, "crm_user_id": "u-sales1",
			"amr": []string{"pwd"}, "zoneinfo": zone,
		}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = tok
	}
	mint("alice-ny", "America/New_York")
	mint("alice-mars", "Mars/Olympus_Mons")
	xff := []string{"X-Forwarded-For", outside}
	// An unknown zone is a policy evaluation error: refused, never allowed.
	if r := e.do("GET", "/Api/V8/module/Accounts/acc-1", "alice-mars", "", xff...); r.Status < 400 {
		t.Errorf("unknown time zone: status %d, want a refusal: %s", r.Status, r.Body)
	}
	runContext(t, e, c, []contextCase{
		// 07:59 in New York though 13:59 in Berlin.
		{"new york before hours", "alice-ny", "2026-11-23T12:59:00Z", xff, 403, outside, ""},
		{"new york at opening", "alice-ny", "2026-11-23T13:00:00Z", xff, 200, outside, ""},
		// 17:30 in New York, 23:30 in Berlin.
		{"new york after berlin closed", "alice-ny", "2026-11-23T22:30:00Z", xff, 200, outside, ""},
	})
}
