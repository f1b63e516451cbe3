package report

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"
)

// Sign says which way a change goes.
type Sign string

// Signs of a change.
const (
	// Grant: someone may now do or see more.
	Grant Sign = "+"
	// Revoke: someone may now do or see less.
	Revoke Sign = "−"
	// Alter: neither purely more nor less (a mask style changed, or a
	// cell moved between "MFA" and "no-MFA only").
	Alter Sign = "~"
)

// Change is one difference between two access reports.
type Change struct {
	Sign   Sign   `json:"sign"`
	Module string `json:"module"`
	Role   string `json:"role"`
	// Action is set for a changed cell, Field for a changed field rule.
	Action string `json:"action,omitempty"`
	Field  string `json:"field,omitempty"`
	// Text says what changed, e.g. "delete: deny → allow" or
	// "cost no longer hidden".
	Text string `json:"text"`
}

// Diff is what a policy change grants or removes.
type Diff struct {
	OldRevision string   `json:"old_revision"`
	NewRevision string   `json:"new_revision"`
	Changes     []Change `json:"changes"`
}

// CompareAccess lists the differences from old to new, which must have been
// built with the same roles, modules, actions and samples. Cells are
// compared for every role, module and action (a module or role missing from
// a report denies everything). Field rules are compared only where the role
// may do something in the module under both policies: when access appears
// or disappears, the cell changes already say so, and the new report shows
// the field rules that come with it.
//
// Changes are ordered by module (in the reports' order), role, then
// actions in report order before fields, so the same two policies always
// give the same diff.
func CompareAccess(old, new *Access) *Diff {
	d := &Diff{OldRevision: old.Revision, NewRevision: new.Revision, Changes: []Change{}}
	oldRows, newRows := rowsByKey(old), rowsByKey(new)
	actions := slices.Clone(new.Actions)
	for _, a := range old.Actions {
		if !slices.Contains(actions, a) {
			actions = append(actions, a)
		}
	}
	roles := uniqueSorted(append(slices.Clone(old.Roles), new.Roles...))
	for _, module := range moduleOrder(old, new) {
		for _, role := range roles {
			key := rowKey{module, role}
			o, inOld := oldRows[key]
			n, inNew := newRows[key]
			if !inOld && !inNew {
				continue
			}
			for _, action := range actions {
				oc, nc := cellOf(o, action), cellOf(n, action)
				if oc.Allow == nc.Allow && oc.AllowMFA == nc.AllowMFA {
					continue
				}
				d.Changes = append(d.Changes, Change{Sign: cellSign(oc, nc), Module: module, Role: role, Action: action,
					Text: fmt.Sprintf("%s: %s → %s", action, oc, nc)})
			}
			if inOld && inNew {
				d.Changes = append(d.Changes, fieldChanges(module, role, o.Fields, n.Fields)...)
			}
		}
	}
	return d
}

type rowKey struct{ module, role string }

func rowsByKey(a *Access) map[rowKey]RoleAccess {
	out := map[rowKey]RoleAccess{}
	for _, m := range a.Modules {
		for _, r := range m.Roles {
			out[rowKey{m.Module, r.Role}] = r
		}
	}
	return out
}

// moduleOrder is new's modules, then old's that new no longer lists, each in
// its report's order.
func moduleOrder(old, new *Access) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range []*Access{new, old} {
		for _, m := range a.Modules {
			if !seen[m.Module] {
				seen[m.Module] = true
				out = append(out, m.Module)
			}
		}
	}
	return out
}

func cellOf(r RoleAccess, action string) Cell {
	for _, c := range r.Cells {
		if c.Action == action {
			return c
		}
	}
	return Cell{Action: action}
}

func cellSign(o, n Cell) Sign {
	more := (!o.Allow && n.Allow) || (!o.AllowMFA && n.AllowMFA)
	less := (o.Allow && !n.Allow) || (o.AllowMFA && !n.AllowMFA)
	switch {
	case more && !less:
		return Grant
	case less && !more:
		return Revoke
	}
	return Alter
}

