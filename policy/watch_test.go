package policy

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	allowAll  = "package crmgate\n\nallow := true\n"
	allowNone = "package crmgate\n\nallow := false\n"
)

// reloads records what a Watcher reported.
type reloads struct {
	mu   sync.Mutex
	errs []error
}

func (r *reloads) add(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *reloads) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, err := range r.errs {
		if err != nil {
			n++
		}
	}
	return n
}

// startWatch loads root, watches it and stops the watch when the test ends.
func startWatch(t *testing.T, root string) (*Engine, *reloads) {
	t.Helper()
	e, err := Load(context.Background(), Options{Source: Source{Paths: []string{root}}})
	if err != nil {
		t.Fatal(err)
	}
	r := &reloads{}
	w, err := NewWatcher(e, WatchOptions{Debounce: 20 * time.Millisecond, Reloaded: r.add, Errors: func(err error) { t.Logf("watch: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		_ = w.Close()
		<-done
	})
	return e, r
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// saveAtomically writes the way editors and config tools do: a temporary
// file renamed over the old one, which replaces the inode.
func saveAtomically(t *testing.T, path, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	write(t, tmp, body)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherReloadsOnChange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
	}{
		{"in-place write", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "crmgate.rego"), allowNone) }},
		{"atomic rename save", func(t *testing.T, dir string) { saveAtomically(t, filepath.Join(dir, "crmgate.rego"), allowNone) }},
		{"new file in a new sub-directory", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "more", "deeper", "deny.rego"), "package crmgate\n\nreasons contains \"new\"\n")
		}},
		{"data file changed", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "data.json"), `{"x": 2}`) }},
		{"file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "data.json")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			write(t, filepath.Join(dir, "crmgate.rego"), allowAll)
			write(t, filepath.Join(dir, "data.json"), `{"x": 1}`)
			e, _ := startWatch(t, dir)
			before := e.Revision()
			tt.change(t, dir)
			eventually(t, "a new revision", func() bool { return e.Revision() != before })
		})
	}
}

func TestWatcherWatchesNewDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "crmgate.rego"), allowAll)
	e, _ := startWatch(t, dir)
	rev0 := e.Revision()
	write(t, filepath.Join(dir, "sub", "a.rego"), "package crmgate\n\nreasons contains \"a\"\n")
	eventually(t, "the first file of the new directory", func() bool { return e.Revision() != rev0 })
	rev1 := e.Revision()
	// Written after the directory was picked up: only a watch on the new
	// directory itself sees this.
	write(t, filepath.Join(dir, "sub", "a.rego"), "package crmgate\n\nreasons contains \"b\"\n")
	eventually(t, "a change inside the new directory", func() bool { return e.Revision() != rev1 })
}

func TestWatcherKeepsLastGoodPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		broken string
	}{
		{"syntax error", "package crmgate\n\nallow if {\n"},
		{"compile error", "package crmgate\n\nallow if x == 1\n"},
		{"missing package", "package other\n\nallow := true\n"},
		{"wrong package root", "package crmgate.sub\n\nallow := true\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "crmgate.rego")
			write(t, path, allowAll)
			e, r := startWatch(t, dir)
			good := e.Revision()
			saveAtomically(t, path, tt.broken)
			eventually(t, "the reload failure", func() bool { return r.failures() > 0 })
			if e.Revision() != good {
				t.Fatalf("revision %q after a broken save, want the last good %q", e.Revision(), good)
			}
			d, err := e.Decide(context.Background(), salesInput())
			if err != nil || !d.Allow || d.Revision != good {
				t.Fatalf("decision after a broken save: %+v err=%v, want the old policy's allow", d, err)
			}
			saveAtomically(t, path, allowNone)
			eventually(t, "the fixed policy", func() bool { return e.Revision() != good })
			if d, err := e.Decide(context.Background(), salesInput()); err != nil || d.Allow {
				t.Fatalf("decision after the fix: %+v err=%v, want deny", d, err)
			}
		})
	}
}

