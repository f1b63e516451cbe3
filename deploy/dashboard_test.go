package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// dashboard is the part of a Grafana dashboard model the tests check.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Datasource *datasourceRef `json:"datasource"`
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, dashboardPath), &d); err != nil {
		t.Fatalf("parse %s: %v", dashboardPath, err)
	}
	return d
}

// TestDashboardStructure: a dashboard Grafana imports without edits on
// any Prometheus data source: recent schema, a data-source variable every
// query goes through, and panels that each query something.
func TestDashboardStructure(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want >= 36", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q and title %q must be set (links and provisioning use the uid)", d.UID, d.Title)
	}
	var dsVar string
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = v.Name
		}
	}
	if dsVar == "" {
		t.Fatal("no datasource variable of type prometheus")
	}
	wantUID := "${" + dsVar + "}"
	ids := map[int]string{}
	var queryPanels int
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...) // collapsed rows keep their panels inside
	}
	for _, p := range all {
		t.Run(fmt.Sprintf("%d %s", p.ID, p.Title), func(t *testing.T) {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panel id %d also used by %q", p.ID, prev)
			}
			ids[p.ID] = p.Title
			if p.Title == "" {
				t.Error("no title")
			}
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("gridPos %+v outside the 24-column grid", g)
			}
			if p.Type == "row" {
				return
			}
			queryPanels++
			if p.Datasource == nil || p.Datasource.UID != wantUID || p.Datasource.Type != "prometheus" {
				t.Errorf("panel datasource %+v, want prometheus %s", p.Datasource, wantUID)
			}
			if len(p.Targets) == 0 {
				t.Fatal("no targets")
			}
			refs := map[string]bool{}
			for i, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("target %d has no expr", i)
				}
				if tg.Datasource == nil || tg.Datasource.UID != wantUID {
					t.Errorf("target %d datasource %+v, want %s", i, tg.Datasource, wantUID)
				}
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("target %d refId %q empty or repeated", i, tg.RefID)
				}
				refs[tg.RefID] = true
			}
		})
	}
	if queryPanels < 15 {
		t.Errorf("%d query panels; the dashboard is missing sections", queryPanels)
	}
}

// grafanaToPromQL replaces Grafana's macros and variables with values
// Prometheus accepts, so the expressions can be parsed by promtool.
var grafanaToPromQL = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"$job", ".*", "$instance", ".*",
)

// TestDashboardQueriesParse hands every dashboard expression to promtool
// (as recording rules), which parses them with Prometheus's own parser.
func TestDashboardQueriesParse(t *testing.T) {
	t.Parallel()
	promtool := requireTool(t, "promtool")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, r := range dashboardExprs(t) {
		if strings.HasPrefix(r.expr, "label_values(") {
			// A Grafana templating function, not PromQL: parse its selector.
			inner := strings.TrimSuffix(strings.TrimPrefix(r.expr, "label_values("), ")")
			r.expr = strings.TrimSpace(inner[:strings.LastIndex(inner, ",")])
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:expr%d", i), Expr: grafanaToPromQL.Replace(r.expr)})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// promtool must really have parsed them: a broken expression fails.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n- name: x\n  rules:\n  - record: x:y\n    expr: sum by (le (rate(crmgate_decisions_total[5m]))\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", bad).CombinedOutput(); err == nil {
		t.Fatalf("promtool accepted a broken expression:\n%s", out)
	}
}

// TestAlertRulesStructure: every alert routes (severity), explains itself
// (summary, description) and has a unique name.
func TestAlertRulesStructure(t *testing.T) {
	t.Parallel()
	rf := loadRules(t)
	names := map[string]bool{}
	var alerts int
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			t.Run(r.Alert, func(t *testing.T) {
				if names[r.Alert] {
					t.Error("alert name used twice")
				}
				names[r.Alert] = true
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("severity %q, want warning or critical", s)
				}
				for _, a := range []string{"summary", "description"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						t.Errorf("annotation %s missing", a)
					}
				}
			})
		}
	}
	for _, want := range []string{
		"CrmgateDenySpike", "CrmgateAuthFailureSpike", "CrmgatePolicyReloadFailed",
		"CrmgateDecisionLogLoss", "CrmgateUpstreamErrors", "CrmgateUpstream5xx",
		"CrmgateHighRequestLatency", "CrmgateNoPolicyRevision", "CrmgateInstanceDown",
	} {
		if !names[want] {
			t.Errorf("alert %s missing", want)
		}
	}
}
