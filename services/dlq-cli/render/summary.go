package render

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Count is one line of a breakdown.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// Oldest names the oldest pending dead letter.
type Oldest struct {
	Partition      int       `json:"partition"`
	Offset         int64     `json:"offset"`
	OrderID        string    `json:"orderID"`
	DeadLetteredAt time.Time `json:"deadLetteredAt"`
	// Age is how long it has waited, in whole seconds in JSON.
	Age        time.Duration `json:"-"`
	AgeSeconds int64         `json:"ageSeconds"`
}

// Summary is the JSON shape of `dlq stats`.
type Summary struct {
	Total     int     `json:"total"`
	Pending   int     `json:"pending"`
	Resolved  int     `json:"resolved"`
	Malformed int     `json:"malformed"`
	ByReason  []Count `json:"byReason"`
	ByClass   []Count `json:"byErrorClass"`
	// ByHour counts by the UTC hour the letters were dead-lettered, oldest
	// first.
	ByHour        []Count `json:"byHour"`
	OldestPending *Oldest `json:"oldestPending,omitempty"`
}

// unknown is the breakdown key of a letter without the header.
const unknown = "(none)"

// Summarize counts items by reason, error class and hour, and finds the
// oldest pending one; now gives its age.
func Summarize(items []Item, now time.Time) Summary {
	var s Summary
	reasons, classes, hours := map[string]int{}, map[string]int{}, map[string]int{}
	for _, it := range items {
		l := it.Letter
		s.Total++
		if it.Resolution == nil {
			s.Pending++
			at := l.DeadLetteredAt()
			if s.OldestPending == nil || at.Before(s.OldestPending.DeadLetteredAt) {
				s.OldestPending = &Oldest{
					Partition:      l.Coord.Partition,
					Offset:         l.Coord.Offset,
					OrderID:        l.OrderID,
					DeadLetteredAt: at.UTC(),
				}
			}
		} else {
			s.Resolved++
		}
		if l.Malformed != "" {
			s.Malformed++
		}
		reasons[cmp.Or(string(l.Meta.DLQReason), unknown)]++
		classes[cmp.Or(string(l.Meta.ErrorClass), unknown)]++
		hours[l.DeadLetteredAt().UTC().Truncate(time.Hour).Format("2006-01-02T15:00Z")]++
	}
	if s.OldestPending != nil {
		s.OldestPending.Age = now.Sub(s.OldestPending.DeadLetteredAt).Truncate(time.Second)
		s.OldestPending.AgeSeconds = int64(s.OldestPending.Age / time.Second)
	}
	s.ByReason, s.ByClass, s.ByHour = counts(reasons), counts(classes), counts(hours)
	return s
}

// counts returns the map's entries sorted by key (hours sort in time order
// because of their layout).
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, Count{Key: k, Count: m[k]})
	}
	return out
}

// Stats prints a summary.
func (p Printer) Stats(s Summary) error {
	if p.Format != Table {
		// A summary is one document: jsonl is the same single line as json.
		if p.Format == JSONL {
			return writeJSONLine(p.W, s)
		}
		return writeJSON(p.W, s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d (pending %d, resolved %d, malformed %d)\n",
		paint("Dead letters:", bold, p.Color), s.Total, s.Pending, s.Resolved, s.Malformed)
	section := func(header string, cs []Count) {
		b.WriteString("\n")
		t := table{header: []string{header, "COUNT"}}
		for _, c := range cs {
			t.add(cell{c.Key, plain}, cell{strconv.Itoa(c.Count), plain})
		}
		_ = t.write(&b, p.Color)
	}
	section("REASON", s.ByReason)
	section("ERROR CLASS", s.ByClass)
	section("HOUR (UTC)", s.ByHour)
	b.WriteString("\n")
	if o := s.OldestPending; o != nil {
		fmt.Fprintf(&b, "%s %d:%d order %s, dead-lettered %s (%s ago)\n",
			paint("Oldest pending:", bold, p.Color), o.Partition, o.Offset, CleanLine(orDash(o.OrderID)),
			o.DeadLetteredAt.Format(timeLayout), o.Age)
	} else {
		fmt.Fprintf(&b, "%s none\n", paint("Oldest pending:", bold, p.Color))
	}
	_, err := fmt.Fprint(p.W, b.String())
	return err
}
