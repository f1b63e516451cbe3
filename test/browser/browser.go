// Package browser drives Debian's Chromium, headless, from Go tests
// (through chromedp), so that login, step-up and denial pages are tested the
// way a person meets them. Every helper fails the test on error; a failed
// test leaves a screenshot and the page's text behind.
//
// A missing browser fails the test instead of skipping it: a security test
// that silently does not run is worse than a red build. test/all.sh installs
// the browser.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ExecPath is where Debian's chromium package installs the browser.
const ExecPath = "/usr/bin/chromium"

// DefaultTimeout bounds each helper call (a navigation with its redirects,
// a click, a read), so that a page that never comes fails the test instead
// of hanging it.
const DefaultTimeout = 20 * time.Second

// ArtifactsEnv names the environment variable holding the directory that
// failure screenshots go to (default: crmgate-browser under os.TempDir()).
const ArtifactsEnv = "CRMGATE_BROWSER_ARTIFACTS"

// Browser is one headless Chromium with one tab and a fresh profile. It is
// not safe for concurrent use: a tab does one thing at a time. Tests that
// want parallel sessions start one Browser each.
type Browser struct {
	t   testing.TB
	ctx context.Context
	// Timeout bounds each helper call; New sets DefaultTimeout.
	Timeout time.Duration
	output  *lockedBuffer
}

// New starts a headless Chromium for t with its own user data directory
// (t.TempDir(), so no cookie or cache survives the test) and stops it when
// the test ends. If the test fails, a screenshot of the page is saved first
// and its path logged.
func New(t testing.TB) *Browser {
	t.Helper()
	return newAt(t, ExecPath)
}

func newAt(t testing.TB, execPath string) *Browser {
	t.Helper()
	if _, err := os.Stat(execPath); err != nil {
		t.Fatalf("browser: %s not found (%v): run the repository's test command, test/all.sh, which installs Debian's chromium (or: apt-get install -y chromium)", execPath, err)
		return nil
	}
	out := &lockedBuffer{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in containers, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Containers give /dev/shm 64 MB, which crashes renderer tabs.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	// Cleanups run last-registered first: the screenshot is taken before
	// the browser stops.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &Browser{t: t, ctx: ctx, Timeout: DefaultTimeout, output: out}
	// The first Run starts the browser; it must not carry a timeout, or
	// the timeout would later stop the whole browser (chromedp.Run docs).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browser: start %s: %v\n%s", execPath, err, out.tail(4096))
		return nil
	}
	t.Cleanup(b.onFailure)
	return b
}

// Context returns the tab's chromedp context, for actions the helpers do
// not cover. Bound it with context.WithTimeout yourself.
func (b *Browser) Context() context.Context { return b.ctx }

func (b *Browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

func runValue[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// Navigate loads url, follows its redirects, waits for the final page to
// load and returns that page's HTTP status.
func (b *Browser) Navigate(url string) int {
	b.t.Helper()
	res := runValue(b, "navigate to "+url, chromedp.NavigateResponse(url))
	return int(res.Status)
}

// Click clicks the first element matching the CSS selector, waiting for it
// to appear. It does not wait for a navigation the click causes; use
// ClickAndWait for buttons and links that load a page.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	b.run("click "+selector, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible))
}

// ClickAndWait clicks the first element matching the CSS selector, waits
// until the page it leads to (after redirects) has loaded and returns that
// page's HTTP status. A click that loads no page fails the test after
// Timeout.
func (b *Browser) ClickAndWait(selector string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.Timeout)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("browser: click %s and wait for the page: %v", selector, err)
	}
	return int(res.Status)
}

// Fill replaces the value of the input matching the CSS selector by typing
// value into it, as a user would.
func (b *Browser) Fill(selector, value string) {
	b.t.Helper()
	b.run("fill "+selector,
		chromedp.Clear(chromedp.CSS(selector), chromedp.NodeVisible),
		chromedp.SendKeys(chromedp.CSS(selector), value, chromedp.NodeVisible))
}

// Text returns the visible text of the first element matching the CSS
// selector, waiting for it to appear.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	return runValue(b, "read text of "+selector, chromedp.Text(chromedp.CSS(selector), chromedp.NodeReady))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (b *Browser) WaitVisible(selector string) {
	b.t.Helper()
	b.run("wait for "+selector, chromedp.WaitVisible(chromedp.CSS(selector)))
}

// Count returns how many elements match the CSS selector now, without
// waiting; it is how a test checks that something is absent.
func (b *Browser) Count(selector string) int {
	b.t.Helper()
	quoted, err := json.Marshal(selector)
	if err != nil {
		b.t.Fatalf("browser: count %s: %v", selector, err)
	}
	return runValue(b, "count "+selector, chromedp.Evaluate[int]("document.querySelectorAll("+string(quoted)+").length"))
}

// URL returns the address of the page the tab shows.
func (b *Browser) URL() string {
	b.t.Helper()
	return runValue(b, "read location", chromedp.Location())
}

// Screenshot saves a PNG of the whole page to path.
func (b *Browser) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// onFailure leaves evidence of a failed test: a screenshot, the page's
// address and text, and the end of the browser's own output.
func (b *Browser) onFailure() {
	if !b.t.Failed() {
		return
	}
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "crmgate-browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("browser: failure screenshot: %v", err)
		return
	}
	name := fmt.Sprintf("%s-%s.png", unsafeName.ReplaceAllString(b.t.Name(), "_"), time.Now().Format("150405.000"))
	path := filepath.Join(dir, name)
	if err := b.Screenshot(path); err != nil {
		b.t.Logf("browser: failure screenshot: %v", err)
	} else {
		b.t.Logf("browser: screenshot of the failed page: %s", path)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
		b.t.Logf("browser: page %s", loc)
	}
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText.slice(0, 2000) : ''")); err == nil {
		b.t.Logf("browser: page text:\n%s", text)
	}
	if tail := b.output.tail(2048); tail != "" {
		b.t.Logf("browser: chromium output (end):\n%s", tail)
	}
}

// lockedBuffer collects the browser's output, which chromedp writes from
// its own goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Chromium can be chatty; the end is what explains a crash.
	if l.buf.Len() > 1<<20 {
		rest := l.buf.Bytes()[l.buf.Len()-(64<<10):]
		kept := append([]byte(nil), rest...)
		l.buf.Reset()
		l.buf.Write(kept)
	}
	return l.buf.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
