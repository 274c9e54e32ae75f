package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"
)

// podTimeline is what the agent serves on /debug/pods/{namespace}/{name}/
// timeline: what happened to a pod and why, oldest first.
type podTimeline struct {
	Namespace string          `json:"namespace"`
	Name      string          `json:"name"`
	UID       string          `json:"uid"`
	Entries   []timelineEntry `json:"entries"`
	// Dropped counts older entries the agent let go to stay in bounds.
	Dropped int `json:"dropped,omitempty"`
	// Gone is when the pod left the node.
	Gone *time.Time `json:"gone,omitempty"`
}

// timelineEntry is one thing that happened to a pod. Kind is Source, PLEG,
// Sync, BackOff, Image, Hook, Probe, CRI or Status; Event ("Normal",
// "Warning") marks what was also reported as a kubelet Event, with Reason
// and Message its reason and message.
type timelineEntry struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Container string    `json:"container,omitempty"`
	What      string    `json:"what"`
	Reason    string    `json:"reason,omitempty"`
	Message   string    `json:"message,omitempty"`
	Duration  string    `json:"duration,omitempty"`
	Error     string    `json:"error,omitempty"`
	Event     string    `json:"event,omitempty"`
}

// timeline asks for a pod's timeline; an agent without one answers 404.
func (c *client) timeline(ctx context.Context, namespace, name string) (*podTimeline, error) {
	var tl podTimeline
	path := "/debug/pods/" + url.PathEscape(namespace) + "/" + url.PathEscape(name) + "/timeline"
	if err := c.getJSON(ctx, path, &tl); err != nil {
		return nil, fmt.Errorf("timeline of pod %s/%s: %w", namespace, name, err)
	}
	return &tl, nil
}

// event is kubectl's Event as describe shows it: identical events are
// counted, as the kubelet's recorder aggregates them.
type event struct {
	typ, reason, message string
	first, last          time.Time
	count                int
}

// events writes the Events section from the timeline's user-facing entries
// (standalone, the agent reports its events nowhere else).
func (d *describer) events(tl *podTimeline, pod *v1.Pod) {
	var evs []*event
	byKey := map[string]*event{}
	if tl != nil {
		for _, e := range tl.Entries {
			if e.Event == "" {
				continue
			}
			msg := strings.TrimSpace(e.Message)
			if path := fieldPath(pod, e.Container); path != "" {
				msg = path + ": " + msg
			}
			key := e.Event + "\x00" + e.Reason + "\x00" + msg
			if ev := byKey[key]; ev != nil {
				ev.count++
				ev.last = e.Time
				continue
			}
			ev := &event{typ: e.Event, reason: e.Reason, message: msg, first: e.Time, last: e.Time, count: 1}
			byKey[key] = ev
			evs = append(evs, ev)
		}
	}
	if len(evs) == 0 {
		d.line(0, "Events:\t<none>")
		return
	}
	d.tw.Flush() // the events table is aligned on its own, as kubectl's
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].last.Before(evs[j].last) })
	d.line(0, "Events:")
	d.line(1, "Type\tReason\tAge\tFrom\tMessage")
	d.line(1, "----\t------\t----\t----\t-------")
	for _, ev := range evs {
		age := since(ev.first, d.now)
		if ev.count > 1 {
			age = fmt.Sprintf("%s (x%d over %s)", since(ev.last, d.now), ev.count, age)
		}
		d.line(1, "%s\t%s\t%s\t%s\t%s", ev.typ, ev.reason, age, "kubelet", ev.message)
	}
}

