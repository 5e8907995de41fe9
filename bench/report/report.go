package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Names of the metrics a Goal can be held to besides the row's own Metrics.
const (
	MetricValue = "value" // Row.Value
	MetricRatio = "ratio" // Row.Ratio
)

// Row is one measured figure.
type Row struct {
	// Case is the case number of the issue ("1" to "8"); Key names the row
	// uniquely ("4-503"), for ratios and for the chart.
	Case string `json:"case"`
	Key  string `json:"key"`
	// Name says what was measured; Params with which parameters.
	Name   string `json:"name"`
	Params string `json:"params"`
	// Value, in Unit, is the figure itself.
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Metrics are secondary figures (percentiles, counts, CPU used). Their
	// names carry their unit ("p99_ms").
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// RatioTo lists the keys of the rows this one is compared with: the
	// ratio is Value divided by the smallest of their values. RatioTarget
	// instead divides by a fixed number (an asked rate).
	RatioTo     []string `json:"ratio_to,omitempty"`
	RatioTarget float64  `json:"ratio_target,omitempty"`
	// Ratio is computed by Finish; nil when there is none (or the rows it
	// refers to did not run).
	Ratio *float64 `json:"ratio,omitempty"`
	// Goals are checked by Finish.
	Goals []Goal `json:"goals,omitempty"`
	// Note explains anything a reader needs to trust or read the figure.
	Note string `json:"note,omitempty"`
}

// Goal is a bound a metric of a row must keep.
type Goal struct {
	// Metric is MetricValue, MetricRatio or a key of Row.Metrics.
	Metric string `json:"metric"`
	// Op is ">=", "<=", "<" or "==".
	Op     string  `json:"op"`
	Target float64 `json:"target"`
	// Met is computed by Finish; nil when the metric is missing.
	Met *bool `json:"met,omitempty"`
}

func (g Goal) String() string {
	name := g.Metric
	if name == MetricValue {
		name = "value"
	}
	return fmt.Sprintf("%s %s %s", name, g.Op, formatNumber(g.Target))
}

func (g Goal) holds(v float64) (bool, error) {
	switch g.Op {
	case ">=":
		return v >= g.Target, nil
	case "<=":
		return v <= g.Target, nil
	case "<":
		return v < g.Target, nil
	case "==":
		return v == g.Target, nil
	}
	return false, fmt.Errorf("goal %s: unknown operator %q: want >=, <=, < or ==", g.Metric, g.Op)
}

// Machine describes where and under which load a run happened.
type Machine struct {
	Hostname  string `json:"hostname"`
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	MemoryGiB string `json:"memory_gib"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	// UptimeBefore and UptimeAfter are `uptime`'s line at the start and the
	// end: the load other processes put on the machine.
	UptimeBefore string `json:"uptime_before"`
	UptimeAfter  string `json:"uptime_after"`
}

// Run is a whole benchmark run.
type Run struct {
	Command  string        `json:"command"`
	Quick    bool          `json:"quick"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Machine  Machine       `json:"machine"`
	// Setup describes what every case shares (broker, database, mock).
	Setup []string `json:"setup"`
	Rows  []Row    `json:"rows"`
	// Failures lists the cases that could not run, with the reason.
	Failures []string `json:"failures,omitempty"`
}

// Finish computes the ratios and checks the goals of every row.
func (r *Run) Finish() error {
	byKey := make(map[string]Row, len(r.Rows))
	for _, row := range r.Rows {
		if _, dup := byKey[row.Key]; dup {
			return fmt.Errorf("two rows have the key %q", row.Key)
		}
		byKey[row.Key] = row
	}
	for i := range r.Rows {
		row := &r.Rows[i]
		row.Ratio = nil
		switch {
		case row.RatioTarget != 0:
			row.Ratio = ptr(row.Value / row.RatioTarget)
		case len(row.RatioTo) > 0:
			base := math.Inf(1)
			for _, k := range row.RatioTo {
				other, ok := byKey[k]
				if !ok {
					base = math.NaN() // a row it refers to did not run
					break
				}
				base = min(base, other.Value)
			}
			if !math.IsNaN(base) && base > 0 {
				row.Ratio = ptr(row.Value / base)
			}
		}
		for j := range row.Goals {
			g := &row.Goals[j]
			g.Met = nil
			v, ok := row.metric(g.Metric)
			if !ok {
				continue
			}
			met, err := g.holds(v)
			if err != nil {
				return fmt.Errorf("row %s: %w", row.Key, err)
			}
			g.Met = &met
		}
	}
	return nil
}

func (row Row) metric(name string) (float64, bool) {
	switch name {
	case MetricValue:
		return row.Value, true
	case MetricRatio:
		if row.Ratio == nil {
			return 0, false
		}
		return *row.Ratio, true
	}
	v, ok := row.Metrics[name]
	return v, ok
}

