package metrics

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func knownModules(names ...string) func(string) bool {
	return func(m string) bool {
		for _, n := range names {
			if m == n {
				return true
			}
		}
		return false
	}
}

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, []string{"sales", "admin", "support", "sales", ""}, knownModules("Accounts", "Contacts"))
	return m, reg
}

func exposition(t *testing.T, reg prometheus.Gatherer) []byte {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatalf("encode %s: %v", mf.GetName(), err)
		}
	}
	return buf.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden; got:\n%s", name, got)
	}
}

// TestExpositionGolden pins metric names, help, types, buckets and
// pre-created series: dashboards and alerts in deploy/ depend on them.
func TestExpositionGolden(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.ObserveDecision("Accounts", "read", OutcomeAllow, []string{"sales"}, 40*time.Microsecond)
	m.ObserveDecision("Accounts", "list", OutcomeDeny, nil, 2*time.Millisecond)
	m.ObserveDecision("Contacts", "update", OutcomeStepUp, []string{"admin", "intern"}, 90*time.Microsecond)
	m.ObserveRequest("Accounts", OutcomeAllow, 12*time.Millisecond)
	m.ObserveUpstream("Accounts", http.StatusOK, nil, 9*time.Millisecond)
	m.ObserveUpstream("Contacts", 0, context.DeadlineExceeded, 10*time.Second)
	m.RedactedFields("Accounts", RedactMasked, 3)
	m.RedactedFields("Accounts", RedactHidden, 2)
	m.RecordsFiltered("Accounts", 18, 2)
	m.Authentication(AuthBearer, AuthSuccess)
	m.Authentication(AuthSession, AuthMissing)
	m.StepUp(StepUpBrowser)
	m.SetActiveSessions(7)
	m.PolicyReload(nil)
	m.PolicyReload(errors.New("compile"))
	m.SetRevision("rev-1")
	m.DecisionLogEvents(LogWritten, 5)
	m.DecisionLogEvents(LogDropped, 1)
	m.WriteGuardRejection("Contacts")

	got := exposition(t, reg)
	golden(t, "exposition.golden", got)

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// TestLabelBounding feeds attacker- or bug-controlled values into every
// labelled method and checks that none becomes a label value.
func TestLabelBounding(t *testing.T) {
	evil := []string{"42", "alice@shop.example", "Accounts/../Users", "accounts", "Leads", "\xff\xfe", strings.Repeat("x", 300)}
	m, reg := newTestMetrics(t)
	for _, v := range evil {
		m.ObserveDecision(v, v, v, []string{v}, time.Millisecond)
		m.ObserveRequest(v, v, time.Millisecond)
		m.ObserveUpstream(v, 200, nil, time.Millisecond)
		m.RedactedFields(v, v, 1)
		m.RecordsFiltered(v, 1, 1)
		m.Authentication(v, v)
		m.StepUp(v)
		m.DecisionLogEvents(v, 1)
		m.WriteGuardRejection(v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	allowed := map[string]bool{LabelOther: true, LabelNone: true}
	for _, set := range [][]string{actions, outcomes, upstreamKinds, redactHows, authMethods, authResults, stepUpMethods, logResults, reloadResults, upstreamCodes, {"Accounts", "Contacts", "sales", "admin", "support"}} {
		for _, v := range set {
			allowed[v] = true
		}
	}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				if !allowed[lp.GetValue()] {
					t.Errorf("%s{%s=%q}: unbounded label value", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	// Every evil value must have landed in the catch-all series.
	if got := testutil.ToFloat64(m.decisions.WithLabelValues(LabelOther, LabelOther, OutcomeError, LabelOther)); got != float64(len(evil)) {
		t.Errorf("decisions{other,other,error,other} = %v, want %d", got, len(evil))
	}
	if got := testutil.ToFloat64(m.logEvents[LogFailed]); got != float64(len(evil)) {
		t.Errorf("unknown decision-log results counted as failed = %v, want %d", got, len(evil))
	}
}

func TestLabelFunctions(t *testing.T) {
	m, _ := newTestMetrics(t)
	roleCases := []struct {
		roles []string
		want  string
	}{
		{nil, LabelNone},
		{[]string{}, LabelNone},
		{[]string{"intern"}, LabelOther},
		{[]string{"sales"}, "sales"},
		{[]string{"support", "intern", "admin"}, "admin"},
		{[]string{"sales", "support"}, "sales"},
		{[]string{""}, LabelOther},
		{[]string{"Admin"}, LabelOther},
	}
	for _, tc := range roleCases {
		t.Run(fmt.Sprintf("role/%q", tc.roles), func(t *testing.T) {
			if got := m.RoleLabel(tc.roles); got != tc.want {
				t.Errorf("RoleLabel(%q) = %q, want %q", tc.roles, got, tc.want)
			}
		})
	}
	moduleCases := map[string]string{"": LabelNone, "Accounts": "Accounts", "accounts": LabelOther, "Users": LabelOther}
	for in, want := range moduleCases {
		t.Run("module/"+in, func(t *testing.T) {
			if got := m.ModuleLabel(in); got != want {
				t.Errorf("ModuleLabel(%q) = %q, want %q", in, got, want)
			}
		})
	}
	actionCases := map[string]string{"": LabelNone, "read": "read", "relate": "relate", "READ": LabelOther, "merge": LabelOther}
	for in, want := range actionCases {
		t.Run("action/"+in, func(t *testing.T) {
			if got := ActionLabel(in); got != want {
				t.Errorf("ActionLabel(%q) = %q, want %q", in, got, want)
			}
		})
	}
	t.Run("nil modules predicate knows nothing", func(t *testing.T) {
		m := New(prometheus.NewRegistry(), nil, nil)
		if got := m.ModuleLabel("Accounts"); got != LabelOther {
			t.Errorf("ModuleLabel = %q, want other", got)
		}
		if got := m.RoleLabel([]string{"admin"}); got != LabelOther {
			t.Errorf("RoleLabel = %q, want other", got)
		}
	})
}

func TestSetRevisionKeepsOneSeries(t *testing.T) {
	m, reg := newTestMetrics(t)
	steps := []struct{ set, want string }{
		{"rev-1", "rev-1"},
		{"rev-2", "rev-2"},
		{"rev-2", "rev-2"},
		{"", LabelNone},
		{"rev-1", "rev-1"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
	}
	for i, s := range steps {
		t.Run(fmt.Sprintf("%d/%s", i, s.set), func(t *testing.T) {
			m.SetRevision(s.set)
			if n := testutil.CollectAndCount(m.revisionInfo); n != 1 {
				t.Fatalf("revision series = %d, want exactly 1", n)
			}
			if got := testutil.ToFloat64(m.revisionInfo.WithLabelValues(s.want)); got != 1 {
				t.Errorf("crmgate_policy_revision_info{revision=%q} = %v, want 1", s.want, got)
			}
		})
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestUpstreamErrorKind(t *testing.T) {
	dialRefused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}
	readReset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	readTimeout := &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"deadline", context.DeadlineExceeded, UpstreamTimeout},
		{"wrapped deadline", fmt.Errorf("proxy: %w", context.DeadlineExceeded), UpstreamTimeout},
		{"net timeout after connect", readTimeout, UpstreamTimeout},
		{"response header timeout", timeoutErr{}, UpstreamTimeout},
		{"dial refused", dialRefused, UpstreamConnect},
		{"wrapped dial", fmt.Errorf("upstream: %w", dialRefused), UpstreamConnect},
		{"dial timeout is connect", dialTimeout, UpstreamConnect},
		{"canceled", context.Canceled, UpstreamCanceled},
		{"wrapped canceled", fmt.Errorf("round trip: %w", context.Canceled), UpstreamCanceled},
		{"reset mid exchange", readReset, UpstreamProtocol},
		{"unexpected EOF", io.ErrUnexpectedEOF, UpstreamProtocol},
		{"plain", errors.New("malformed HTTP response"), UpstreamProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := UpstreamErrorKind(tc.err); got != tc.want {
				t.Errorf("UpstreamErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

// TestUpstreamRealErrors classifies errors produced by a real
// http.Transport, not hand-built ones, so a change in net/http's error
// wrapping shows up here.
func TestUpstreamRealErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			// Read the request, never answer: the client times out.
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()

	cases := []struct {
		name   string
		addr   string
		ctx    func() (context.Context, context.CancelFunc)
		client *http.Client
		want   string
	}{
		{"refused", closedAddr, func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			&http.Client{}, UpstreamConnect},
		{"header timeout", hang.Addr().String(), func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			&http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}}, UpstreamTimeout},
		{"context deadline", hang.Addr().String(), func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, &http.Client{}, UpstreamTimeout},
		{"client canceled", hang.Addr().String(), func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, &http.Client{}, UpstreamCanceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+tc.addr+"/", nil)
			// Use the transport directly, as httputil.ReverseProxy does,
			// rather than http.Client, which rewraps errors in *url.Error.
			rt := tc.client.Transport
			if rt == nil {
				rt = &http.Transport{}
			}
			resp, err := rt.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("round trip succeeded")
			}
			if got := UpstreamErrorKind(err); got != tc.want {
				t.Errorf("UpstreamErrorKind(%v) = %q, want %q", err, got, tc.want)
			}
		})
	}
}

func TestObserveUpstreamCodes(t *testing.T) {
	cases := []struct {
		status int
		err    error
		code   string
		kind   string
	}{
		{200, nil, "2xx", ""},
		{204, nil, "2xx", ""},
		{302, nil, "3xx", ""},
		{404, nil, "4xx", ""},
		{503, nil, "5xx", ""},
		{599, nil, "5xx", ""},
		{101, nil, "error", ""},
		{0, nil, "error", ""},
		{600, nil, "error", ""},
		{0, context.Canceled, "error", UpstreamCanceled},
		{200, errors.New("body read"), "error", UpstreamProtocol},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d/%v", tc.status, tc.err), func(t *testing.T) {
			m, _ := newTestMetrics(t)
			m.ObserveUpstream("Accounts", tc.status, tc.err, time.Millisecond)
			if n := testutil.CollectAndCount(m.upstreamDuration); n != 1 {
				t.Fatalf("upstream series = %d, want 1", n)
			}
			h := m.upstreamDuration.WithLabelValues("Accounts", tc.code).(prometheus.Histogram)
			if n := testutil.CollectAndCount(h); n != 1 {
				t.Fatalf("no series for code %q", tc.code)
			}
			for _, k := range upstreamKinds {
				want := 0.0
				if k == tc.kind {
					want = 1
				}
				if got := testutil.ToFloat64(m.upstreamErrors[k]); got != want {
					t.Errorf("upstream_errors{kind=%q} = %v, want %v", k, got, want)
				}
			}
		})
	}
}

func TestNilMetricsIsNoop(t *testing.T) {
	var m *Metrics
	m.ObserveDecision("Accounts", "read", OutcomeAllow, nil, time.Millisecond)
	m.ObserveRequest("Accounts", OutcomeAllow, time.Millisecond)
	m.ObserveUpstream("Accounts", 200, nil, time.Millisecond)
	m.RedactedFields("Accounts", RedactHidden, 1)
	m.RecordsFiltered("Accounts", 1, 1)
	m.Authentication(AuthBearer, AuthSuccess)
	m.StepUp(StepUpAPI)
	m.SetActiveSessions(1)
	m.AddActiveSessions(1)
	m.PolicyReload(nil)
	m.SetRevision("r")
	m.DecisionLogEvents(LogWritten, 1)
	m.WriteGuardRejection("Accounts")
	if got := m.ModuleLabel("Accounts"); got != LabelOther {
		t.Errorf("nil ModuleLabel = %q, want other", got)
	}
}

func TestDuplicateRegistrationPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, nil, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("second New on the same registry did not panic")
		}
	}()
	New(reg, nil, nil)
}

func BenchmarkObserveDecision(b *testing.B) {
	m := New(prometheus.NewRegistry(), []string{"admin", "sales", "support"}, knownModules("Accounts", "Contacts"))
	roles := []string{"support", "sales"}
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveDecision("Accounts", "read", OutcomeAllow, roles, 30*time.Microsecond)
	}
}
