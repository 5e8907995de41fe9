// Package waterfall prints one order's trace as text: every hop of its
// story (each attempt, each hand-off, the wait in between, the dead
// letter, the redrive, the allocation) with its service, when it started,
// how long it took or waited, and how it ended. The demo reads the spans
// from an in-process recorder (sdk/trace/tracetest); a reader compares
// the waterfall with what a trace viewer (Jaeger, in compose's observe
// profile) shows for the same spans.
//
// The order's spans are those of every trace that holds a span about it
// (messaging.kafka.message.key = the order id): the trace of its first
// attempts, and, after a redrive, the trace the redrive started, which
// links back to the dead letter.
package waterfall

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Span is what the waterfall needs of a span.
type Span struct {
	Service       string
	Name          string
	Kind          trace.SpanKind
	Trace         trace.TraceID
	ID, Parent    trace.SpanID
	Start, End    time.Time
	Attrs         map[string]string
	Links         []trace.SpanContext
	Failed        bool
	FailedBecause string
}

// FromSDK converts recorded spans.
func FromSDK(spans []sdktrace.ReadOnlySpan) []Span {
	out := make([]Span, 0, len(spans))
	for _, s := range spans {
		sp := Span{
			Name: s.Name(), Kind: s.SpanKind(),
			Trace: s.SpanContext().TraceID(), ID: s.SpanContext().SpanID(), Parent: s.Parent().SpanID(),
			Start: s.StartTime(), End: s.EndTime(), Attrs: map[string]string{},
			Failed: s.Status().Code == codes.Error, FailedBecause: s.Status().Description,
		}
		for _, kv := range s.Resource().Attributes() {
			if kv.Key == semconv.ServiceNameKey {
				sp.Service = kv.Value.AsString()
			}
		}
		for _, kv := range s.Attributes() {
			sp.Attrs[string(kv.Key)] = kv.Value.String()
		}
		for _, l := range s.Links() {
			sp.Links = append(sp.Links, l.SpanContext)
		}
		out = append(out, sp)
	}
	return out
}

// Of returns the spans of the order's story: every span of every trace
// that holds a span about it, in start order.
func Of(spans []Span, orderID string) []Span {
	traces := map[trace.TraceID]bool{}
	for _, s := range spans {
		if s.Attrs[string(semconv.MessagingKafkaMessageKeyKey)] == orderID {
			traces[s.Trace] = true
		}
	}
	var out []Span
	for _, s := range spans {
		if traces[s.Trace] {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return out
}

// Print writes the waterfall of spans (see Of) to w, one line per span,
// as a tree per trace, the traces in the order they started.
func Print(w io.Writer, orderID string, spans []Span) {
	if len(spans) == 0 {
		fmt.Fprintf(w, "no spans recorded for order %s\n", orderID)
		return
	}
	t0 := spans[0].Start
	byID := map[trace.SpanID]Span{}
	children := map[trace.SpanID][]Span{}
	var traces []trace.TraceID
	for _, s := range spans {
		byID[s.ID] = s
		if !slices.Contains(traces, s.Trace) {
			traces = append(traces, s.Trace)
		}
	}
	roots := map[trace.TraceID][]Span{}
	for _, s := range spans {
		if _, ok := byID[s.Parent]; ok {
			children[s.Parent] = append(children[s.Parent], s)
		} else {
			roots[s.Trace] = append(roots[s.Trace], s)
		}
	}
	fmt.Fprintf(w, "%9s  %-24s %-60s %9s  %s\n", "at", "service", "span", "took", "outcome")
	for n, tid := range traces {
		how := "the order's first trace"
		if n > 0 {
			how = "a new trace, started by the redrive"
		}
		fmt.Fprintf(w, "── trace %s (%s)\n", tid.String()[:16], how)
		var walk func(s Span, depth int)
		walk = func(s Span, depth int) {
			line(w, t0, s, depth, byID)
			kids := children[s.ID]
			slices.SortStableFunc(kids, func(a, b Span) int { return a.Start.Compare(b.Start) })
			for _, k := range kids {
				walk(k, depth+1)
			}
		}
		for _, r := range roots[tid] {
			walk(r, 0)
		}
	}
}

func line(w io.Writer, t0 time.Time, s Span, depth int, byID map[trace.SpanID]Span) {
	name := strings.Repeat("  ", depth) + s.Name
	if a := s.Attrs["kafkaretry.attempt"]; a != "" && s.Kind == trace.SpanKindConsumer && s.Attrs["kafkaretry.route"] != "" {
		name += " · attempt " + a
	}
	fmt.Fprintf(w, "%8.3fs  %-24s %-60s %9s  %s\n", s.Start.Sub(t0).Seconds(), s.Service, clip(name, 60),
		round(s.End.Sub(s.Start)), outcome(s))
	indent := fmt.Sprintf("%9s  %-24s %s  ", "", "", strings.Repeat("  ", depth))
	if r := s.Attrs["kafkaretry.route"]; (r == "retry" || r == "dead-letter") && s.FailedBecause != "" {
		// The end of a wrapped error is its most specific part.
		fmt.Fprintf(w, "%serror: %s\n", indent, clipLeft(s.FailedBecause, 90))
	}
	// The wait: a record consumed after the producer span that wrote it.
	if p, ok := byID[s.Parent]; ok && p.Kind == trace.SpanKindProducer && s.Kind == trace.SpanKindConsumer {
		if wait := s.Start.Sub(p.End); wait > time.Millisecond {
			fmt.Fprintf(w, "%swaited %s on %s\n", indent, round(wait), s.Attrs["messaging.destination.name"])
		}
	}
	for _, l := range s.Links {
		target := "span " + l.SpanID().String()[:8]
		if t, ok := byID[l.SpanID()]; ok {
			target = t.Service + " " + t.Name
			if a := t.Attrs["kafkaretry.attempt"]; a != "" && t.Kind == trace.SpanKindConsumer {
				target += " · attempt " + a
			}
		}
		fmt.Fprintf(w, "%s↪ linked to %s (trace %s)\n", indent, target, l.TraceID().String()[:16])
	}
}

// outcome is how a span ended, in the pattern's words.
func outcome(s Span) string {
	route := s.Attrs["kafkaretry.route"]
	var parts []string
	switch {
	case route == "retry":
		parts = append(parts, fmt.Sprintf("failed (%s) → retry in %sms", s.Attrs["kafkaretry.error.class"], s.Attrs["kafkaretry.retry.delay_ms"]))
	case route == "dead-letter":
		parts = append(parts, fmt.Sprintf("failed (%s) → dead letter: %s", s.Attrs["kafkaretry.error.class"], s.Attrs["kafkaretry.dead_letter.reason"]))
	case route == "redrive":
		parts = append(parts, "redriven by "+cmp.Or(s.Service, "dlq"))
	case route != "":
		parts = append(parts, route)
	case s.Attrs["http.response.status_code"] != "":
		parts = append(parts, "HTTP "+s.Attrs["http.response.status_code"])
	case s.Failed:
		parts = append(parts, "error: "+clip(s.FailedBecause, 60))
	case s.Kind == trace.SpanKindConsumer:
		parts = append(parts, "skipped: nothing to do for this record")
	default:
		parts = append(parts, "ok")
	}
	return strings.Join(parts, " ")
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func clipLeft(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return "…" + string(r[len(r)-n+1:])
	}
	return s
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
