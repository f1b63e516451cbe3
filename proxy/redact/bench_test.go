package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

// suiteList builds a SuiteCRM V8 list of n Accounts of about 1 KB each.
func suiteList(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"Accounts","id":"6f1c2a9e-0000-4000-8000-%012d","attributes":{`+
			`"name":"Department Store %d","account_type":"Customer","industry":"Retail",`+
			`"annual_revenue":"%d","phone_office":"+1 555 %07d","phone_fax":"+1 555 0000000",`+
			`"email1":"store%d@shop.example","billing_address_street":"%d Main Street",`+
			`"billing_address_city":"Springfield","billing_address_state":"IL","billing_address_postalcode":"62701",`+
			`"billing_address_country":"USA","description":"Flagship store with a long description that pads the record to a realistic size for a CRM list view.",`+
			`"rating":"A","ownership":"Public","employees":"%d","ticker_symbol":"DS%d","sic_code":"5311",`+
			`"date_entered":"2026-01-02T03:04:05+00:00","date_modified":"2026-02-03T04:05:06+00:00",`+
			`"assigned_user_id":"u-%d","created_by":"1","deleted":false,"parent_id":"","campaign_id":null,`+
			`"credit_limit":%d,"tax_id":"TX-%06d"},`+
			`"relationships":{"Contacts":{"links":{"related":"V8/module/Accounts/%d/relationships/contacts"}}}}`,
			i, i, i*1000, i, i, i, 100+i, i, i%10, i*10, i, i)
	}
	b.WriteString(`],"meta":{"total-pages":1,"records-on-this-page":`)
	fmt.Fprintf(&b, "%d", n)
	b.WriteString(`},"links":{"self":"V8/module/Accounts?page[number]=1"}}`)
	return b.Bytes()
}

func suiteShape() profile.Shape {
	return profile.Shape{
		ListPath:   []string{"data"},
		RecordPath: []string{"data"},
		FieldsPath: []string{"attributes"},
		IDField:    "id",
		TotalPaths: [][]string{{"meta", "total-pages"}, {"meta", "records-on-this-page"}},
	}
}

// ownerRule is the benchmark's record rule: a cheap Go predicate that drops
// the records of one owner.
type ownerRule struct{ deny string }

func (ownerRule) Fields() []string { return []string{"assigned_user_id"} }

func (r ownerRule) Check(rec map[string]any) (policy.RecordDecision, error) {
	return policy.RecordDecision{Allow: rec["assigned_user_id"] != r.deny}, nil
}

func benchPlan(tb testing.TB) *Compiled {
	p := Plan{
		Shape:  suiteShape(),
		Hidden: []string{"annual_revenue", "credit_limit", "tax_id"},
		Masked: map[string]string{"phone_office": policy.MaskLast4},
		Record: ownerRule{deny: "u-3"},
	}
	c, err := p.Compile()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func benchTransform(b *testing.B, n int) {
	body := suiteList(n)
	c := benchPlan(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	r := bytes.NewReader(body)
	for b.Loop() {
		r.Reset(body)
		st, err := c.Transform(io.Discard, r, ModeList)
		if err != nil {
			b.Fatal(err)
		}
		if st.Filtered != n/10 {
			b.Fatalf("filtered %d, want %d", st.Filtered, n/10)
		}
	}
}

func BenchmarkTransformList1MB(b *testing.B)  { benchTransform(b, 1000) }
func BenchmarkTransformList10MB(b *testing.B) { benchTransform(b, 10000) }

// BenchmarkStdlibRoundTrip1MB is the baseline: decoding the same body into
// maps with encoding/json and encoding it again, without any redaction.
func BenchmarkStdlibRoundTrip1MB(b *testing.B) {
	body := suiteList(1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}
