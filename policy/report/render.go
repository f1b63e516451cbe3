package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"
)

// Format is an output format of the reports.
type Format string

// Output formats.
const (
	Markdown Format = "markdown"
	CSV      Format = "csv"
	HTML     Format = "html"
)

// ParseFormat accepts "markdown" (or "md"), "csv" and "html".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "markdown", "md", "":
		return Markdown, nil
	case "csv":
		return CSV, nil
	case "html":
		return HTML, nil
	}
	return "", fmt.Errorf("report format %q: want markdown, csv or html", s)
}

// ContentType is the media type of a format, for HTTP answers.
func (f Format) ContentType() string {
	switch f {
	case CSV:
		return "text/csv; charset=utf-8"
	case HTML:
		return "text/html; charset=utf-8"
	}
	return "text/markdown; charset=utf-8"
}

// Write renders the access report in format f.
func (a *Access) Write(w io.Writer, f Format) error {
	return render(w, f, "write access report", a.markdown, a.csv, func(w io.Writer) error { return accessHTML.Execute(w, a.view()) })
}

// render writes a report in format f with the writer for that format;
// every report (access, diff, dormant) dispatches the same way.
func render(w io.Writer, f Format, what string, markdown, csv, html func(io.Writer) error) error {
	var err error
	switch f {
	case Markdown:
		err = markdown(w)
	case CSV:
		err = csv(w)
	case HTML:
		err = html(w)
	default:
		err = fmt.Errorf("unknown format %q", f)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// row is one role × module line as every format prints it.
type row struct {
	Module, Role string
	Cells        []Cell
	Hidden       string
	Masked       string
	ReadOnly     string
	Visible      string
	HasFields    bool
}

type sampleRow struct {
	Role, ID, Teams, Groups, Attributes string
}

type accessView struct {
	*Access
	Rows       []row
	SampleRows []sampleRow
}

func (a *Access) view() accessView {
	v := accessView{Access: a}
	for _, m := range a.Modules {
		for _, r := range m.Roles {
			v.Rows = append(v.Rows, row{
				Module: m.Module, Role: r.Role, Cells: r.Cells,
				Hidden:    strings.Join(r.Fields.Hidden, ", "),
				Masked:    maskedText(r.Fields.Masked),
				ReadOnly:  strings.Join(r.Fields.ReadOnly, ", "),
				Visible:   visibleText(r.Fields),
				HasFields: !r.Fields.empty(),
			})
		}
	}
	for _, role := range a.Roles {
		s := a.Samples[role]
		v.SampleRows = append(v.SampleRows, sampleRow{
			Role: role, ID: s.ID,
			Teams:      strings.Join(s.Teams, ", "),
			Groups:     strings.Join(s.Groups, ", "),
			Attributes: attributesText(s.Attributes),
		})
	}
	return v
}

func maskedText(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, f := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, f+" ("+m[f]+")")
	}
	return strings.Join(parts, ", ")
}

// visibleText is "" when no allow-list applies; an empty allow-list lets
// only the record id through.
func visibleText(f Fields) string {
	switch {
	case !f.VisibleDefined:
		return ""
	case len(f.Visible) == 0:
		return "(id only)"
	}
	return strings.Join(f.Visible, ", ")
}

// attributesText is the attributes as JSON: keys sorted, values exact.
func attributesText(attrs map[string]any) string {
	if len(attrs) == 0 {
		return ""
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		return fmt.Sprintf("%v", attrs)
	}
	return string(b)
}

// mdCell escapes what would break a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

