package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/test/browser"
)

// startDemo runs the demo as `crmgate demo --crm crm` does ("" is the
// default CRM) and returns it with the intro it printed; it stops when the
// test ends.
func startDemo(t *testing.T, crm string) (*demo.Env, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *demo.Env, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- demo.Run(ctx, demo.Options{Listen: "127.0.0.1:0", Out: &out, DecisionLog: zapcore.AddSync(io.Discard),
			CRM: crm, Ready: func(e *demo.Env) { ready <- e }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("demo did not stop")
		}
	})
	select {
	case env := <-ready:
		return env, out.String()
	case err := <-done:
		t.Fatalf("demo stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not start")
	}
	return nil, ""
}

// recordIDs reads the ids of a SuiteCRM V8 list the browser shows (Chromium
// renders a JSON document as text in a <pre>).
func recordIDs(t *testing.T, b *browser.Browser) []string {
	t.Helper()
	var doc struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	text := b.Text("pre")
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("page is not the JSON list: %v\n%.500s", err, text)
	}
	var ids []string
	for _, d := range doc.Data {
		ids = append(ids, d.ID)
	}
	return ids
}

// onPicker checks that the browser shows the demo issuer's sign-in page and
// returns the query of its authorization request.
func onPicker(t *testing.T, b *browser.Browser, env *demo.Env) url.Values {
	t.Helper()
	u, err := url.Parse(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/authorize" || strings.HasPrefix(u.String(), env.ProxyURL) {
		t.Fatalf("not on the issuer's sign-in page: %s", u)
	}
	if got := b.Text("h1"); got != "Sign in" {
		t.Fatalf("page heading %q", got)
	}
	return u.Query()
}

// TestDemoInABrowser clicks through the demo in headless Chromium: sign-in
// through the persona page, data filtered for the persona, step-up from a
// password sign-in to MFA, a denial page and sign-out.
func TestDemoInABrowser(t *testing.T) {
	env, intro := startDemo(t, "")
	if want := "open " + env.ProxyURL + "/Api/V8/module/Accounts in a browser"; !strings.Contains(intro, want) {
		t.Fatalf("intro lacks %q:\n%s", want, intro)
	}
	accounts := env.ProxyURL + "/Api/V8/module/Accounts"
	employees := env.ProxyURL + "/Api/V8/module/Employees"

	t.Run("pat signs in and sees only her account", func(t *testing.T) {
		t.Parallel()
		b := browser.New(t)
		if status := b.Navigate(accounts); status != http.StatusOK {
			t.Fatalf("sign-in page status %d", status)
		}
		q := onPicker(t, b, env)
		if q.Get("code_challenge_method") != "S256" || q.Has("acr_values") {
			t.Fatalf("authorization request %v", q)
		}
		if status := b.ClickAndWait("#signin-pat"); status != http.StatusOK {
			t.Fatalf("status %d after sign-in", status)
		}
		if b.URL() != accounts {
			t.Fatalf("landed on %s, want %s", b.URL(), accounts)
		}
		if ids := recordIDs(t, b); !slices.Equal(ids, []string{"acc-1"}) {
			t.Fatalf("pat sees accounts %v, want only acc-1", ids)
		}

		// The session now carries pat to a page she may not see: the
		// proxy answers with its denial page, not the IdP.
		if status := b.Navigate(employees); status != http.StatusForbidden {
			t.Fatalf("personnel records for pat: status %d", status)
		}
		if b.URL() != employees || b.Count("#problem-title") != 1 {
			t.Fatalf("no denial page at %s", b.URL())
		}
	})

	t.Run("sign-out ends the session", func(t *testing.T) {
		t.Parallel()
		b := browser.New(t)
		b.Navigate(accounts)
		onPicker(t, b, env)
		if status := b.ClickAndWait("#signin-alice"); status != http.StatusOK || b.URL() != accounts {
			t.Fatalf("sign-in: status %d at %s", status, b.URL())
		}
		b.Navigate(env.ProxyURL + "/.crmgate/logout")
		// The form post goes to crmgate, on to the issuer's end-session
		// endpoint and back to crmgate's signed-out page.
		if status := b.ClickAndWait("#logout-submit"); status != http.StatusOK {
			t.Fatalf("sign-out status %d", status)
		}
		if !strings.HasPrefix(b.URL(), env.ProxyURL+"/.crmgate/signed-out") || b.Count("#signed-out") != 1 {
			t.Fatalf("not signed out: %s", b.URL())
		}
		b.Navigate(accounts)
		onPicker(t, b, env)
	})

	t.Run("sam without MFA is stepped up for personnel records", func(t *testing.T) {
		t.Parallel()
		b := browser.New(t)
		b.Navigate(employees)
		onPicker(t, b, env)
		if b.Count("#signin-sam") != 1 || b.Count("#signin-mfa-sam") != 1 {
			t.Fatal("first sign-in should offer sam both buttons")
		}
		// The password-only sign-in succeeds, the policy's require_mfa
		// sends the browser straight back with acr_values.
		if status := b.ClickAndWait("#signin-sam"); status != http.StatusOK {
			t.Fatalf("status %d after password sign-in", status)
		}
		q := onPicker(t, b, env)
		if q.Get("acr_values") != issuer.ACRMFA {
			t.Fatalf("step-up asked for acr_values %q", q.Get("acr_values"))
		}
		if b.Count("#signin-sam") != 0 || b.Count("#signin-mfa-sam") != 1 {
			t.Fatal("step-up page must offer only the MFA button")
		}
		if status := b.ClickAndWait("#signin-mfa-sam"); status != http.StatusOK {
			t.Fatalf("status %d after MFA sign-in", status)
		}
		if b.URL() != employees {
			t.Fatalf("landed on %s, want %s", b.URL(), employees)
		}
		if ids := recordIDs(t, b); len(ids) == 0 {
			t.Fatal("admin with MFA sees no personnel records")
		}
	})

	t.Run("bearer tokens keep working next to browser sign-in", func(t *testing.T) {
		t.Parallel()
		for _, p := range env.Personas {
			if p.Name != "pat" {
				continue
			}
			req, _ := http.NewRequest(http.MethodGet, accounts, nil)
			req.Header.Set("Authorization", "Bearer "+p.Token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("bearer status %d", res.StatusCode)
			}
			return
		}
		t.Fatal("no pat persona")
	})
}
