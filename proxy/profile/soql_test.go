package profile

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSOQLCanonical(t *testing.T) {
	cases := []struct{ in, want string }{
		{"select Id, Name from Account", "SELECT Id, Name FROM Account"},
		{"SELECT Id FROM Account WHERE Name = 'A\\'b' AND Amount > -5.25",
			"SELECT Id FROM Account WHERE Name = 'A\\'b' AND Amount > -5.25"},
		{"SELECT Id FROM Contact WHERE (Name LIKE 'a%' OR Email = null) AND NOT Phone != null",
			"SELECT Id FROM Contact WHERE (Name LIKE 'a%' OR Email = null) AND NOT (Phone != null)"},
		{"SELECT Id FROM Case WHERE Status IN ('New','Open') and Priority not in ('Low') ORDER BY CreatedDate desc nulls last, Id LIMIT 10 OFFSET 20",
			"SELECT Id FROM Case WHERE Status IN ('New', 'Open') AND Priority NOT IN ('Low') ORDER BY CreatedDate DESC NULLS LAST, Id ASC LIMIT 10 OFFSET 20"},
		{"SELECT Id FROM Opportunity WHERE CloseDate > 2026-01-01 AND CreatedDate < 2026-01-01T10:00:00Z AND LastModifiedDate = LAST_N_DAYS:30 AND IsWon = TRUE",
			"SELECT Id FROM Opportunity WHERE CloseDate > 2026-01-01 AND CreatedDate < 2026-01-01T10:00:00Z AND LastModifiedDate = LAST_N_DAYS:30 AND IsWon = true"},
		{"SELECT Id FROM Account WHERE Name <> 'x'", "SELECT Id FROM Account WHERE Name != 'x'"},
		{"SELECT Id FROM Account WHERE ((Name = 'x'))", "SELECT Id FROM Account WHERE Name = 'x'"},
		{"SELECT Id FROM Account WHERE Tags__c INCLUDES ('a;b', 'c')", "SELECT Id FROM Account WHERE Tags__c INCLUDES ('a;b', 'c')"},
	}
	for _, c := range cases {
		q, err := ParseSOQL(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := q.String(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
			continue
		}
		// The canonical text is a fixed point.
		again, err := ParseSOQL(q.String())
		if err != nil || again.String() != c.want {
			t.Errorf("%s: reparse %v %v", c.want, again, err)
		}
	}
}

func TestParseSOQLRefuses(t *testing.T) {
	refused := []string{
		"",
		"SELECT FROM Account",
		"SELECT Id FROM Account -- WHERE OwnerId = 'x'",
		"SELECT Id FROM Account /* x */",
		"SELECT Id FROM Account // x",
		"SELECT FIELDS(ALL) FROM Account LIMIT 200",
		"SELECT fields(standard) FROM Account",
		"SELECT Id, (SELECT Phone FROM Contacts) FROM Account",
		"SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)",
		"SELECT Id FROM Account WHERE Id NOT IN (select AccountId FROM Contact)",
		"SELECT Account.Name FROM Contact",
		"SELECT Id FROM Contact WHERE Account.OwnerId = 'x'",
		"SELECT Id FROM Contact ORDER BY Account.Name",
		"SELECT COUNT() FROM Account",
		"SELECT COUNT(Id) FROM Account",
		"SELECT toLabel(Status) FROM Case",
		"SELECT convertCurrency(Amount) FROM Opportunity",
		"SELECT TYPEOF What WHEN Account THEN Phone END FROM Task",
		"SELECT Id FROM Account GROUP BY Name",
		"SELECT Id FROM Account WITH SECURITY_ENFORCED",
		"SELECT Id FROM Account USING SCOPE Everything",
		"SELECT Id FROM Account FOR UPDATE",
		"SELECT Id FROM Account ALL ROWS",
		"SELECT Id FROM Account a",
		"SELECT Id FROM Account, Contact",
		"SELECT Id FROM Account WHERE Name = :name",
		"SELECT Id FROM Account WHERE Name = 'x' AND Phone = 'y' OR OwnerId = 'z'",
		"SELECT Id FROM Account WHERE Name = 'x' OR Phone = 'y' AND OwnerId = 'z'",
		"SELECT Id FROM Account WHERE Name = 'unterminated",
		"SELECT Id FROM Account WHERE Name = 'bad \\q escape'",
		"SELECT Id FROM Account WHERE Name = 'line\nbreak'",
		"SELECT Id FROM Account WHERE Amount > 1e5",
		"SELECT Id FROM Account WHERE Amount > +5",
		"SELECT Id FROM Account WHERE Name = Phone",
		"SELECT Id FROM Account WHERE Name > null",
		"SELECT Id FROM Account WHERE Name LIKE 5",
		"SELECT Id FROM Account WHERE Name == 'x'",
		"SELECT Id FROM Account WHERE Name IN 'x'",
		"SELECT Id FROM Account WHERE CreatedDate > 2026-01-01T10:00",
		"SELECT Id FROM Account WHERE CreatedDate > LAST_N_DAYS",
		"SELECT Id FROM Account WHERE CreatedDate > TODAY:3",
		"SELECT Id FROM Account LIMIT 10 LIMIT 5",
		"SELECT Id FROM Account OFFSET 2001",
		"SELECT Id FROM Account OFFSET 5 LIMIT 1",
		"SELECT Id FROM Account LIMIT -1",
		"SELECT Id FROM Account WHERE (Name = 'x'",
		"SELECT Id FROM Account WHERE NOT",
		"SELECT Select FROM Account",
		"SELECT Id FROM Account WHERE Name = 'x' ; DELETE",
		"SELECT Id FROM Account WHERE Name = '\xff'",
		"SELECT Id FROM Account WHERE " + strings.Repeat("(", 40) + "Name = 'x'" + strings.Repeat(")", 40),
		strings.Repeat("x", maxSOQLLen+1),
	}
	for _, s := range refused {
		q, err := ParseSOQL(s)
		if err == nil {
			t.Errorf("%q accepted as %s", s, q)
		} else if !errors.Is(err, ErrBadQuery) {
			t.Errorf("%q: %v is not ErrBadQuery", s, err)
		}
	}
}

func TestSOQLUnquote(t *testing.T) {
	q, err := ParseSOQL(`SELECT Id FROM Account WHERE Name LIKE 'O\'Brien\_\%\\\n\u00e9'`)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Where.Values[0].Unquote(); got != "O'Brien_%\\\né" {
		t.Fatalf("unquote %q", got)
	}
	v := SOQLString("it's a\\b\n")
	if v.Text != `it\'s a\\b\n` || v.Unquote() != "it's a\\b\n" {
		t.Fatalf("quote %q", v.Text)
	}
}

func TestIsSalesforceID(t *testing.T) {
	// Examples from Salesforce's documentation of the 18-character form.
	for _, id := range []string{"001D000000IqhSLIAZ", "0015000000L6lMZAAZ"} {
		if !IsSalesforceID(id) {
			t.Errorf("%s refused", id)
		}
	}
	for _, id := range []string{"001D000000IqhSL", "001D000000IqhSLIAA", "001d000000IqhSLIAZ", "001D000000IqhSLIA!", ""} {
		if IsSalesforceID(id) {
			t.Errorf("%s accepted", id)
		}
	}
}
