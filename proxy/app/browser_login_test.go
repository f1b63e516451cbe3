package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	chromium "github.com/crmgate/crmgate/test/browser"
)

// users is the SuiteCRM module alice (sales) may not read at all.
const users = "/Api/V8/module/Users"

// shownList reads the SuiteCRM V8 list the browser shows (Chromium renders
// a JSON document as text in a <pre>) and returns its records' types and
// ids.
func shownList(t *testing.T, b *chromium.Browser) (types, ids []string) {
	t.Helper()
	var doc struct {
		Data []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"data"`
	}
	text := b.Text("pre")
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("page at %s is not a JSON list: %v\n%.500s", b.URL(), err, text)
	}
	for _, d := range doc.Data {
		types = append(types, d.Type)
		ids = append(ids, d.ID)
	}
	return types, ids
}

// wantAccounts checks that the browser shows the CRM's account list at
// want, not a page of crmgate or the IdP.
func wantAccounts(t *testing.T, b *chromium.Browser, want string) {
	t.Helper()
	if got := b.URL(); got != want {
		t.Fatalf("landed on %s, want %s", got, want)
	}
	types, ids := shownList(t, b)
	if len(ids) == 0 {
		t.Fatalf("no accounts shown at %s", want)
	}
	for _, ty := range types {
		if ty != "Account" {
			t.Fatalf("record of type %q in the account list", ty)
		}
	}
}

// onIdPLogin checks that the browser shows the node IdP's password form.
func onIdPLogin(t *testing.T, b *chromium.Browser, idp string) {
	t.Helper()
	if u := b.URL(); !strings.HasPrefix(u, idp+"/") {
		t.Fatalf("not at the IdP (%s) but at %s", idp, u)
	}
	if b.Count("#username") != 1 || b.Count("#password") != 1 {
		t.Fatalf("no password form at %s", b.URL())
	}
}

// typePassword fills the IdP's password form as user and submits it,
// returning the status of the page it leads to.
func typePassword(b *chromium.Browser, user string) int {
	b.Fill("#username", user)
	b.Fill("#password", user+"-password")
	return b.ClickAndWait("#submit")
}

// typeTOTP fills the IdP's TOTP form with the current code of secret.
func typeTOTP(t *testing.T, b *chromium.Browser, secret string) int {
	t.Helper()
	b.Fill("#code", totp(t, secret, time.Now()))
	return b.ClickAndWait("#submit")
}

// TestBrowserLoginRealIdP clicks through browser sign-in in headless
// Chromium: crmgate in front of the SuiteCRM emulator, the real node OpenID
// provider of test/idp and Redis sessions. Each case has its own browser
// (fresh cookies), so no case rides on another's session.
func TestBrowserLoginRealIdP(t *testing.T) {
	e := newLoginEnv(t)
	base := e.replicas[0].URL

	t.Run("password login lands on the requested JSON", func(t *testing.T) {
		b := chromium.New(t)
		target := base + accounts + "?page%5Bsize%5D=5"
		if st := b.Navigate(target); st != http.StatusOK {
			t.Fatalf("sign-in page status %d", st)
		}
		onIdPLogin(t, b, e.idp.URL)
		if st := typePassword(b, "alice"); st != http.StatusOK {
			t.Fatalf("status %d after the password", st)
		}
		wantAccounts(t, b, target)
		list := e.sessionsOf("alice")
		if len(list) == 0 || list[len(list)-1].MFA {
			t.Fatalf("alice's sessions = %+v", list)
		}
	})

	t.Run("login with TOTP", func(t *testing.T) {
		b := chromium.New(t)
		b.Navigate(base + "/.crmgate/login?mfa=1&rd=" + accounts)
		onIdPLogin(t, b, e.idp.URL)
		if st := typePassword(b, "morgan"); st != http.StatusOK {
			t.Fatalf("status %d after the password", st)
		}
		if b.Count("#code") != 1 {
			t.Fatalf("the IdP did not ask morgan for a TOTP code at %s", b.URL())
		}
		if st := typeTOTP(t, b, morganTOTP); st != http.StatusOK {
			t.Fatalf("status %d after the TOTP code", st)
		}
		wantAccounts(t, b, base+accounts)
		list := e.sessionsOf("morgan")
		if len(list) != 1 || !list[0].MFA {
			t.Fatalf("morgan's sessions = %+v", list)
		}
	})

	t.Run("step-up from a password session to MFA on an admin route", func(t *testing.T) {
		b := chromium.New(t)
		b.Navigate(base + "/.crmgate/login?rd=/")
		onIdPLogin(t, b, e.idp.URL)
		typePassword(b, "sam")
		if u := b.URL(); u != base+"/" {
			t.Fatalf("password sign-in landed on %s", u)
		}
		before := e.sessionsOf("sam")
		if len(before) != 1 || before[0].MFA {
			t.Fatalf("sam's password session = %+v", before)
		}
		// The policy steps every admin up to MFA: the browser goes to the
		// IdP, which knows the password already and asks only for the
		// second factor.
		if st := b.Navigate(base + accounts); st != http.StatusOK {
			t.Fatalf("step-up page status %d", st)
		}
		if u := b.URL(); !strings.HasPrefix(u, e.idp.URL+"/") {
			t.Fatalf("step-up did not go to the IdP: %s", u)
		}
		if b.Count("#code") != 1 || b.Count("#password") != 0 {
			t.Fatalf("step-up must ask for the TOTP only, at %s", b.URL())
		}
		if st := typeTOTP(t, b, samTOTP); st != http.StatusOK {
			t.Fatalf("status %d after the TOTP code", st)
		}
		wantAccounts(t, b, base+accounts)
		after := e.sessionsOf("sam")
		if len(after) != 1 || !after[0].MFA || after[0].Hash == before[0].Hash {
			t.Fatalf("after step-up sam's sessions = %+v (before %+v)", after, before)
		}
	})

	t.Run("denial page for a forbidden module", func(t *testing.T) {
		b := chromium.New(t)
		b.Navigate(base + accounts)
		onIdPLogin(t, b, e.idp.URL)
		typePassword(b, "alice")
		wantAccounts(t, b, base+accounts)
		if st := b.Navigate(base + users); st != http.StatusForbidden {
			t.Fatalf("CRM users for alice: status %d", st)
		}
		if u := b.URL(); u != base+users {
			t.Fatalf("denial moved the browser to %s", u)
		}
		if b.Count("#access-denied") != 1 || b.Count("pre") != 0 {
			t.Fatalf("no denial page at %s", b.URL())
		}
		id := strings.TrimSpace(b.Text("#decision-id"))
		if id == "" {
			t.Fatal("denial page without a decision id")
		}
		// The reference on the page must lead an administrator to the
		// decision: a deny for alice on the Users route.
		var found bool
		for _, l := range e.replicas[0].dlog.lines() {
			if l["decision_id"] != id {
				continue
			}
			found = true
			if res, _ := l["result"].(map[string]any); res == nil || res["allow"] != false {
				t.Fatalf("decision %s is not a deny: %v", id, l["result"])
			}
			if !strings.Contains(mustJSON(t, l["input"]), `"alice"`) {
				t.Fatalf("decision %s is not alice's: %v", id, l["input"])
			}
		}
		if !found {
			t.Fatalf("decision id %q is not in the decision log", id)
		}
	})

	t.Run("logout, signed-out page, then sign-in again", func(t *testing.T) {
		b := chromium.New(t)
		b.Navigate(base + accounts)
		onIdPLogin(t, b, e.idp.URL)
		typePassword(b, "ivan")
		if u := b.URL(); u != base+accounts {
			t.Fatalf("sign-in landed on %s", u)
		}
		if st := b.Navigate(base + "/.crmgate/logout"); st != http.StatusOK || b.Count("#logout-form") != 1 {
			t.Fatalf("logout page: status %d at %s", st, b.URL())
		}
		// crmgate ends its session and sends the browser to the IdP's
		// end-session confirmation, which comes back to the signed-out page.
		b.ClickAndWait("#logout-submit")
		if u := b.URL(); !strings.HasPrefix(u, e.idp.URL+"/") {
			t.Fatalf("logout did not go to the IdP: %s", u)
		}
		if st := b.ClickAndWait("#logout-yes"); st != http.StatusOK {
			t.Fatalf("IdP logout confirmation: status %d", st)
		}
		if u := b.URL(); !strings.HasPrefix(u, base+"/.crmgate/signed-out") || b.Count("#signed-out") != 1 {
			t.Fatalf("not on the signed-out page: %s", u)
		}
		if list := e.sessionsOf("ivan"); len(list) != 0 {
			t.Fatalf("ivan still has sessions: %+v", list)
		}
		// Both sessions ended: the next request starts a sign-in and the
		// IdP asks for the password again.
		if st := b.Navigate(base + accounts); st != http.StatusOK {
			t.Fatalf("after logout: status %d", st)
		}
		onIdPLogin(t, b, e.idp.URL)
	})
}