func fieldChanges(module, role string, o, n Fields) []Change {
	var out []Change
	add := func(s Sign, field, text string) {
		out = append(out, Change{Sign: s, Module: module, Role: role, Field: field, Text: text})
	}
	for _, f := range added(n.Hidden, o.Hidden) {
		add(Revoke, f, f+" hidden")
	}
	for _, f := range added(o.Hidden, n.Hidden) {
		add(Grant, f, f+" no longer hidden")
	}
	for _, f := range slices.Sorted(maps.Keys(joinKeys(o.Masked, n.Masked))) {
		os, inOld := o.Masked[f]
		ns, inNew := n.Masked[f]
		switch {
		case inOld && !inNew:
			add(Grant, f, fmt.Sprintf("%s no longer masked (was %s)", f, os))
		case !inOld && inNew:
			add(Revoke, f, fmt.Sprintf("%s masked (%s)", f, ns))
		case os != ns:
			add(Alter, f, fmt.Sprintf("%s mask %s → %s", f, os, ns))
		}
	}
	for _, f := range added(n.ReadOnly, o.ReadOnly) {
		add(Revoke, f, f+" read-only")
	}
	for _, f := range added(o.ReadOnly, n.ReadOnly) {
		add(Grant, f, f+" no longer read-only")
	}
	switch {
	case o.VisibleDefined && !n.VisibleDefined:
		add(Grant, "", "field allow-list removed: all fields visible")
	case !o.VisibleDefined && n.VisibleDefined:
		add(Revoke, "", "only these fields visible: "+visibleText(n))
	case o.VisibleDefined && n.VisibleDefined:
		for _, f := range added(n.Visible, o.Visible) {
			add(Grant, f, f+" now visible (allow-list)")
		}
		for _, f := range added(o.Visible, n.Visible) {
			add(Revoke, f, f+" no longer visible (allow-list)")
		}
	}
	return out
}

// added is what is in b and not in a, sorted.
func added(b, a []string) []string {
	var out []string
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func joinKeys(a, b map[string]string) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// Write renders the diff in format f.
func (d *Diff) Write(w io.Writer, f Format) error {
	return render(w, f, "write access diff", d.markdown, d.csv, func(w io.Writer) error { return diffHTML.Execute(w, d) })
}

func (d *Diff) markdown(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "# Access changes\n\n- Old policy revision: `%s`\n- New policy revision: `%s`\n", d.OldRevision, d.NewRevision)
	fmt.Fprintf(w, "- %s grants, %s removes, %s changes otherwise.\n\n", Grant, Revoke, Alter)
	if len(d.Changes) == 0 {
		fmt.Fprintln(w, "No changes in who may do what.")
		return w.Flush()
	}
	module := ""
	for _, c := range d.Changes {
		if c.Module != module {
			if module != "" {
				fmt.Fprintln(w)
			}
			module = c.Module
			fmt.Fprintf(w, "## %s\n\n", mdText(module))
		}
		fmt.Fprintf(w, "- %s %s: %s\n", c.Sign, mdText(c.Role), mdText(c.Text))
	}
	return w.Flush()
}

// mdText keeps policy-supplied names from turning into Markdown markup.
func mdText(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "`", "\\`", "[", `\[`, "]", `\]`, "<", `\<`, "\n", " ")
	return r.Replace(s)
}

func (d *Diff) csv(out io.Writer) error {
	w := csv.NewWriter(out)
	if err := w.Write([]string{"sign", "module", "role", "action", "field", "change"}); err != nil {
		return err
	}
	for _, c := range d.Changes {
		if err := w.Write([]string{string(c.Sign), c.Module, c.Role, c.Action, c.Field, c.Text}); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

var diffHTML = template.Must(template.New("diff").Funcs(template.FuncMap{
	"signClass": func(s Sign) string {
		switch s {
		case Grant:
			return "plus"
		case Revoke:
			return "minus"
		}
		return "change"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>crmgate access changes</title>
<style>` + pageStyle + `</style></head><body>
<h1>Access changes</h1>
<ul><li>Old policy revision: <code>{{.OldRevision}}</code></li><li>New policy revision: <code>{{.NewRevision}}</code></li></ul>
{{if .Changes}}<table id="changes"><thead><tr><th></th><th>Module</th><th>Role</th><th>Change</th></tr></thead><tbody>
{{range .Changes}}<tr class="{{signClass .Sign}}"><td>{{.Sign}}</td><td>{{.Module}}</td><td>{{.Role}}</td><td>{{.Text}}</td></tr>
{{end}}</tbody></table>{{else}}<p>No changes in who may do what.</p>{{end}}
</body></html>
`))
