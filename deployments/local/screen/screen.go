package screen

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Screen writes narration and a status line to one writer. It is safe for
// concurrent use.
type Screen struct {
	w     io.Writer
	live  bool
	every time.Duration
	now   func() time.Time

	mu        sync.Mutex
	status    string // the status line on screen (live) or last printed (plain)
	shown     bool   // live: the status line is on screen
	lastPlain time.Time
}

// New returns a screen on w. live says w is a terminal (redraw in place);
// otherwise Status prints a plain line at most once per every (0: 2s).
func New(w io.Writer, live bool, every time.Duration) *Screen {
	if every <= 0 {
		every = 2 * time.Second
	}
	return &Screen{w: w, live: live, every: every, now: time.Now}
}

// Live reports whether the status line is redrawn in place.
func (s *Screen) Live() bool { return s.live }

// Printf prints narration (a newline is added when missing).
func (s *Screen) Printf(format string, args ...any) {
	s.Write([]byte(fmt.Sprintf(format, args...)))
}

// Write prints p as narration, above the live status line.
func (s *Screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := string(p)
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	s.clearLocked()
	_, err := io.WriteString(s.w, text)
	s.drawLocked()
	return len(p), err
}

// Status replaces the status line. On a terminal it is redrawn at once;
// otherwise it is printed when it changed and the last print is older
// than the interval.
func (s *Screen) Status(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live {
		if line == s.status && s.shown {
			return
		}
		s.status = line
		s.clearLocked()
		s.drawLocked()
		return
	}
	if line == s.status || s.now().Sub(s.lastPlain) < s.every {
		return
	}
	s.status, s.lastPlain = line, s.now()
	fmt.Fprintf(s.w, "  · %s\n", line)
}

// Flush prints the current status once more as a plain line (whatever the
// interval) and leaves it on screen: the last state of a phase, kept.
func (s *Screen) Flush(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
	s.status = line
	fmt.Fprintf(s.w, "  · %s\n", line)
	s.lastPlain = s.now()
	s.shown = false
}

// Stop erases the live status line, so what follows starts on a clean line.
func (s *Screen) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
	s.status = ""
}

func (s *Screen) clearLocked() {
	if s.live && s.shown {
		io.WriteString(s.w, "\r\x1b[2K")
		s.shown = false
	}
}

func (s *Screen) drawLocked() {
	if s.live && s.status != "" {
		io.WriteString(s.w, "  ▸ "+s.status)
		s.shown = true
	}
}
