package app_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeIdP is the real OpenID provider of test/idp (node oidc-provider with
// password + TOTP), running as a child process of the test.
type nodeIdP struct {
	URL string
}

// repoRoot finds the module root from this file's location.
func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startIdP runs test/idp/server.mjs on a free port. A missing node is a
// test failure, not a skip: the real IdP is part of the contract (DESIGN.md
// §6).
func startIdP(t testing.TB, args ...string) *nodeIdP {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the real-IdP tests (apt-get install nodejs npm): %v", err)
	}
	dir := filepath.Join(repoRoot(t), "test", "idp")
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in test/idp: %v\n%s", err, out)
		}
	}
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		cmd := exec.Command(node, append([]string{"server.mjs", "--port", fmt.Sprint(port)}, args...)...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start idp: %v", err)
		}
		ready := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if line := sc.Text(); strings.Contains(line, "crmgate test idp ready at ") {
					ready <- line
				}
			}
			close(ready)
		}()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		select {
		case _, ok := <-ready:
			if ok {
				t.Cleanup(stop)
				return &nodeIdP{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
			}
		case <-time.After(30 * time.Second):
		}
		stop()
		if attempt == 2 {
			t.Fatalf("test idp did not start: %s", stderr.String())
		}
	}
}

// totp computes the RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32
// secret at time at.
func totp(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret))
	if err != nil {
		t.Fatal(err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/30))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", code%1_000_000)
}

func TestTOTPVector(t *testing.T) {
	// RFC 6238 appendix B, SHA-1, truncated to 6 digits.
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	for at, want := range map[int64]string{59: "287082", 1111111109: "081804", 1234567890: "005924", 2000000000: "279037"} {
		if got := totp(t, secret, time.Unix(at, 0)); got != want {
			t.Errorf("totp at %d = %s, want %s", at, got, want)
		}
	}
}

// userAgent is a browser stand-in: a cookie jar, navigation headers, and
// form filling for the IdP's pages. It follows redirects itself and keeps
// the last page.
type userAgent struct {
	t    testing.TB
	c    *http.Client
	jar  *cookiejar.Jar
	last *page
}

type page struct {
	URL    string
	Status int
	Body   string
	Header http.Header
}

func newUserAgent(t testing.TB) *userAgent {
	jar, _ := cookiejar.New(nil)
	return &userAgent{t: t, jar: jar, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// navigate requests u as a top-level navigation and follows redirects.
func (ua *userAgent) navigate(method, u string, form url.Values, hdr ...string) *page {
	ua.t.Helper()
	for range 20 {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			ua.t.Fatal(err)
		}
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := ua.c.Do(req)
		if err != nil {
			ua.t.Fatalf("%s %s: %v", method, u, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if loc := res.Header.Get("Location"); loc != "" && res.StatusCode >= 300 && res.StatusCode < 400 {
			next, err := res.Request.URL.Parse(loc)
			if err != nil {
				ua.t.Fatal(err)
			}
			u, method, form, hdr = next.String(), http.MethodGet, nil, nil
			continue
		}
		ua.last = &page{URL: u, Status: res.StatusCode, Body: string(b), Header: res.Header}
		return ua.last
	}
	ua.t.Fatalf("too many redirects from %s", u)
	return nil
}

var (
	formAction = regexp.MustCompile(`<form[^>]*id="(login|otp|logout-form)"[^>]*action="([^"]+)"`)
	opLogout   = regexp.MustCompile(`(?s)<form[^>]*id="op.logoutForm"[^>]*action="([^"]+)"[^>]*>(.*?)</form>`)
	hidden     = regexp.MustCompile(`<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
)

// submit posts the page's form with id to its action.
func (ua *userAgent) submit(p *page, id string, values url.Values) *page {
	ua.t.Helper()
	for _, m := range formAction.FindAllStringSubmatch(p.Body, -1) {
		if m[1] == id {
			action, err := url.Parse(p.URL)
			if err != nil {
				ua.t.Fatal(err)
			}
			target, err := action.Parse(html.UnescapeString(m[2]))
			if err != nil {
				ua.t.Fatal(err)
			}
			return ua.navigate(http.MethodPost, target.String(), values, "Origin", action.Scheme+"://"+action.Host)
		}
	}
	ua.t.Fatalf("no form %q on %s (status %d): %s", id, p.URL, p.Status, p.Body)
	return nil
}

// password fills the IdP's login form.
func (ua *userAgent) password(p *page, user string) *page {
	ua.t.Helper()
	return ua.submit(p, "login", url.Values{"username": {user}, "password": {user + "-password"}})
}

// otp fills the IdP's TOTP form with the current code.
func (ua *userAgent) otp(p *page, secret string) *page {
	ua.t.Helper()
	return ua.submit(p, "otp", url.Values{"code": {totp(ua.t, secret, time.Now())}})
}

// confirmIdPLogout presses "Yes, sign me out" on the IdP's logout page.
func (ua *userAgent) confirmIdPLogout(p *page) *page {
	ua.t.Helper()
	m := opLogout.FindStringSubmatch(p.Body)
	if m == nil {
		ua.t.Fatalf("no IdP logout form on %s: %s", p.URL, p.Body)
	}
	values := url.Values{"logout": {"yes"}}
	for _, h := range hidden.FindAllStringSubmatch(m[2], -1) {
		values.Set(h[1], html.UnescapeString(h[2]))
	}
	base, _ := url.Parse(p.URL)
	target, _ := base.Parse(html.UnescapeString(m[1]))
	return ua.navigate(http.MethodPost, target.String(), values, "Origin", base.Scheme+"://"+base.Host)
}
