package mdtable

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Write renders rows as a Markdown table: the first row is the header; the
// first column is left-aligned, the others right-aligned. Rows shorter than the
// header are padded with empty cells, cells beyond it are left out. Write errors
// of w are ignored (w is a terminal or a buffer).
func Write(w io.Writer, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	// At least 2 wide, so a right-aligned column's rule is "-:"; widths in runes,
	// as fmt pads.
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c), 2)
			}
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("|")
		for i := range widths {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			if i == 0 {
				fmt.Fprintf(&b, " %-*s |", widths[i], c)
			} else {
				fmt.Fprintf(&b, " %*s |", widths[i], c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	var b strings.Builder
	b.WriteString("|")
	for i, wd := range widths {
		if i == 0 {
			b.WriteString(" " + strings.Repeat("-", wd) + " |")
		} else {
			b.WriteString(" " + strings.Repeat("-", wd-1) + ": |")
		}
	}
	fmt.Fprintln(w, b.String())
	for _, r := range rows[1:] {
		line(r)
	}
}
