package redact

import "strconv"

// totalStyle is how a count at one of Shape.TotalPaths is rewritten when
// records are filtered (see the package documentation).
type totalStyle uint8

const (
	// styleRemove drops the member: the CRM has no value meaning "unknown".
	styleRemove totalStyle = iota
	// styleMore writes EspoCRM's -1 (more records follow) or -2 (none do).
	styleMore
	// stylePage writes the number of records actually returned.
	stylePage
)

// Values EspoCRM itself writes as "total" when counting is disabled for an
// entity type (Espo\Core\Record\Collection).
const (
	espoTotalHasMore   = -1
	espoTotalHasNoMore = -2
)

func styleFor(name string) totalStyle {
	switch name {
	case "total":
		return styleMore
	case "records-on-this-page":
		return stylePage
	}
	return styleRemove
}

// pendingTotal is a count met before the list, written once the list is done.
type pendingTotal struct {
	name  []byte // raw, quoted
	value []byte // raw upstream value
	style totalStyle
}

// appendTotal appends the rewritten value of a count, or reports false when
// the member is to be removed. It must run after the list has been read.
func (w *walker) appendTotal(dst []byte, style totalStyle, upstream []byte) ([]byte, bool) {
	switch style {
	case styleMore:
		t, err := strconv.ParseInt(string(upstream), 10, 64)
		if err != nil {
			return dst, false
		}
		if t < 0 {
			return append(dst, upstream...), true
		}
		seen := int64(w.c.offset) + int64(w.upstreamN)
		if w.upstreamN > 0 && seen < t {
			return strconv.AppendInt(dst, espoTotalHasMore, 10), true
		}
		return strconv.AppendInt(dst, espoTotalHasNoMore, 10), true
	case stylePage:
		return strconv.AppendInt(dst, int64(w.stats.Returned), 10), true
	}
	return dst, false
}
