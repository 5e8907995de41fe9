package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testdata/gotest.json is the real output of `go test -json ./...` (Go
// 1.26) over five packages: one with a passing and a failing test (with a
// failing subtest), one whose test panics, one that does not build, one
// with a slow passing and a skipped test, one without tests; and a line of
// go's own stderr before it.
func TestFormatPrintsWhatGoTestPrintsWithoutV(t *testing.T) {
	in, err := os.Open(filepath.Join("testdata", "gotest.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out, times bytes.Buffer
	if err := format(in, &out, &times); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"go: downloading example.com/m v1.0.0\n", // not JSON: copied
		"    a_test.go:7: boom\n",                // a failed test's output
		"--- FAIL: TestBad (",
		"FAIL\ttrx/a\t",
		"panic: oops",
		"FAIL\ttrx/b\t",
		"c/c_test.go:5:28: undefined: undefined\n", // the build error
		"FAIL\ttrx/c [build failed]\n",
		"ok  \ttrx/d\t",
		"?   \ttrx/e\t[no test files]\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"quiet", "=== RUN", "TestOK", "not here", "\nPASS\n"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output has %q, which go test without -v does not print:\n%s", unwanted, got)
		}
	}
	// One line per top-level test, subtests left out.
	var lines []string
	for l := range strings.Lines(times.String()) {
		f := strings.Split(strings.TrimSpace(l), "\t")
		lines = append(lines, f[1]+" "+f[2]+" "+f[3])
	}
	want := []string{"pass trx/a TestOK", "fail trx/a TestBad", "fail trx/b TestPanics", "pass trx/d TestSlow", "skip trx/d TestSkipped"}
	if !slices.Equal(want, lines) {
		t.Errorf("times:\n%q\nwant\n%q", lines, want)
	}
	if !strings.HasPrefix(times.String(), "0.00\tpass\ttrx/a\tTestOK\n") || !strings.Contains(times.String(), "0.30\tpass\ttrx/d\tTestSlow\n") {
		t.Errorf("times file:\n%s", times.String())
	}
}

func TestSlowestSortsByDuration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "times.tsv")
	data := "0.50\tpass\tp/a\tTestA\n12.00\tpass\tp/b\tTestB\nnot a line\n3.25\tfail\tp/a\tTestC\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-slowest", "2", path}, nil, &out); err != nil {
		t.Fatal(err)
	}
	want := "slowest 2 of 3 tests (seconds, result, package, test):\n" +
		"   12.00s  pass  p/b TestB\n" +
		"    3.25s  fail  p/a TestC\n"
	if got := out.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{{"-slowest", "3"}, {"extra"}, {"-slowest", "3", filepath.Join(t.TempDir(), "missing")}} {
		if err := run(args, strings.NewReader(""), &bytes.Buffer{}); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}
