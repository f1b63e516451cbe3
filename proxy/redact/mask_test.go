package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy"
)

func TestMasks(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("+1 555 123 4567"))
	wantHash := `"hmac:` + hex.EncodeToString(mac.Sum(nil))[:16] + `"`
	tests := []struct {
		name  string
		style string
		value string // JSON
		want  string // JSON
	}{
		{"last4 long", policy.MaskLast4, `"+1 555 123 4567"`, `"***********4567"`},
		{"last4 counts runes", policy.MaskLast4, `"ÄÖÜßéèàç"`, `"****éèàç"`},
		{"last4 exactly 4 is fully masked", policy.MaskLast4, `"1234"`, `"****"`},
		{"last4 short is fully masked", policy.MaskLast4, `"12"`, `"**"`},
		{"last4 empty", policy.MaskLast4, `""`, `""`},
		{"last4 escaped value", policy.MaskLast4, `"\u0031\u00322345"`, `"**2345"`},
		{"last4 keeps a quote safely", policy.MaskLast4, `"abcde\"fgh"`, `"*****\"fgh"`},
		{"email", policy.MaskEmail, `"alice@shop.example"`, `"a***@shop.example"`},
		{"email first rune", policy.MaskEmail, `"élodie@x.example"`, `"é***@x.example"`},
		{"email without at", policy.MaskEmail, `"alice"`, `"[redacted]"`},
		{"email with two ats", policy.MaskEmail, `"a@b@c"`, `"[redacted]"`},
		{"email empty local", policy.MaskEmail, `"@shop.example"`, `"[redacted]"`},
		{"email empty domain", policy.MaskEmail, `"alice@"`, `"[redacted]"`},
		{"redact", policy.MaskRedact, `"anything"`, `"[redacted]"`},
		{"hash", policy.MaskHash, `"+1 555 123 4567"`, wantHash},
		{"number", policy.MaskLast4, `5551234567`, `"[redacted]"`},
		{"bool", policy.MaskEmail, `true`, `"[redacted]"`},
		{"object", policy.MaskHash, `{"a":"alice@shop.example"}`, `"[redacted]"`},
		{"array", policy.MaskLast4, `["5551234567"]`, `"[redacted]"`},
		{"null stays null", policy.MaskRedact, `null`, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Plan{Shape: espoShape(), Masked: map[string]string{"f": tt.style}, HashKey: key}
			got, st, err := transform(t, p, ModeOther, `{"f":`+tt.value+`}`)
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"f":` + tt.want + `}`; got != want {
				t.Errorf("got %s, want %s", got, want)
			}
			if wantN := 1 - strings.Count(tt.value, "null"); st.Redacted != wantN {
				t.Errorf("redacted %d, want %d", st.Redacted, wantN)
			}
		})
	}
}

// TestMaskHashKeyed checks that hashes depend on the key, so a list of
// phone numbers hashed without it cannot be matched against the output.
func TestMaskHashKeyed(t *testing.T) {
	t.Parallel()
	out := func(key string) string {
		p := Plan{Shape: espoShape(), Masked: map[string]string{"phone": policy.MaskHash}, HashKey: []byte(key)}
		got, _, err := transform(t, p, ModeOther, `{"phone":"5551234567"}`)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	a, b := out("key-one-0123456789"), out("key-two-0123456789")
	if a == b {
		t.Fatalf("two keys gave the same hash %s", a)
	}
	if a != out("key-one-0123456789") {
		t.Fatal("hash is not deterministic")
	}
	plain := sha256.Sum256([]byte("5551234567"))
	if strings.Contains(a, hex.EncodeToString(plain[:])[:16]) {
		t.Fatal("hash is an unkeyed SHA-256")
	}
}

func TestMaskConflictingSpellings(t *testing.T) {
	t.Parallel()
	p := Plan{Shape: espoShape(), Masked: map[string]string{"phone": policy.MaskLast4, "PHONE": policy.MaskRedact}}
	for range 20 { // map order varies; the strongest style must always win
		got, _, err := transform(t, p, ModeOther, `{"Phone":"5551234567"}`)
		if err != nil {
			t.Fatal(err)
		}
		if got != `{"Phone":"[redacted]"}` {
			t.Fatalf("got %s", got)
		}
	}
}

func TestFold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b  string
		equal bool
	}{
		{"cost", "COST", true},
		{"ssn", "ſſn", true},
		{"kind", "\u212aind", true},
		{"straße", "STRASSE", false}, // full case folding is not simple folding
		{"Ωmega", "ωMEGA", true},
		{"cost", "costs", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			t.Parallel()
			fa, fb := appendFold(nil, []byte(tt.a)), appendFold(nil, []byte(tt.b))
			if (string(fa) == string(fb)) != tt.equal {
				t.Errorf("fold(%q)=%q fold(%q)=%q, equal want %v", tt.a, fa, tt.b, fb, tt.equal)
			}
			if got := strings.EqualFold(tt.a, tt.b); got != tt.equal {
				t.Errorf("strings.EqualFold disagrees: %v", got)
			}
		})
	}
}

// TestLast4ASCII checks that the ASCII path of maskLast4 writes what the
// general one does, for every byte it takes and every length around four.
func TestLast4ASCII(t *testing.T) {
	var inputs [][]byte
	for c := range 256 {
		inputs = append(inputs, []byte{byte(c)}, []byte{'1', '2', '3', '4', byte(c)}, []byte{byte(c), '1', '2', '3', '4', '5'})
	}
	for n := range 10 {
		inputs = append(inputs, []byte("+1 555 <&> 0123456789"[:n]))
	}
	for _, s := range inputs {
		if !quoteFree(s) {
			continue
		}
		want, _ := appendLast4(nil, s, nil)
		if got := appendLast4ASCII(nil, s); string(got) != string(want) {
			t.Errorf("%q: ASCII path %s, general path %s", s, got, want)
		}
	}
}