func (a *Access) markdown(out io.Writer) error {
	w := bufio.NewWriter(out)
	v := a.view()
	fmt.Fprintf(w, "# Access report\n\n")
	fmt.Fprintf(w, "- Policy revision: `%s`\n", a.Revision)
	if a.Profile != "" {
		fmt.Fprintf(w, "- CRM profile: %s\n", mdCell(a.Profile))
	}
	fmt.Fprintf(w, "- Roles: %s\n", mdCell(strings.Join(a.Roles, ", ")))
	fmt.Fprintf(w, "- Made by evaluating the policy for one sample subject per role (below), for every module and action, without and with MFA.\n")
	fmt.Fprintf(w, "- Cells: allow; deny; MFA = allowed only with MFA (without it the user is stepped up).\n")
	fmt.Fprintf(w, "- Which records of a module a role reaches is decided per record (record_allow) and is not shown here.\n")
	fmt.Fprintf(w, "- Modules in which no role may do anything: %d (not listed).\n", a.Omitted)

	fmt.Fprintf(w, "\n## Actions\n\n| Module | Role |")
	for _, act := range a.Actions {
		fmt.Fprintf(w, " %s |", mdCell(act))
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---|", len(a.Actions)))
	for _, r := range v.Rows {
		fmt.Fprintf(w, "| %s | %s |", mdCell(r.Module), mdCell(r.Role))
		for _, c := range r.Cells {
			fmt.Fprintf(w, " %s |", c)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "\n## Field rules\n\nHidden, masked and allow-listed fields as read (read, else list, else export); read-only fields as written (update, else create).\n\n")
	fmt.Fprintf(w, "| Module | Role | Hidden | Masked | Read-only | Only visible |\n|---|---|---|---|---|---|\n")
	for _, r := range v.Rows {
		if !r.HasFields {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", mdCell(r.Module), mdCell(r.Role),
			mdCell(r.Hidden), mdCell(r.Masked), mdCell(r.ReadOnly), mdCell(r.Visible))
	}

	fmt.Fprintf(w, "\n## Sample subjects\n\n| Role | Subject id | Teams | Groups | Attributes |\n|---|---|---|---|---|\n")
	for _, s := range v.SampleRows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", mdCell(s.Role), mdCell(s.ID), mdCell(s.Teams), mdCell(s.Groups), mdCell(s.Attributes))
	}
	return w.Flush()
}

func (a *Access) csv(out io.Writer) error {
	w := csv.NewWriter(out)
	header := append([]string{"module", "role"}, a.Actions...)
	header = append(header, "hidden", "masked", "readonly", "visible")
	if err := w.Write(header); err != nil {
		return err
	}
	for _, r := range a.view().Rows {
		rec := []string{r.Module, r.Role}
		for _, c := range r.Cells {
			rec = append(rec, c.String())
		}
		rec = append(rec, r.Hidden, r.Masked, r.ReadOnly, r.Visible)
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

const pageStyle = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.allow{background:#e3f5e1}td.deny{color:#999}td.MFA{background:#fff4cc}td.no-MFA{background:#fde2e2}
code{background:#f4f4f4;padding:0 .2em}.plus{color:#1a7f37}.minus{color:#cf222e}.change{color:#9a6700}`

var accessHTML = template.Must(template.New("access").Funcs(template.FuncMap{
	"cellClass": func(c Cell) string { return strings.Fields(c.String())[0] },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>crmgate access report</title>
<style>` + pageStyle + `</style></head><body>
<h1>Access report</h1>
<ul>
<li>Policy revision: <code>{{.Revision}}</code></li>
{{if .Profile}}<li>CRM profile: {{.Profile}}</li>{{end}}
<li>Roles: {{range $i, $r := .Roles}}{{if $i}}, {{end}}{{$r}}{{end}}</li>
<li>Made by evaluating the policy for one sample subject per role (below), for every module and action, without and with MFA.</li>
<li>Cells: allow; deny; MFA = allowed only with MFA (without it the user is stepped up).</li>
<li>Which records of a module a role reaches is decided per record (record_allow) and is not shown here.</li>
<li>Modules in which no role may do anything: {{.Omitted}} (not listed).</li>
</ul>
<h2>Actions</h2>
<table id="actions"><thead><tr><th>Module</th><th>Role</th>{{range .Actions}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr><td>{{.Module}}</td><td>{{.Role}}</td>{{range .Cells}}<td class="{{cellClass .}}">{{.}}</td>{{end}}</tr>
{{end}}</tbody></table>
<h2>Field rules</h2>
<p>Hidden, masked and allow-listed fields as read (read, else list, else export); read-only fields as written (update, else create).</p>
<table id="fields"><thead><tr><th>Module</th><th>Role</th><th>Hidden</th><th>Masked</th><th>Read-only</th><th>Only visible</th></tr></thead><tbody>
{{range .Rows}}{{if .HasFields}}<tr><td>{{.Module}}</td><td>{{.Role}}</td><td>{{.Hidden}}</td><td>{{.Masked}}</td><td>{{.ReadOnly}}</td><td>{{.Visible}}</td></tr>
{{end}}{{end}}</tbody></table>
<h2>Sample subjects</h2>
<table id="samples"><thead><tr><th>Role</th><th>Subject id</th><th>Teams</th><th>Groups</th><th>Attributes</th></tr></thead><tbody>
{{range .SampleRows}}<tr><td>{{.Role}}</td><td>{{.ID}}</td><td>{{.Teams}}</td><td>{{.Groups}}</td><td><code>{{.Attributes}}</code></td></tr>
{{end}}</tbody></table>
</body></html>
`))
