package browser

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// page is a tiny site: a button whose script writes a greeting from an
// input, a form post, and a link that redirects to a 404.
func page(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>t</title>
<input id="name" value="placeholder">
<button id="greet" onclick="document.getElementById('result').textContent = 'hello ' + document.getElementById('name').value">greet</button>
<p id="result"></p>
<form method="post" action="/submit"><input id="field" name="field"><button id="send">send</button></form>
<a id="away" href="/redirect">away</a>
<ul><li class="item">a</li><li class="item">b</li><li class="item">c</li></ul>`)
	})
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `<p id="got">%s</p>`, strings.ToUpper(r.PostFormValue("field")))
	})
	mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/final", http.StatusFound)
	})
	mux.HandleFunc("GET /final", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<h1 id="title">not here</h1>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestBrowserDrivesAPage(t *testing.T) {
	t.Parallel()
	srv := page(t)
	b := New(t)
	if status := b.Navigate(srv.URL + "/"); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	t.Run("click reads the script's result", func(t *testing.T) {
		b.Fill("#name", "crmgate")
		b.Click("#greet")
		if got := b.Text("#result"); got != "hello crmgate" {
			t.Fatalf("result %q", got)
		}
	})
	t.Run("count", func(t *testing.T) {
		if n := b.Count("li.item"); n != 3 {
			t.Fatalf("count %d", n)
		}
		if n := b.Count("#absent"); n != 0 {
			t.Fatalf("absent count %d", n)
		}
		if n := b.Count(`a[href="/redirect"]`); n != 1 {
			t.Fatalf("quoted selector count %d", n)
		}
	})
	t.Run("form post", func(t *testing.T) {
		b.Fill("#field", "posted")
		if status := b.ClickAndWait("#send"); status != http.StatusCreated {
			t.Fatalf("status %d", status)
		}
		if got := b.Text("#got"); got != "POSTED" {
			t.Fatalf("got %q", got)
		}
		if u := b.URL(); u != srv.URL+"/submit" {
			t.Fatalf("url %s", u)
		}
	})
	t.Run("redirect followed to its status", func(t *testing.T) {
		b.Navigate(srv.URL + "/")
		if status := b.ClickAndWait("#away"); status != http.StatusNotFound {
			t.Fatalf("status %d", status)
		}
		if u := b.URL(); u != srv.URL+"/final" {
			t.Fatalf("url %s", u)
		}
		if got := b.Text("#title"); got != "not here" {
			t.Fatalf("title %q", got)
		}
	})
}

// TestBrowsersDoNotShareCookies: each Browser has its own profile, so one
// test's session cannot leak into another's.
func TestBrowsersDoNotShareCookies(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "s", Value: "1", Path: "/"})
		}
		c, err := r.Cookie("s")
		fmt.Fprintf(w, `<p id="c">%v</p>`, err == nil && c.Value == "1")
	}))
	t.Cleanup(srv.Close)
	first, second := New(t), New(t)
	first.Navigate(srv.URL + "/set")
	first.Navigate(srv.URL + "/check")
	if got := first.Text("#c"); got != "true" {
		t.Fatalf("first browser lost its cookie: %s", got)
	}
	second.Navigate(srv.URL + "/check")
	if got := second.Text("#c"); got != "false" {
		t.Fatalf("second browser sees the first one's cookie: %s", got)
	}
}

// fakeTB records what a helper does to its test instead of ending it.
type fakeTB struct {
	testing.TB
	mu      sync.Mutex
	failed  bool
	fatal   string
	skipped bool
	logs    []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed, f.fatal = true, fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Skip(...any)          { f.skip() }
func (f *fakeTB) Skipf(string, ...any) { f.skip() }
func (f *fakeTB) SkipNow()             { f.skip() }
func (f *fakeTB) skip()                { f.mu.Lock(); f.skipped = true; f.mu.Unlock(); runtime.Goexit() }
func (f *fakeTB) Logf(s string, a ...any) {
	f.mu.Lock()
	f.logs = append(f.logs, fmt.Sprintf(s, a...))
	f.mu.Unlock()
}
func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// TestMissingChromiumFailsTheTest: without a browser the test must fail
// and say how to install one, never skip.
func TestMissingChromiumFailsTheTest(t *testing.T) {
	t.Parallel()
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		newAt(f, filepath.Join(t.TempDir(), "no-chromium-here"))
	}()
	<-done
	if f.skipped || !f.failed {
		t.Fatalf("skipped %v failed %v", f.skipped, f.failed)
	}
	if !strings.Contains(f.fatal, "test/all.sh") || !strings.Contains(f.fatal, "apt-get install") {
		t.Fatalf("message does not say how to install chromium: %s", f.fatal)
	}
}

// TestFailureLeavesAScreenshot runs the failure hook of a browser whose
// test has failed and checks the PNG and the logged evidence.
func TestFailureLeavesAScreenshot(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ArtifactsEnv, dir)
	srv := page(t)
	f := &fakeTB{TB: t}
	b := newAt(f, ExecPath)
	b.Navigate(srv.URL + "/")
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	b.onFailure()
	f.mu.Lock()
	f.failed = false // the real test has not failed; its own cleanup must not run the hook again
	logs := strings.Join(f.logs, "\n")
	f.mu.Unlock()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("artifacts %v %v", entries, err)
	}
	png, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("not a png (%v)", err)
	}
	for _, want := range []string{entries[0].Name(), "page " + srv.URL + "/", "greet"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}
