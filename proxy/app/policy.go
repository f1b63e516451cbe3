package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/bundle"
	"github.com/crmgate/crmgate/proxy/metrics"
)

// policyLifecycle keeps the engine's policy current (file watch, bundle
// polling, admin and SIGHUP reloads) and reports every reload exactly once:
// crmgate_policy_reloads_total, crmgate_policy_revision_info and a log line.
//
// A reload only compiles the new policy; it does not run the policy's own
// _test.rego tests. DESIGN.md has no setting for it, a failing test is a
// review finding rather than a reason to keep an older policy serving, and
// `crmgate check` runs the tests before a policy is shipped.
type policyLifecycle struct {
	engine  *policy.Engine
	metrics *metrics.Metrics
	log     *zap.Logger
	watch   bool
	poller  *bundle.Poller // nil unless policy.bundle.url

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// loadPolicy compiles the configured policy, from the embedded fsys, the
// bundle server or policy.paths, and returns it ready to start.
func loadPolicy(ctx context.Context, cfg config.Policy, fsys fs.FS, client *http.Client, m *metrics.Metrics, log *zap.Logger) (*policyLifecycle, error) {
	l := &policyLifecycle{metrics: m, log: log}
	var err error
	switch {
	case fsys != nil:
		// An embedded policy cannot change while the process runs.
		l.engine, err = policy.Load(ctx, policy.Options{Source: policy.Source{FS: fsys}, Package: cfg.Package})
	case cfg.Bundle.URL != "" && len(cfg.Paths) > 0:
		// Two sources would each overwrite the other's policy on reload.
		return nil, errors.New("policy: set policy.paths or policy.bundle.url, not both")
	case cfg.Bundle.URL != "":
		l.poller, err = bundle.NewPoller(bundle.Options{URL: cfg.Bundle.URL, Token: cfg.Bundle.Token,
			Interval: cfg.Bundle.PollInterval, Client: client})
		if err == nil {
			l.engine, err = l.poller.Load(ctx, cfg.Package)
		}
	default:
		l.watch = cfg.Watch
		l.engine, err = policy.Load(ctx, policy.Options{Source: policy.Source{Paths: cfg.Paths}, Package: cfg.Package})
	}
	if err != nil {
		return nil, err
	}
	m.SetRevision(l.engine.Revision())
	return l, nil
}

// start begins watching or polling; stop ends it.
func (l *policyLifecycle) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	if l.watch {
		w, err := policy.NewWatcher(l.engine, policy.WatchOptions{
			Reloaded: func(err error) { l.report("file change", err) },
			Errors:   func(err error) { l.log.Warn("policy watch", zap.Error(err)) },
		})
		if err != nil {
			cancel()
			return err
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			w.Run(ctx)
			_ = w.Close()
		}()
		// The files may have changed between loading and watching (a
		// ConfigMap updated while the replica started); read them once
		// more, reporting only if that changed anything.
		before := l.engine.Revision()
		if err := l.engine.Reload(ctx); err != nil || l.engine.Revision() != before {
			l.report("file change", err)
		}
	}
	if l.poller != nil {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.poller.Run(ctx, l.engine, func(err error) { l.report("bundle poll", err) })
		}()
	}
	return nil
}

func (l *policyLifecycle) stop() {
	l.stopOnce.Do(func() {
		if l.cancel != nil {
			l.cancel()
		}
		l.wg.Wait()
	})
}

// reload re-reads the policy now: the bundle server (conditionally) or
// the files. It returns the revision serving afterwards.
func (l *policyLifecycle) reload(ctx context.Context, cause string) (string, error) {
	if l.poller != nil {
		changed, err := l.poller.Poll(ctx, l.engine)
		if changed || err != nil {
			l.report(cause, err)
		}
		return l.engine.Revision(), err
	}
	err := l.engine.Reload(ctx)
	l.report(cause, err)
	return l.engine.Revision(), err
}

// report counts and logs one reload. A failure is an error: the policy the
// security team just shipped is not in force.
func (l *policyLifecycle) report(cause string, err error) {
	l.metrics.PolicyReload(err)
	rev := l.engine.Revision()
	if err != nil {
		l.log.Error("policy reload failed; the last good policy keeps serving",
			zap.String("cause", cause), zap.String("revision", rev), zap.Error(err))
		return
	}
	l.metrics.SetRevision(rev)
	l.log.Info("policy reloaded", zap.String("cause", cause), zap.String("revision", rev))
}

// reloadResult is the admin reload endpoint's answer.
type reloadResult struct {
	Revision string `json:"revision"`
	Error    string `json:"error,omitempty"`
}

// adminHandler serves POST /admin/policy/reload: 200 with the revision now
// serving, 422 when the new policy was refused, 502 when the bundle server
// could not be reached; on failure the old revision is reported, since it
// is still the one serving. The admin listener is for operators, so the
// cause is included.
func (l *policyLifecycle) adminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		rev, err := l.reload(ctx, "admin")
		res, status := reloadResult{Revision: rev}, http.StatusOK
		if err != nil {
			res.Error = err.Error()
			status = http.StatusUnprocessableEntity
			var fe *bundle.FetchError
			if errors.As(err, &fe) {
				status = http.StatusBadGateway
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(res)
	})
}

// ReloadPolicy re-reads the policy now, from the bundle server or the
// files, as POST /admin/policy/reload and SIGHUP do. It returns the
// revision serving afterwards, which is the previous one when err is not
// nil.
func (a *App) ReloadPolicy(ctx context.Context) (string, error) {
	return a.lifecycle.reload(ctx, "api")
}

// ReloadOnSignal reloads the policy on every value received from sig until
// ctx ends; serve feeds it SIGHUP. A failed reload is counted and logged
// and the process keeps serving the last good policy.
func (a *App) ReloadOnSignal(ctx context.Context, sig <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sig:
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			_, _ = a.lifecycle.reload(rctx, fmt.Sprintf("signal %v", s))
			cancel()
		}
	}
}
