package report

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"time"
)

// LastSeener is the session store's record of user activity.
type LastSeener interface {
	LastSeen(ctx context.Context) (map[string]time.Time, error)
}

// MaxDormantDays bounds the days a dormant report accepts (100 years).
const MaxDormantDays = 36500

// Dormant lists users not seen for a number of days.
type Dormant struct {
	Days int `json:"days"`
	// Now is when the report was made; Cutoff is Now minus Days: users
	// last seen at or before it are dormant.
	Now    time.Time `json:"now"`
	Cutoff time.Time `json:"cutoff"`
	// Known is how many users the store has a last-seen time for. Users
	// who never signed in through crmgate are unknown to it and not listed.
	Known int           `json:"known_users"`
	Users []DormantUser `json:"users"`
}

// DormantUser is one user not seen since Cutoff.
type DormantUser struct {
	User     string    `json:"user"`
	LastSeen time.Time `json:"last_seen"`
	// DaysIdle is whole days from LastSeen to the report's Now.
	DaysIdle int `json:"days_idle"`
}

// BuildDormant lists the users src last saw at least days days before now,
// longest idle first (ties by user id).
func BuildDormant(ctx context.Context, src LastSeener, days int, now time.Time) (*Dormant, error) {
	const op = "dormant report"
	if days < 1 || days > MaxDormantDays {
		return nil, fmt.Errorf("%s: days %d: want 1 to %d", op, days, MaxDormantDays)
	}
	if src == nil {
		return nil, fmt.Errorf("%s: no session store", op)
	}
	seen, err := src.LastSeen(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	now = now.UTC()
	d := &Dormant{Days: days, Now: now, Cutoff: now.AddDate(0, 0, -days), Known: len(seen), Users: []DormantUser{}}
	for user, at := range seen {
		if at.After(d.Cutoff) {
			continue
		}
		d.Users = append(d.Users, DormantUser{User: user, LastSeen: at.UTC(), DaysIdle: int(now.Sub(at) / (24 * time.Hour))})
	}
	slices.SortFunc(d.Users, func(a, b DormantUser) int {
		return cmp.Or(a.LastSeen.Compare(b.LastSeen), cmp.Compare(a.User, b.User))
	})
	return d, nil
}

// Write renders the dormant report in format f.
func (d *Dormant) Write(w io.Writer, f Format) error {
	return render(w, f, "write dormant report", d.markdown, d.csv, func(w io.Writer) error { return dormantHTML.Execute(w, d) })
}

const dateLayout = "2006-01-02 15:04 UTC"

func (d *Dormant) markdown(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "# Dormant users\n\n- Not seen for %d days: last seen at or before %s.\n", d.Days, d.Cutoff.Format(dateLayout))
	fmt.Fprintf(w, "- %d of %d users with a recorded last-seen time. Users who never signed in through crmgate are not known to it.\n\n", len(d.Users), d.Known)
	if len(d.Users) == 0 {
		fmt.Fprintln(w, "No dormant users.")
		return w.Flush()
	}
	fmt.Fprintf(w, "| User | Last seen | Days idle |\n|---|---|---|\n")
	for _, u := range d.Users {
		fmt.Fprintf(w, "| %s | %s | %d |\n", mdCell(u.User), u.LastSeen.Format(dateLayout), u.DaysIdle)
	}
	return w.Flush()
}

func (d *Dormant) csv(out io.Writer) error {
	w := csv.NewWriter(out)
	if err := w.Write([]string{"user", "last_seen", "days_idle"}); err != nil {
		return err
	}
	for _, u := range d.Users {
		if err := w.Write([]string{u.User, u.LastSeen.Format(time.RFC3339), strconv.Itoa(u.DaysIdle)}); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

var dormantHTML = template.Must(template.New("dormant").Funcs(template.FuncMap{
	"date": func(t time.Time) string { return t.Format(dateLayout) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>crmgate dormant users</title>
<style>` + pageStyle + `</style></head><body>
<h1>Dormant users</h1>
<ul><li>Not seen for {{.Days}} days: last seen at or before {{date .Cutoff}}.</li>
<li>{{len .Users}} of {{.Known}} users with a recorded last-seen time. Users who never signed in through crmgate are not known to it.</li></ul>
{{if .Users}}<table id="dormant"><thead><tr><th>User</th><th>Last seen</th><th>Days idle</th></tr></thead><tbody>
{{range .Users}}<tr><td>{{.User}}</td><td>{{date .LastSeen}}</td><td>{{.DaysIdle}}</td></tr>
{{end}}</tbody></table>{{else}}<p>No dormant users.</p>{{end}}
</body></html>
`))
