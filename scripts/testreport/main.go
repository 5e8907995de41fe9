// Command testreport turns the output of `go test -json` back into what
// `go test` prints without -v, and records how long each test took, so
// that `make test` can show the slowest tests before one becomes flaky.
//
//	go test -json ./... 2>&1 | testreport -times bin/test-times.tsv
//	testreport -slowest 10 bin/test-times.tsv
//
// In the first form it copies each package's own lines (ok, FAIL, "no test
// files", build errors), the output of every test that failed, and every
// line that is not JSON (go's own messages on stderr), and appends one line
// per finished top-level test to the -times file: seconds, result, package,
// test. The output of a passing test is dropped, as go test drops it. In
// the second form it prints the n slowest tests of such a file.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("testreport", flag.ContinueOnError)
	times := fs.String("times", "", "append the duration of each top-level test to this file")
	slowest := fs.Int("slowest", 0, "print the n slowest tests of the times file given as argument, and nothing else")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *slowest > 0 {
		if fs.NArg() != 1 {
			return errors.New("-slowest wants one times file as argument")
		}
		return printSlowest(fs.Arg(0), *slowest, stdout)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var timesFile io.Writer = io.Discard
	if *times != "" {
		f, err := os.OpenFile(*times, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		timesFile = f
	}
	return format(stdin, stdout, timesFile)
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail
	Test       string
	Elapsed    float64
	Output     string
}

// format copies what go test would print without -v and writes the times.
func format(in io.Reader, out, times io.Writer) error {
	w := bufio.NewWriter(out)
	defer w.Flush()
	// The output of each running top-level test and its subtests, in
	// arrival order, until it passes (dropped) or fails (printed). Keyed
	// by package and top-level test.
	held := map[[2]string][]string{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event: go's own messages, merged from stderr.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		top, _, _ := strings.Cut(e.Test, "/")
		key := [2]string{e.Package, top}
		switch {
		case e.Action == "build-output":
			w.WriteString(e.Output)
		case e.Test == "" && e.Action == "output":
			// A package's own lines; go test without -v prints no bare PASS.
			if e.Output != "PASS\n" {
				w.WriteString(e.Output)
			}
		case e.Test == "" && (e.Action == "pass" || e.Action == "fail"):
			// The package is done: output of tests that never reported a
			// result (a panic, the -timeout) explains its failure.
			for k, lines := range held {
				if k[0] == e.Package {
					if e.Action == "fail" {
						writeHeld(w, lines)
					}
					delete(held, k)
				}
			}
		case e.Test != "" && e.Action == "output":
			held[key] = append(held[key], e.Output)
		case e.Test != "" && e.Test == top && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			if e.Action == "fail" {
				writeHeld(w, held[key])
			}
			delete(held, key)
			if _, err := fmt.Fprintf(times, "%.2f\t%s\t%s\t%s\n", e.Elapsed, e.Action, e.Package, e.Test); err != nil {
				return err
			}
		}
		if e.Test == "" || e.Action == "fail" {
			// Show progress as go test does: a package's lines at once.
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

// writeHeld writes a failed test's output without the lines that only -v
// prints (=== RUN, PAUSE, CONT, NAME).
func writeHeld(w *bufio.Writer, lines []string) {
	for _, l := range lines {
		if !strings.HasPrefix(l, "=== ") {
			w.WriteString(l)
		}
	}
}

// timing is one line of the times file.
type timing struct {
	seconds float64
	line    string
}

// printSlowest prints the n slowest tests of the times file.
func printSlowest(path string, n int, out io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var all []timing
	for l := range strings.Lines(string(data)) {
		fields := strings.SplitN(strings.TrimSpace(l), "\t", 4)
		if len(fields) != 4 {
			continue
		}
		s, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		all = append(all, timing{s, fmt.Sprintf("%8.2fs  %-4s  %s %s", s, fields[1], fields[2], fields[3])})
	}
	slices.SortStableFunc(all, func(a, b timing) int {
		switch {
		case a.seconds > b.seconds:
			return -1
		case a.seconds < b.seconds:
			return 1
		}
		return 0
	})
	fmt.Fprintf(out, "slowest %d of %d tests (seconds, result, package, test):\n", min(n, len(all)), len(all))
	for _, t := range all[:min(n, len(all))] {
		fmt.Fprintln(out, t.line)
	}
	return nil
}
