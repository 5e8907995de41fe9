package screen

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPlainOutputPrintsChangedStatusAtMostOncePerInterval(t *testing.T) {
	var b strings.Builder
	s := New(&b, false, time.Second)
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }

	s.Status("a") // printed
	s.Status("b") // too soon
	clock = clock.Add(time.Second)
	s.Status("b") // printed
	clock = clock.Add(time.Second)
	s.Status("b") // unchanged
	s.Printf("phase %d", 2)
	s.Flush("c") // always printed
	want := "  · a\n  · b\nphase 2\n  · c\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestLiveOutputRedrawsTheStatusBelowNarration(t *testing.T) {
	var b strings.Builder
	s := New(&b, true, 0)
	s.Status("1 in")
	s.Status("1 in") // unchanged: nothing written
	s.Printf("hello")
	s.Status("2 in")
	s.Stop()
	const erase = "\r\x1b[2K"
	want := "  ▸ 1 in" + erase + "hello\n" + "  ▸ 1 in" + erase + "  ▸ 2 in" + erase
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("output (-want +got):\n%q", diff)
	}
}
