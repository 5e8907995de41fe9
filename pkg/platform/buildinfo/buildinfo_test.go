package buildinfo_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/buildinfo"
)

func TestGaugeIsOneWithTheBuildFactsAsLabels(t *testing.T) {
	g := buildinfo.Gauge(prometheus.GaugeOpts{Namespace: "svc", Name: "build_info", Help: "Build.",
		ConstLabels: prometheus.Labels{"service": "svc"}},
		buildinfo.Info{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.26.0"})
	want := `# HELP svc_build_info Build.
# TYPE svc_build_info gauge
svc_build_info{goversion="go1.26.0",revision="abc123",service="svc",version="v1.2.3"} 1
`
	if err := testutil.CollectAndCompare(g, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestReadKnowsTheToolchain(t *testing.T) {
	info := buildinfo.Read()
	if info.GoVersion != runtime.Version() {
		t.Errorf("goversion %q, want %q", info.GoVersion, runtime.Version())
	}
	// A test binary has build info; its main module has some version.
	if info.Version == "" || info.Revision == "" {
		t.Errorf("empty facts: %+v", info)
	}
}
