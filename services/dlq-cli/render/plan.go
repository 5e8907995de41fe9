package render

import (
	"fmt"
	"strconv"
)

// PlanRow is one line of a dry run: what would happen to one dead letter.
type PlanRow struct {
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	OrderID   string `json:"orderID"`
	Reason    string `json:"reason"`
	// Action is "redrive", "resolve" or "refuse".
	Action string `json:"action"`
	// Target is the topic a redrive would publish to.
	Target string `json:"target,omitempty"`
	// RedriveCount is the x-dlq-redrive-count the copy would carry.
	RedriveCount int `json:"redriveCount,omitempty"`
	// Why a refusal.
	Why string `json:"why,omitempty"`
}

// Plan prints what a dry run would do.
func (p Printer) Plan(rows []PlanRow) error {
	switch p.Format {
	case JSON:
		if rows == nil {
			rows = []PlanRow{}
		}
		return writeJSON(p.W, rows)
	case JSONL:
		enc := newEncoder(p.W)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	t := table{header: []string{"POSITION", "ORDER", "REASON", "WOULD", "TO", "REDRIVE COUNT"}}
	for _, r := range rows {
		would := cell{r.Action, green}
		to, count := r.Target, strconv.Itoa(r.RedriveCount)
		if r.Action == "refuse" {
			would = cell{"refuse", red}
			to, count = shorten(r.Why, messageWidth), "-"
		}
		if r.Action == "resolve" {
			to, count = "-", "-"
		}
		t.add(
			cell{fmt.Sprintf("%d:%d", r.Partition, r.Offset), plain},
			cell{orDash(r.OrderID), cyan},
			cell{orDash(r.Reason), plain},
			would,
			cell{orDash(to), plain},
			cell{count, plain},
		)
	}
	return t.write(p.W, p.Color)
}

// Outcome is the JSON shape of what a redrive, edit or resolve run did.
type Outcome struct {
	Command  string `json:"command"`
	DryRun   bool   `json:"dryRun"`
	Selected int    `json:"selected"`
	Redriven int    `json:"redriven"`
	Resolved int    `json:"resolved"`
	Refused  int    `json:"refused"`
	Target   string `json:"target,omitempty"`
	// Stopped says why the run ended before the end, if it did.
	Stopped string `json:"stopped,omitempty"`
}

// Outcome prints the result of a run: a sentence, or one JSON object.
func (p Printer) Outcome(o Outcome) error {
	if p.Format != Table {
		return writeJSONLine(p.W, o)
	}
	var msg string
	verb := "redriven"
	if o.DryRun {
		verb = "would redrive"
	}
	switch o.Command {
	case "resolve":
		if o.DryRun {
			msg = fmt.Sprintf("dry run: would mark %d of %d selected dead letters resolved; nothing was changed", o.Resolved, o.Selected)
		} else {
			msg = fmt.Sprintf("marked %d of %d selected dead letters resolved", o.Resolved, o.Selected)
		}
	default:
		msg = fmt.Sprintf("%s %d of %d selected dead letters to %s", verb, o.Redriven, o.Selected, o.Target)
		if o.Refused > 0 {
			msg += fmt.Sprintf("; refused %d (listed above)", o.Refused)
		}
		if o.DryRun {
			msg = "dry run: " + msg + "; nothing was changed"
		}
	}
	if o.Stopped != "" {
		msg += "; stopped early: " + o.Stopped
	}
	_, err := fmt.Fprintln(p.W, msg)
	return err
}