// Row returns the row with key, if it ran.
func (r *Run) Row(key string) (Row, bool) {
	i := slices.IndexFunc(r.Rows, func(row Row) bool { return row.Key == key })
	if i < 0 {
		return Row{}, false
	}
	return r.Rows[i], true
}

// goalCell is the goals of a row and whether they were met, for a table.
func (row Row) goalCell() (goals, met string) {
	if len(row.Goals) == 0 {
		return "", ""
	}
	var gs, ms []string
	for _, g := range row.Goals {
		gs = append(gs, g.String())
		switch {
		case g.Met == nil:
			ms = append(ms, "n/a")
		case *g.Met:
			ms = append(ms, "yes")
		default:
			ms = append(ms, "NO")
		}
	}
	return strings.Join(gs, "; "), strings.Join(ms, "; ")
}

func (row Row) ratioCell() string {
	if row.Ratio == nil {
		return ""
	}
	to := strings.Join(row.RatioTo, ",")
	if row.RatioTarget != 0 {
		to = "asked " + formatNumber(row.RatioTarget)
	} else if len(row.RatioTo) > 1 {
		to = "min(" + to + ")"
	}
	return fmt.Sprintf("%.3f (÷ %s)", *row.Ratio, to)
}

// WriteTable prints the rows as an aligned table, then each row's
// parameters and notes.
func (r *Run) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "key\tmeasured\tvalue\tunit\tratio\tgoal\tmet")
	for _, row := range r.Rows {
		goals, met := row.goalCell()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Key, row.Name, formatNumber(row.Value), row.Unit, row.ratioCell(), goals, met)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	fmt.Fprintln(w)
	for _, row := range r.Rows {
		fmt.Fprintf(w, "%s: %s\n", row.Key, row.Params)
		if len(row.Metrics) > 0 {
			fmt.Fprintf(w, "    %s\n", metricsText(row.Metrics))
		}
		if row.Note != "" {
			fmt.Fprintf(w, "    note: %s\n", row.Note)
		}
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAILED: %s\n", f)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// WriteMarkdown writes the run as a Markdown document: where it ran, the
// table, and each row's parameters, secondary metrics and notes.
func (r *Run) WriteMarkdown(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# Benchmark results\n\n")
	fmt.Fprintf(b, "Command: `%s`  \n", r.Command)
	fmt.Fprintf(b, "Started %s, took %s%s.\n\n", r.Started.UTC().Format(time.RFC3339), r.Duration.Round(time.Second),
		map[bool]string{true: " (--quick: a smoke run, not for the numbers)", false: ""}[r.Quick])
	m := r.Machine
	fmt.Fprintf(b, "Machine: %s, %d cores (%s), %s GiB, %s, %s.  \n", m.Hostname, m.Cores, m.CPUModel, m.MemoryGiB, m.OS, m.GoVersion)
	fmt.Fprintf(b, "Load before: `%s`  \nLoad after: `%s`\n\n", m.UptimeBefore, m.UptimeAfter)
	if len(r.Setup) > 0 {
		b.WriteString("Shared by every case:\n\n")
		for _, s := range r.Setup {
			fmt.Fprintf(b, "- %s\n", s)
		}
		b.WriteString("\n")
	}
	b.WriteString("| key | measured | value | unit | ratio | goal | met |\n|---|---|--:|---|---|---|---|\n")
	for _, row := range r.Rows {
		goals, met := row.goalCell()
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", row.Key, mdEscape(row.Name), formatNumber(row.Value), row.Unit,
			mdEscape(row.ratioCell()), mdEscape(goals), met)
	}
	b.WriteString("\n## Parameters and details\n\n")
	for _, row := range r.Rows {
		fmt.Fprintf(b, "- **%s** %s: %s", row.Key, mdEscape(row.Name), mdEscape(row.Params))
		if len(row.Metrics) > 0 {
			fmt.Fprintf(b, "  \n  %s", metricsText(row.Metrics))
		}
		if row.Note != "" {
			fmt.Fprintf(b, "  \n  _%s_", mdEscape(row.Note))
		}
		b.WriteString("\n")
	}
	if len(r.Failures) > 0 {
		b.WriteString("\n## Cases that failed\n\n")
		for _, f := range r.Failures {
			fmt.Fprintf(b, "- %s\n", mdEscape(f))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteFiles writes results.json and results.md into dir.
func (r *Run) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write results: encode JSON: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	var md strings.Builder
	if err := r.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func metricsText(m map[string]float64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + formatNumber(m[k])
	}
	return strings.Join(parts, " ")
}

// formatNumber prints a figure with the precision it deserves: whole
// numbers above 100, three significant digits below.
func formatNumber(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func ptr[T any](v T) *T { return &v }
