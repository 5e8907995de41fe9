package timeline

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gonum.org/v1/plot/vg"

	"github.com/reeferdlq/reefer-dlq/deployments/local/tracker"
)

// story makes samples that look like a demo run: orders flowing in, a
// retry wave, dead letters that pile up and drain.
func story() ([]tracker.Sample, []Phase) {
	var out []tracker.Sample
	for i := 0; i <= 200; i++ {
		at := time.Duration(i) * 100 * time.Millisecond
		var c tracker.Counts
		c.In = min(i*6, 600)
		switch {
		case i < 60:
			c.FirstAttempt = min(5, c.In)
			c.Allocated = c.In - c.FirstAttempt
		case i < 120:
			c.Retrying[1], c.Retrying[2], c.Retrying[3] = 20, 6, 2
			c.FirstAttempt = 5
			c.Allocated = c.In - 33
		default:
			c.DeadTransient = min(i-120, 60)
			c.DeadPermanent = 3
			c.Allocated = c.In - c.DeadTransient - c.DeadPermanent
		}
		c.Rejected = c.Allocated / 25
		c.Allocated -= c.Rejected
		out = append(out, tracker.Sample{At: at, Counts: c})
	}
	phases := []Phase{
		{"1 healthy", 0, 6 * time.Second},
		{"2 flaky", 6 * time.Second, 12 * time.Second},
		{"3 outage", 12 * time.Second, 16 * time.Second},
		{"4 heal + redrive", 16 * time.Second, 20 * time.Second},
	}
	return out, phases
}

func TestWriteDrawsAPNG(t *testing.T) {
	samples, phases := story()
	path := filepath.Join(t.TempDir(), "sub", "timeline.png")
	if err := Write(path, "reefer-dlq demo", samples, phases); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if got := img.Bounds().Dx(); got != int(width/vg.Inch*dpi) {
		t.Errorf("width %d px; want %d", got, int(width/vg.Inch*dpi))
	}
	if out := os.Getenv("TIMELINE_OUT"); out != "" {
		os.WriteFile(out, b, 0o644)
	}
}

func TestWriteRefusesTooFewSamples(t *testing.T) {
	if err := Write(filepath.Join(t.TempDir(), "x.png"), "", []tracker.Sample{{}}, nil); err == nil {
		t.Fatal("one sample: no error")
	}
}

func TestSecondsTickerLabelsRoundSeconds(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []string
	}{
		{0, 29, []string{"0", "5", "10", "15", "20", "25"}},
		{0, 9.5, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		{0, 100, []string{"0", "10", "20", "30", "40", "50", "60", "70", "80", "90", "100"}},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range (secondsTicker{}).Ticks(tt.lo, tt.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Ticks(%g, %g) labels (-want +got):\n%s", tt.lo, tt.hi, diff)
		}
	}
}