// fieldPath is the involved object's field path of an event about a
// container, as the kubelet sets it: spec.containers{app}.
func fieldPath(pod *v1.Pod, container string) string {
	if container == "" {
		return ""
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == container {
			return "spec.initContainers{" + container + "}"
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == container {
			return "spec.ephemeralContainers{" + container + "}"
		}
	}
	return "spec.containers{" + container + "}"
}

// writeTimeline writes every entry of tl (which has some), oldest first,
// within width columns: the time since the first entry with milliseconds,
// the kind and the container in columns, then what happened, why, how long
// it took, and its message and error:
//
//	+10.485s  BackOff  app  back-off restarting container: BackOff [20s] — Back-off restarting failed container app in pod ...
//
// The message goes on the lines below, indented, when the line would be too
// long; long text wraps under its column.
func writeTimeline(w io.Writer, tl *podTimeline, width int) error {
	origin := tl.Entries[0].Time
	notes := []string{"times from " + origin.Format("2006-01-02T15:04:05.000Z07:00")}
	if tl.Dropped > 0 {
		notes = append(notes, fmt.Sprintf("%d older entries dropped", tl.Dropped))
	}
	if tl.Gone != nil {
		notes = append(notes, "pod gone at "+offset(tl.Gone.Sub(origin)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Timeline:  (%s)\n", strings.Join(notes, "; "))

	const indent, gap, maxContainer = 2, 2, 20
	header := []string{"TIME", "KIND", "CONTAINER"}
	widths := []int{len(header[0]), len(header[1]), len(header[2])}
	cols := make([][]string, len(tl.Entries))
	for i, e := range tl.Entries {
		cols[i] = []string{offset(e.Time.Sub(origin)), e.Kind, e.Container}
		for j, c := range cols[i] {
			n := utf8.RuneCountInString(c)
			if j == 2 {
				n = min(n, maxContainer) // a longer name pushes its line's text right
			}
			widths[j] = max(widths[j], n)
		}
	}
	text := indent // where the text starts
	for _, n := range widths {
		text += n + gap
	}
	room := max(width-text, 40)
	pad := func(cells []string) string {
		var s strings.Builder
		s.WriteString(strings.Repeat(" ", indent))
		for j, c := range cells {
			s.WriteString(c)
			s.WriteString(strings.Repeat(" ", max(widths[j]-utf8.RuneCountInString(c), 0)+gap))
		}
		return s.String()
	}
	b.WriteString(pad(header) + "WHAT: WHY [TOOK] — MESSAGE\n")
	for i, e := range tl.Entries {
		head := e.What
		if e.Reason != "" {
			head += ": " + e.Reason
		}
		if e.Duration != "" {
			head += " [" + shortDuration(e.Duration) + "]"
		}
		var details []string
		if m := strings.TrimSpace(e.Message); m != "" {
			details = append(details, m)
		}
		if e.Error != "" {
			details = append(details, "error: "+strings.TrimSpace(e.Error))
		}
		message := strings.Join(details, "; ")
		first := pad(cols[i])
		if message != "" && utf8.RuneCountInString(first)+utf8.RuneCountInString(head)+3+utf8.RuneCountInString(message) <= width {
			b.WriteString(first + head + " — " + message + "\n")
			continue
		}
		if utf8.RuneCountInString(first) > text { // a long container name: the text on the next line
			b.WriteString(strings.TrimRight(first, " ") + "\n")
			first = strings.Repeat(" ", text)
		}
		lines, _ := wrap(head, room)
		for k, l := range lines {
			if k > 0 {
				first = strings.Repeat(" ", text)
			}
			b.WriteString(first + l + "\n")
		}
		lines, _ = wrap(message, room-2)
		for _, l := range lines {
			b.WriteString(strings.Repeat(" ", text+2) + l + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shortDuration rounds a duration's text to what a reader needs: 142.7ms,
// 1.2s, 10s.
func shortDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// offset is a time since the timeline's origin: +1.234s, +2m03.456s,
// +1h02m03s.
func offset(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%s%.3fs", sign, d.Seconds())
	case d < time.Hour:
		m := d / time.Minute
		return fmt.Sprintf("%s%dm%06.3fs", sign, m, (d - m*time.Minute).Seconds())
	}
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	return fmt.Sprintf("%s%dh%02dm%02ds", sign, h, m, (d%time.Minute)/time.Second)
}

// wrap breaks s into lines of at most width characters, at spaces where it
// can; cut says whether a word had to be cut.
func wrap(s string, width int) (lines []string, cut bool) {
	width = max(width, 8)
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			for utf8.RuneCountInString(word) > width {
				cut = true
				if line != "" {
					lines = append(lines, line)
					line = ""
				}
				r := []rune(word)
				lines = append(lines, string(r[:width]))
				word = string(r[width:])
			}
			switch {
			case line == "":
				line = word
			case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
				line += " " + word
			default:
				lines = append(lines, line)
				line = word
			}
		}
		if line != "" {
			lines = append(lines, line)
		}
	}
	return lines, cut
}
