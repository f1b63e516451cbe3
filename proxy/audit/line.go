package audit

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"
)

// appendLine writes e as one line: zap's envelope (level, timestamp, msg)
// and then e's fields in the names and order of MarshalLogObject, ending in
// a newline.
func appendLine(b []byte, e *Entry) []byte {
	b = append(b, `{"level":"info","timestamp":"`...)
	b = e.Timestamp.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","msg":"decision","decision_id":`...)
	b = appendString(b, e.DecisionID)
	if len(e.Labels) > 0 {
		b = append(b, `,"labels":`...)
		if e.labelsJSON != nil {
			b = append(b, e.labelsJSON...)
		} else {
			b = appendStringMap(b, e.Labels)
		}
	}
	if len(e.Bundles) > 0 {
		b = append(b, `,"bundles":`...)
		if e.bundlesJSON != nil {
			b = append(b, e.bundlesJSON...)
		} else {
			b = appendBundles(b, e.Bundles)
		}
	}
	if e.Path != "" {
		b = append(b, `,"path":`...)
		b = appendString(b, e.Path)
	}
	if len(e.Input) > 0 {
		b = append(b, `,"input":`...)
		b = appendRaw(b, e.Input)
	}
	if len(e.Result) > 0 {
		b = append(b, `,"result":`...)
		b = appendRaw(b, e.Result)
	}
	if len(e.Erased) > 0 {
		b = append(b, `,"erased":`...)
		b = appendStringArray(b, e.Erased)
	}
	if len(e.Masked) > 0 {
		b = append(b, `,"masked":`...)
		b = appendStringArray(b, e.Masked)
	}
	if len(e.Metrics) > 0 {
		b = append(b, `,"metrics":{`...)
		for i, k := range sortedMapKeys(e.Metrics) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = strconv.AppendInt(b, e.Metrics[k], 10)
		}
		b = append(b, '}')
	}
	if e.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendString(b, e.RequestID)
	}
	if e.Subject != nil {
		b = append(b, `,"subject":{"id":`...)
		b = appendString(b, e.Subject.ID)
		b = append(b, `,"roles":`...)
		b = appendStringArray(b, e.Subject.Roles)
		b = append(b, '}')
	}
	if e.Module != "" {
		b = append(b, `,"module":`...)
		b = appendString(b, e.Module)
	}
	if e.Action != "" {
		b = append(b, `,"action":`...)
		b = appendString(b, e.Action)
	}
	if e.RecordID != "" {
		b = append(b, `,"record_id":`...)
		b = appendString(b, e.RecordID)
	}
	if e.RelatedModule != "" {
		b = append(b, `,"related_module":`...)
		b = appendString(b, e.RelatedModule)
	}
	b = append(b, `,"outcome":`...)
	b = appendString(b, e.Outcome)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"records_returned":`...)
	b = strconv.AppendInt(b, int64(e.RecordsReturned), 10)
	b = append(b, `,"records_filtered":`...)
	b = strconv.AppendInt(b, int64(e.RecordsFiltered), 10)
	if e.BudgetRemaining != nil {
		b = append(b, `,"budget_remaining":`...)
		b = strconv.AppendInt(b, *e.BudgetRemaining, 10)
	}
	if e.BudgetSpent {
		b = append(b, `,"budget_spent":true`...)
	}
	if e.RecordsWithheld > 0 {
		b = append(b, `,"records_withheld":`...)
		b = strconv.AppendInt(b, int64(e.RecordsWithheld), 10)
	}
	if e.Pushdown != "" {
		b = append(b, `,"pushdown":`...)
		b = appendString(b, e.Pushdown)
	}
	if e.PushdownReason != "" {
		b = append(b, `,"pushdown_reason":`...)
		b = appendString(b, e.PushdownReason)
	}
	b = append(b, `,"fields_redacted":`...)
	b = strconv.AppendInt(b, int64(e.FieldsRedacted), 10)
	b = append(b, `,"latency_ns":`...)
	b = strconv.AppendInt(b, e.LatencyNS, 10)
	if len(e.RecordIDs) > 0 {
		b = append(b, `,"record_ids":`...)
		b = appendStringArray(b, e.RecordIDs)
	}
	if e.RecordIDsTruncated {
		b = append(b, `,"record_ids_truncated":true`...)
	}
	if e.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
	}
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, e.Error)
	}
	return append(b, '}', '\n')
}

// appendRaw writes a JSON value that must stay on one line. The builder's
// values are compact; an Entry made elsewhere may not be: a value with line
// breaks is compacted, or written as null if it is not JSON, rather than
// break the line.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if bytes.IndexByte(raw, '\n') < 0 && bytes.IndexByte(raw, '\r') < 0 {
		return append(b, raw...)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return append(b, "null"...)
	}
	return append(b, out.Bytes()...)
}

// appendBundles writes the bundles object with sorted names.
func appendBundles(b []byte, m map[string]Bundle) []byte {
	b = append(b, '{')
	for i, k := range sortedMapKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, `:{"revision":`...)
		b = appendString(b, m[k].Revision)
		b = append(b, '}')
	}
	return append(b, '}')
}

// sortedMapKeys returns m's keys sorted, so that a line's bytes do not
// depend on map iteration order.
func sortedMapKeys[V any](m map[string]V) []string {
	if len(m) == 1 {
		for k := range m {
			return []string{k}
		}
	}
	return slices.Sorted(maps.Keys(m))
}
