package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/report"
	"github.com/crmgate/crmgate/proxy/profile"
)

// BuildProfile returns the CRM profile the configuration selects: a
// built-in one extended by crm.routes and crm.modules, or the generic one.
func BuildProfile(c config.CRM) (*profile.Profile, error) { return buildProfile(c) }

// LoadPolicy loads the policy the configuration names (policy.paths,
// policy.package), or the one in paths when given (an older copy, for a
// diff).
func LoadPolicy(ctx context.Context, cfg *config.Config, paths ...string) (*policy.Engine, error) {
	if len(paths) == 0 {
		paths = cfg.Policy.Paths
	}
	return policy.Load(ctx, policy.Options{Source: policy.Source{Paths: paths}, Package: cfg.Policy.Package})
}

// ReportRoles are the roles a report covers: the keys of identity.roles,
// metrics.roles and extra, sorted and without duplicates.
func ReportRoles(cfg *config.Config, extra ...string) []string {
	roles := slices.Collect(maps.Keys(cfg.Identity.Roles))
	roles = append(roles, cfg.Metrics.Roles...)
	roles = append(roles, extra...)
	slices.Sort(roles)
	return slices.Compact(slices.DeleteFunc(roles, func(r string) bool { return r == "" }))
}

// AccessReport evaluates engine for the configuration's roles (plus extra)
// over every module of the profile, from remoteIP ("" sends no address).
func AccessReport(ctx context.Context, cfg *config.Config, engine report.Decider, prof *profile.Profile, samples report.Samples, remoteIP string, extra ...string) (*report.Access, error) {
	return report.BuildAccess(ctx, report.AccessOptions{
		Engine:   engine,
		Roles:    ReportRoles(cfg, extra...),
		Modules:  prof.Modules,
		Samples:  samples,
		Profile:  prof.Name,
		RemoteIP: remoteIP,
	})
}

// ErrNoLastSeen means the configured session store cannot tell when users
// were last seen from outside the serving process.
var ErrNoLastSeen = errors.New("session.store is memory: last-seen times live only inside the running crmgate process; " +
	"ask its admin listener (GET /admin/reports/dormant?days=N) or use session.store redis")

// DormantReport opens the configured session store from outside the
// serving process and lists users not seen for days days.
func DormantReport(ctx context.Context, cfg *config.Config, days int, now time.Time) (*report.Dormant, error) {
	store, err := OpenStore(ctx, cfg.Session, true, nil)
	if errors.Is(err, ErrMemoryStore) {
		return nil, fmt.Errorf("dormant report: %w", ErrNoLastSeen)
	}
	if err != nil {
		return nil, fmt.Errorf("dormant report: %w", err)
	}
	defer store.Close()
	return report.BuildDormant(ctx, store, days, now)
}

// reportHandlers are the admin listener's report endpoints. lastSeen is the
// session store of this process, nil without browser sessions.
func reportHandlers(cfg *config.Config, engine report.Decider, prof *profile.Profile, lastSeen report.LastSeener, now func() time.Time, log *zap.Logger) map[string]http.Handler {
	r := &reports{cfg: cfg, engine: engine, profile: prof, lastSeen: lastSeen, now: now, log: log}
	return map[string]http.Handler{
		"GET /admin/reports/access":  http.HandlerFunc(r.access),
		"GET /admin/reports/dormant": http.HandlerFunc(r.dormant),
	}
}

// withReports adds the report endpoints to the admin endpoints in extra.
func withReports(extra map[string]http.Handler, cfg *config.Config, engine report.Decider, prof *profile.Profile, sess *sessions, log *zap.Logger) map[string]http.Handler {
	var seen report.LastSeener
	if sess != nil {
		seen = sess.store
	}
	out := maps.Clone(extra)
	if out == nil {
		out = map[string]http.Handler{}
	}
	maps.Copy(out, reportHandlers(cfg, engine, prof, seen, time.Now, log.Named("reports")))
	return out
}

