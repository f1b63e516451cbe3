package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/policy/report"
)

type seenMap map[string]time.Time

func (m seenMap) LastSeen(context.Context) (map[string]time.Time, error) { return m, nil }

type brokenStore struct{}

var errDown = errors.New("store down")

func (brokenStore) LastSeen(context.Context) (map[string]time.Time, error) { return nil, errDown }

func TestDormant(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	seen := seenMap{
		"active":     now.Add(-time.Hour),
		"edge-in":    now.Add(-30*day + time.Second), // 1 s short of 30 days: still active
		"edge-out":   now.Add(-30 * day),             // exactly 30 days: dormant
		"long-gone":  now.Add(-400 * day),
		"also-gone":  now.Add(-45 * day),
		"same-time1": now.Add(-45 * day),
	}
	d, err := report.BuildDormant(context.Background(), seen, 30, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range d.Users {
		got = append(got, u.User)
	}
	want := []string{"long-gone", "also-gone", "same-time1", "edge-out"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("dormant = %v, want %v (longest idle first, ties by id)", got, want)
	}
	if d.Known != len(seen) || d.Users[0].DaysIdle != 400 || d.Users[3].DaysIdle != 30 {
		t.Errorf("known %d, idle %d/%d", d.Known, d.Users[0].DaysIdle, d.Users[3].DaysIdle)
	}

	t.Run("formats", func(t *testing.T) {
		for _, f := range []report.Format{report.Markdown, report.CSV, report.HTML} {
			var buf bytes.Buffer
			if err := d.Write(&buf, f); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if !strings.Contains(out, "long-gone") || strings.Contains(out, "active") || strings.Contains(out, "edge-in") {
				t.Errorf("%s output:\n%s", f, out)
			}
		}
		var buf bytes.Buffer
		_ = d.Write(&buf, report.CSV)
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(recs) != 5 || recs[1][0] != "long-gone" || recs[1][1] != "2025-01-25T12:00:00Z" {
			t.Errorf("csv %v %v", recs, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, days := range []int{0, -1, report.MaxDormantDays + 1} {
			if _, err := report.BuildDormant(context.Background(), seen, days, now); err == nil {
				t.Errorf("days %d accepted", days)
			}
		}
		if _, err := report.BuildDormant(context.Background(), brokenStore{}, 30, now); !errors.Is(err, errDown) {
			t.Errorf("store error = %v, want errDown wrapped", err)
		}
		if _, err := report.BuildDormant(context.Background(), nil, 30, now); err == nil {
			t.Error("nil store accepted")
		}
	})
}
