package integration_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
)

// makeAt runs make in the repository root with env added to a clean
// environment (no inherited MAKEFLAGS or test settings) and returns its
// output.
func makeAt(t *testing.T, env []string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed: %v", err)
	}
	cmd := exec.Command("make", append([]string{"-C", "../.."}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GOFLAGS=" + os.Getenv("GOFLAGS"), "GOPATH=" + os.Getenv("GOPATH"), "GOCACHE=" + os.Getenv("GOCACHE")}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestMakeTestPublicRunsTheSuiteOnPublicImages checks, without pulling
// them (this CI has no registry), that `make test-public` runs this suite
// on postgres:16 and apache/kafka:4.2.0 with the reaper on, and that the
// harness takes those images as a real Postgres and a real Kafka.
func TestMakeTestPublicRunsTheSuiteOnPublicImages(t *testing.T) {
	out := makeAt(t, []string{"NO_REGISTRY=1", "TESTCONTAINERS_RYUK_DISABLED=true"}, "-n", "test-public")
	line := regexp.MustCompile(`(?m)^cd tests/integration && env (.*) go test .*\./\.\.\.$`).FindStringSubmatch(out)
	if line == nil {
		t.Fatalf("make -n test-public does not run go test in tests/integration:\n%s", out)
	}
	env := strings.Fields(line[1])
	for _, want := range []string{"-u", "TESTCONTAINERS_RYUK_DISABLED", "POSTGRES_IMAGE=postgres:16", "KAFKA_IMAGE=apache/kafka:4.2.0"} {
		if !strings.Contains(" "+strings.Join(env, " ")+" ", " "+want+" ") {
			t.Errorf("go test runs with %v, lacking %s", env, want)
		}
	}

	kafka := "apache/kafka:4.2.0"
	if got := harness.BrokerKindOf(kafka); got != harness.ApacheKafka {
		t.Errorf("%s is run as %q, want %q", kafka, got, harness.ApacheKafka)
	}
	t.Setenv("POSTGRES_IMAGE", "postgres:16")
	t.Setenv("KAFKA_IMAGE", kafka)
	im := harness.ImagesFromEnv()
	if im.Postgres != "postgres:16" || im.Kafka != kafka {
		t.Errorf("ImagesFromEnv = %+v, want postgres:16 and %s", im, kafka)
	}
}

// TestRyukIsOffOnlyWithoutARegistry: the Makefile disables the reaper only
// where .ci/run says no registry exists (NO_REGISTRY=1); elsewhere the
// containers of a killed run are reaped.
func TestRyukIsOffOnlyWithoutARegistry(t *testing.T) {
	ryuk := regexp.MustCompile(`(?m)^export TESTCONTAINERS_RYUK_DISABLED=(.*)$`)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, ""},
		{[]string{"NO_REGISTRY=0"}, ""},
		{[]string{"NO_REGISTRY=1"}, "true"},
	} {
		out := makeAt(t, tc.env, "-s", "env")
		m := ryuk.FindStringSubmatch(out)
		if m == nil || m[1] != tc.want {
			t.Errorf("make env with %v: TESTCONTAINERS_RYUK_DISABLED=%v, want %q\n%s", tc.env, m, tc.want, out)
		}
	}
	script, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), `export NO_REGISTRY="${NO_REGISTRY:-1}"`) {
		t.Error(".ci/run does not default NO_REGISTRY to 1: its engine cannot pull the reaper")
	}
}
