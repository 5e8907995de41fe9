package harness

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// failureTailLines is how much of each container's log a failed test
// prints; the whole log is in the artifact directory.
const failureTailLines = 40

// keepLogs saves the container's whole log (every run of it, restarts
// included) as <name>.log in the test's artifact directory when the test
// ends, and prints its tail when the test failed. Registered after
// CleanupContainer, it runs before the container is removed.
//
// Run `go test -artifacts -outputdir out ...` to keep the files.
func keepLogs(tb testing.TB, name string, ctr logSource) {
	// Asked now: asked first during clean-up, the directory would be
	// removed by a clean-up of its own before the other logs are saved.
	dir := tb.ArtifactDir()
	tb.Cleanup(func() {
		if ctr == nil || reflect.ValueOf(ctr).IsNil() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rc, err := ctr.Logs(ctx)
		if err != nil {
			tb.Logf("logs of %s: %v", name, err)
			return
		}
		defer rc.Close()
		logs, err := io.ReadAll(rc)
		if err != nil {
			tb.Logf("logs of %s: %v", name, err)
		}
		path := filepath.Join(dir, name+".log")
		if err := os.WriteFile(path, logs, 0o644); err != nil {
			tb.Logf("save logs of %s: %v", name, err)
		}
		if tb.Failed() {
			tb.Logf("last lines of %s's log (all of it: %s):\n%s", name, path, tail(logs, failureTailLines))
		}
	})
}

// logSource is what keepLogs needs of a container.
type logSource interface {
	Logs(ctx context.Context) (io.ReadCloser, error)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
