package render

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// color is an ANSI SGR code; 0 means none.
type color int

const (
	plain  color = 0
	bold   color = 1
	red    color = 31
	green  color = 32
	yellow color = 33
	cyan   color = 36
	faint  color = 2
)

// cell is one table cell: text and how to color it.
type cell struct {
	text  string
	color color
}

// table aligns cells by their visible width, so color codes never shift
// the columns (text/tabwriter counts escape codes as text).
type table struct {
	header []string
	rows   [][]cell
}

func (t *table) add(cells ...cell) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer, useColor bool) error {
	// Cells hold record contents: no control character reaches the
	// terminal, and none shifts the columns.
	for _, r := range t.rows {
		for i := range r {
			r[i].text = CleanLine(r[i].text)
		}
	}
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	var b strings.Builder
	line := func(cells []cell) {
		for i, c := range cells {
			last := i == len(cells)-1
			b.WriteString(paint(c.text, c.color, useColor))
			if !last {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		b.WriteByte('\n')
	}
	head := make([]cell, len(t.header))
	for i, h := range t.header {
		head[i] = cell{h, bold}
	}
	line(head)
	for _, r := range t.rows {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// paint wraps text in an SGR color when colors are on.
func paint(text string, c color, useColor bool) string {
	if !useColor || c == plain || text == "" {
		return text
	}
	return fmt.Sprintf("\x1b[%dm%s\x1b[0m", c, text)
}

// shorten cuts text to n runes on one line, marking the cut with "…".
func shorten(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) <= n {
		return text
	}
	r := []rune(text)
	return string(r[:n-1]) + "…"
}