// TestWatcherConfigMapSwap follows how Kubernetes updates a mounted
// ConfigMap: the files are links through ..data, and an update swaps
// ..data to a new timestamped directory in one rename. The policy files
// themselves never see an event.
func TestWatcherConfigMapSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "..2026_01", "crmgate.rego"), allowAll)
	must(t, os.Symlink("..2026_01", filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", "crmgate.rego"), filepath.Join(dir, "crmgate.rego")))
	e, _ := startWatch(t, dir)
	before := e.Revision()

	write(t, filepath.Join(dir, "..2026_02", "crmgate.rego"), allowNone)
	must(t, os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	eventually(t, "the swapped policy", func() bool { return e.Revision() != before })
	if d, err := e.Decide(context.Background(), salesInput()); err != nil || d.Allow {
		t.Fatalf("decision after the swap: %+v err=%v, want deny", d, err)
	}
}

func TestWatcherSingleFilePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "crmgate.rego")
	write(t, path, allowAll)
	e, _ := startWatch(t, path)
	before := e.Revision()
	saveAtomically(t, path, allowNone)
	eventually(t, "the saved file", func() bool { return e.Revision() != before })
}

func TestWatcherRefusesSourcesNotOnDisk(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{"crmgate.rego": allowAll})
	if _, err := NewWatcher(e, WatchOptions{}); err == nil {
		t.Fatal("watching an fs.FS source was accepted")
	}
}

func TestWatcherRelevantEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "policy", "crmgate.rego"), allowAll)
	write(t, filepath.Join(dir, "policy", "sub", "x.json"), `{}`)
	write(t, filepath.Join(dir, "single.rego"), allowAll)
	write(t, filepath.Join(dir, "other.rego"), allowAll)
	must(t, os.MkdirAll(filepath.Join(dir, "..data"), 0o755))
	root := filepath.Join(dir, "policy")
	single := filepath.Join(dir, "single.rego")
	e, err := Load(context.Background(), Options{Source: Source{Paths: []string{root, single}}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(e, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	tests := []struct {
		name string
		ev   fsnotify.Event
		want bool
	}{
		{"policy file written", fsnotify.Event{Name: filepath.Join(root, "crmgate.rego"), Op: fsnotify.Write}, true},
		{"policy file created by rename", fsnotify.Event{Name: filepath.Join(root, "crmgate.rego"), Op: fsnotify.Create}, true},
		{"data file in a sub-directory", fsnotify.Event{Name: filepath.Join(root, "sub", "x.json"), Op: fsnotify.Write}, true},
		{"yaml data, upper case", fsnotify.Event{Name: filepath.Join(root, "D.YAML"), Op: fsnotify.Create}, true},
		{"sub-directory removed", fsnotify.Event{Name: filepath.Join(root, "sub"), Op: fsnotify.Remove}, true},
		{"the root itself replaced", fsnotify.Event{Name: root, Op: fsnotify.Create}, true},
		{"chmod only", fsnotify.Event{Name: filepath.Join(root, "crmgate.rego"), Op: fsnotify.Chmod}, false},
		{"vim swap file", fsnotify.Event{Name: filepath.Join(root, ".crmgate.rego.swp"), Op: fsnotify.Write}, false},
		{"backup file", fsnotify.Event{Name: filepath.Join(root, "crmgate.rego~"), Op: fsnotify.Create}, false},
		{"hidden policy file (the loader skips it)", fsnotify.Event{Name: filepath.Join(root, ".x.rego"), Op: fsnotify.Create}, false},
		{"unrelated file", fsnotify.Event{Name: filepath.Join(root, "README.md"), Op: fsnotify.Write}, false},
		{"single file written", fsnotify.Event{Name: single, Op: fsnotify.Write}, true},
		{"file next to the single file", fsnotify.Event{Name: filepath.Join(dir, "other.rego"), Op: fsnotify.Write}, false},
		{"directory swapped in next to the single file", fsnotify.Event{Name: filepath.Join(dir, "..data"), Op: fsnotify.Create}, true},
		{"prefix of the root is not the root", fsnotify.Event{Name: root + "x.rego", Op: fsnotify.Create}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := w.relevant(tt.ev); got != tt.want {
				t.Fatalf("relevant(%v) = %v, want %v", tt.ev, got, tt.want)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
