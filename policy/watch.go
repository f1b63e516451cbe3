package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultWatchDebounce is how long policy files must stay quiet before a
// watched Engine reloads: long enough for an editor's write-rename save or
// a `cp -r` of a policy tree to finish, short enough to feel immediate.
const DefaultWatchDebounce = 250 * time.Millisecond

// WatchOptions configure NewWatcher.
type WatchOptions struct {
	// Debounce is how long after the last change the Engine reloads;
	// DefaultWatchDebounce when zero.
	Debounce time.Duration
	// MaxDelay bounds how long a stream of changes can put a reload off;
	// 8 × Debounce when zero.
	MaxDelay time.Duration
	// Reloaded, when set, is called on the watcher's goroutine after every
	// reload a change caused, with Reload's error: nil when the files'
	// revision is serving, else the cause, while the previous revision
	// keeps serving.
	Reloaded func(err error)
	// Errors, when set, receives problems that do not stop the watch, such
	// as a directory that could not be watched.
	Errors func(err error)
}

// Watcher reloads an Engine when the files of its Source change. It watches
// every directory of the Source's paths recursively, including directories
// created later, and the parent of each path, so a path that is replaced
// whole (an editor's rename-over save, a Kubernetes ConfigMap's symlink swap)
// is noticed too. Reloads are validated like any other: a broken policy is
// reported to Reloaded and the previous revision keeps serving.
type Watcher struct {
	engine *Engine
	opts   WatchOptions
	fsw    *fsnotify.Watcher
	roots  []string
	// watched is the set of directories currently added to fsw; only the
	// Run goroutine (and NewWatcher before it) touches it.
	watched map[string]bool
	// rootIsDir remembers each root's kind from the last sync, for events
	// about a root that no longer exists.
	rootIsDir map[string]bool
	closeOnce sync.Once
	done      chan struct{}
}

// NewWatcher starts watching the on-disk paths of e's Source; Run then
// reloads e on changes. It fails when e's Source is not on disk (a file
// system such as the embedded policy, or a bundle) or a path cannot be
// watched.
func NewWatcher(e *Engine, opts WatchOptions) (*Watcher, error) {
	e.reload.Lock()
	src := e.opts.Source
	e.reload.Unlock()
	if src.FS != nil || src.files != nil || len(src.Paths) == 0 {
		return nil, errors.New("watch policy: only policy paths on disk can be watched")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultWatchDebounce
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 8 * opts.Debounce
	}
	w := &Watcher{engine: e, opts: opts, watched: map[string]bool{}, rootIsDir: map[string]bool{}, done: make(chan struct{})}
	for _, p := range src.Paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch policy: %w", err)
		}
		w.roots = append(w.roots, abs)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch policy: %w", err)
	}
	w.fsw = fsw
	if err := w.sync(); err != nil {
		_ = fsw.Close()
		return nil, fmt.Errorf("watch policy: %w", err)
	}
	return w, nil
}

// Run reloads the Engine after changes until ctx ends or Close is called.
func (w *Watcher) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	defer timer.Stop()
	var first time.Time // start of the pending burst; zero when none
	schedule := func() {
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		wait := min(w.opts.Debounce, first.Add(w.opts.MaxDelay).Sub(now))
		timer.Reset(max(wait, 0))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.done:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				schedule()
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// A lost event may have been any change: check everything.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				schedule()
			}
			w.report(fmt.Errorf("watch policy: %w", err))
		case <-timer.C:
			first = time.Time{}
			// New directories are watched before the files are read, so a
			// file written into one after this read is still noticed.
			if err := w.sync(); err != nil {
				w.report(fmt.Errorf("watch policy: %w", err))
			}
			err := w.engine.Reload(ctx)
			if w.opts.Reloaded != nil && ctx.Err() == nil {
				w.opts.Reloaded(err)
			}
		}
	}
}

// Close stops the watch; Run returns.
func (w *Watcher) Close() error {
	var err error
	w.closeOnce.Do(func() {
		close(w.done)
		err = w.fsw.Close()
	})
	return err
}

func (w *Watcher) report(err error) {
	if w.opts.Errors != nil {
		w.opts.Errors(err)
	}
}

// sync makes the watched set every directory the Source reads plus each
// root's parent. It fails only when no root or parent can be watched at all.
func (w *Watcher) sync() error {
	want := map[string]bool{}
	for _, root := range w.roots {
		want[filepath.Dir(root)] = true
		info, err := os.Stat(root)
		if err != nil {
			// Gone for now; the parent's watch sees it come back.
			continue
		}
		w.rootIsDir[root] = info.IsDir()
		if !info.IsDir() {
			continue
		}
		want[root] = true
		// Mirrors the loader: dot directories are skipped and symlinked
		// directories are not followed, so neither is watched.
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if p != root && d.IsDir() {
				if strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				want[p] = true
			}
			return nil
		})
	}
	var errs []error
	for dir := range want {
		if w.watched[dir] {
			continue
		}
		if err := w.fsw.Add(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		w.watched[dir] = true
	}
	for dir := range w.watched {
		if !want[dir] {
			_ = w.fsw.Remove(dir)
			delete(w.watched, dir)
		}
	}
	if len(w.watched) == 0 {
		return errors.Join(append(errs, errors.New("no policy directory could be watched"))...)
	}
	for _, err := range errs {
		w.report(err)
	}
	return nil
}

// relevant tells the events that can change the policy from the noise of
// editors' swap files and unrelated files next to a watched one.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	for _, root := range w.roots {
		if name == root {
			return true
		}
		isDir, known := w.rootIsDir[root]
		if known && !isDir {
			// A single file: only it, or a directory swapped in next to it
			// (a ConfigMap's ..data link that the file points through).
			if filepath.Dir(name) == filepath.Dir(root) && w.isDir(name) {
				return true
			}
			continue
		}
		rel, ok := strings.CutPrefix(name, root+string(filepath.Separator))
		if !ok {
			continue
		}
		base := filepath.Base(rel)
		if w.isDir(name) {
			return true
		}
		if !strings.HasPrefix(base, ".") && (isPolicyFile(base) || isDataFile(base)) {
			return true
		}
	}
	return false
}

// isDir reports whether name is, or (when it is gone) was, a directory.
func (w *Watcher) isDir(name string) bool {
	if w.watched[name] {
		return true
	}
	info, err := os.Stat(name)
	return err == nil && info.IsDir()
}
