package redact

import (
	"errors"
	"testing"
)

// TestTransformAdmit: the read budget is asked only about records the rule
// let through, and a refused one is dropped (list) or refuses the whole
// record (ModeRecord) with nothing written; its fields are not counted as
// redacted.
func TestTransformAdmit(t *testing.T) {
	left := 2
	asked := 0
	admit := func() bool { asked++; left--; return left >= 0 }
	p := Plan{Shape: espoShape(), Hidden: []string{"cost"}, Record: ownedBy("owner"), Admit: admit}
	in := `{"total":5,"list":[{"id":"1","owner":"u1","cost":1},{"id":"2","owner":"u2"},{"id":"3","owner":"u1","cost":2},{"id":"4","owner":"u1","cost":3},{"id":"5","owner":"u1"}]}`
	out, st, err := transform(t, p, ModeList, in)
	if err != nil {
		t.Fatal(err)
	}
	if st.Returned != 2 || st.Filtered != 1 || st.Withheld != 2 || asked != 4 || st.Redacted != 2 {
		t.Fatalf("stats %+v asked %d; out %s", st, asked, out)
	}
	if want := `{"list":[{"id":"1","owner":"u1"},{"id":"3","owner":"u1"}],"total":-2}`; out != want {
		t.Fatalf("out %s\nwant %s", out, want)
	}

	p.Admit = func() bool { return false }
	out, st, err = transform(t, p, ModeRecord, `{"id":"1","owner":"u1","cost":1}`)
	if !errors.Is(err, ErrWithheld) || out != "" || st.Withheld != 1 || st.Returned != 0 {
		t.Fatalf("record withheld: err %v out %q stats %+v", err, out, st)
	}
}