type reports struct {
	cfg      *config.Config
	engine   report.Decider
	profile  *profile.Profile
	lastSeen report.LastSeener
	now      func() time.Time
	log      *zap.Logger

	// mu serialises building; last (for lastIP) is reused while the
	// revision holds, as a report costs a few thousand evaluations.
	mu     sync.Mutex
	last   *report.Access
	lastIP string
}

func (r *reports) accessReport(ctx context.Context, remoteIP string) (*report.Access, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last != nil && r.last.Revision == r.engine.Revision() && r.lastIP == remoteIP {
		return r.last, nil
	}
	a, err := AccessReport(ctx, r.cfg, r.engine, r.profile, nil, remoteIP)
	if err != nil {
		return nil, err
	}
	r.last, r.lastIP = a, remoteIP
	return a, nil
}

// access answers GET /admin/reports/access?format=markdown|csv|html|json
// [&remote_ip=IP]: remote_ip is the client address every evaluation
// claims, as report access --remote-ip; a policy that admits some roles
// from some networks only (the reference policy's admins, from the
// office) shows them denied without it.
func (r *reports) access(w http.ResponseWriter, req *http.Request) {
	format := req.URL.Query().Get("format")
	remoteIP := req.URL.Query().Get("remote_ip")
	if remoteIP != "" {
		ip, err := netip.ParseAddr(remoteIP)
		if err != nil {
			adminProblem(w, http.StatusBadRequest, "Bad remote_ip", "remote_ip must be an IP address.")
			return
		}
		remoteIP = ip.String()
	}
	var f report.Format
	if format != "json" {
		var err error
		if f, err = report.ParseFormat(format); err != nil {
			adminProblem(w, http.StatusBadRequest, "Bad format", "format must be markdown, csv, html or json.")
			return
		}
	}
	a, err := r.accessReport(req.Context(), remoteIP)
	if err != nil {
		r.log.Error("access report", zap.Error(err))
		adminProblem(w, http.StatusInternalServerError, "Report failed", err.Error())
		return
	}
	if format == "json" {
		writeJSON(w, a)
		return
	}
	w.Header().Set("Content-Type", f.ContentType())
	w.Header().Set("Cache-Control", "no-store")
	if err := a.Write(w, f); err != nil {
		r.log.Error("write access report", zap.Error(err))
	}
}

// dormant answers GET /admin/reports/dormant?days=N as JSON (or
// format=markdown|csv|html).
func (r *reports) dormant(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	days, err := strconv.Atoi(q.Get("days"))
	if err != nil || days < 1 || days > report.MaxDormantDays {
		adminProblem(w, http.StatusBadRequest, "Bad days", fmt.Sprintf("days must be a whole number from 1 to %d.", report.MaxDormantDays))
		return
	}
	format := q.Get("format")
	var f report.Format
	if format != "" && format != "json" {
		if f, err = report.ParseFormat(format); err != nil {
			adminProblem(w, http.StatusBadRequest, "Bad format", "format must be json, markdown, csv or html.")
			return
		}
	}
	if r.lastSeen == nil {
		adminProblem(w, http.StatusNotFound, "No session store",
			"Browser login (identity.oidc) is not configured, so crmgate records no last-seen times.")
		return
	}
	d, err := report.BuildDormant(req.Context(), r.lastSeen, days, r.now())
	if err != nil {
		r.log.Error("dormant report", zap.Error(err))
		adminProblem(w, http.StatusServiceUnavailable, "Session store unavailable", err.Error())
		return
	}
	if f == "" {
		writeJSON(w, d)
		return
	}
	w.Header().Set("Content-Type", f.ContentType())
	w.Header().Set("Cache-Control", "no-store")
	if err := d.Write(w, f); err != nil {
		r.log.Error("write dormant report", zap.Error(err))
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// adminProblem answers an admin caller (an operator, behind the admin
// token) with a problem document; details may name internal causes.
func adminProblem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "urn:crmgate:problem:admin-report", "title": title, "status": status, "detail": detail,
	})
}
