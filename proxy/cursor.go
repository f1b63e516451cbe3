package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/crmgate/crmgate/proxy/profile"
)

// cursorLifetime bounds how long a signed cursor is accepted. Salesforce
// drops an idle query locator after 15 minutes; a client paging slowly
// gets a fresh signature with every page.
const cursorLifetime = 30 * time.Minute

// Salesforce continues a query past its first batch with a locator
// (nextRecordsUrl, /query/01g…-2000). The CRM runs the rest of that query
// as crmgate's integration user for whoever presents the locator, so a
// locator seen by one user (a shared log, a proxy in between) would hand
// another the first user's records and fields, and a locator of a query
// crmgate never read would skip every check of its SOQL. crmgate
// therefore signs each locator it hands out for the subject who ran the
// query and the module the query read, and forwards a continuation only
// with a valid, unexpired signature for the same subject; the module of
// the signed link is the one the continuation is decided on, and its
// records are judged by that module's record and field rules as any list.

func errCursor(reason string) *Problem {
	return &Problem{Status: http.StatusNotFound, Kind: "not-found", Title: "Not found",
		Detail:  "This query cursor was not issued to you by crmgate, or it has expired: run the query again.",
		Outcome: OutcomeDeny, Reason: reason}
}

// cursorSig is the signature of a cursor path for subject and module.
func (h *Handler) cursorSig(subject, module, path string, exp int64) string {
	mac := hmac.New(sha256.New, h.o.CursorKey)
	for _, part := range []string{"crmgate cursor v1", subject, module, path, strconv.FormatInt(exp, 10)} {
		// Length-prefixed, so no two tuples share an encoding.
		mac.Write([]byte(strconv.Itoa(len(part)) + ":" + part))
	}
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// linkRewriter is the Links function of x's response. A link the CRM
// wrote to continue the list (a path on a Cursor route, Salesforce's
// relative nextRecordsUrl) is signed for x's subject and response module;
// any other is rewritten to crmgate's address or dropped (rewriteLink).
func (h *Handler) linkRewriter(x *exchange) func(string) (string, bool) {
	return func(link string) (string, bool) {
		if !strings.HasPrefix(link, "/") || strings.HasPrefix(link, "//") {
			return h.rewriteLink(link)
		}
		m, err := h.o.Profile.Classify(http.MethodGet, link, nil)
		if err != nil || !m.Cursor || x.input.Subject == nil || len(h.o.CursorKey) == 0 {
			return "", false
		}
		module := x.responseModule()
		exp := h.o.Now().Add(cursorLifetime).Unix()
		q := url.Values{
			profile.CursorObject:  {module},
			profile.CursorExpires: {strconv.FormatInt(exp, 10)},
			profile.CursorSig:     {h.cursorSig(x.input.Subject.ID, module, m.Path, exp)},
		}
		return m.Path + "?" + q.Encode(), true
	}
}

// checkCursor refuses a continuation whose signature is not crmgate's for
// this subject, module and cursor, or has expired.
func (h *Handler) checkCursor(x *exchange) error {
	q, err := url.ParseQuery(x.r.URL.RawQuery)
	if err != nil || x.input.Subject == nil || len(h.o.CursorKey) == 0 {
		return errCursor("bad cursor")
	}
	exp, err := strconv.ParseInt(q.Get(profile.CursorExpires), 10, 64)
	if err != nil || !h.o.Now().Before(time.Unix(exp, 0)) {
		return errCursor("cursor expired")
	}
	want := h.cursorSig(x.input.Subject.ID, x.match.Module, x.match.Path, exp)
	if !hmac.Equal([]byte(q.Get(profile.CursorSig)), []byte(want)) {
		return errCursor("cursor not signed for this subject")
	}
	return nil
}
