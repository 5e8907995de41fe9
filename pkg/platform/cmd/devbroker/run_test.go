package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/testcert"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// readLine reads the advertised address devbroker prints when it is ready.
func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("devbroker did not print its address")
		return ""
	}
}

// produceAndConsume writes one record to orders and reads it back with a
// consumer group.
func produceAndConsume(t *testing.T, client kafkaclient.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	w, err := client.NewWriter("orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("order-1"), Value: []byte("created")}); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	w.Close()
	r, err := client.NewReader(kafka.ReaderConfig{GroupID: "reefer-manager", Topic: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("FetchMessage: %v", err)
	}
	if string(m.Value) != "created" {
		t.Errorf("read %q, want created", m.Value)
	}
	if err := r.CommitMessages(ctx, m); err != nil {
		t.Errorf("CommitMessages: %v", err)
	}
}

// metadata returns the brokers and partition counts a client dialing addr
// is told.
func metadata(t *testing.T, client kafkaclient.Config, addr string) ([]string, map[string]int) {
	t.Helper()
	d, err := client.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	brokers, err := conn.Brokers()
	if err != nil {
		t.Fatalf("brokers: %v", err)
	}
	var hosts []string
	for _, b := range brokers {
		hosts = append(hosts, net.JoinHostPort(b.Host, strconv.Itoa(b.Port)))
	}
	parts, err := conn.ReadPartitions()
	if err != nil {
		t.Fatalf("partitions: %v", err)
	}
	counts := map[string]int{}
	for _, p := range parts {
		counts[p.Topic]++
	}
	return hosts, counts
}

func TestRunServesKafkaGoAndStopsOnCancel(t *testing.T) {
	certs := testcert.New(t, "localhost", "127.0.0.1")
	tests := []struct {
		name      string
		extraArgs []string
		advertise func(port string) string // what devbroker must advertise
		client    kafkaclient.Config
	}{
		{
			name:      "bound address advertised by default",
			advertise: func(port string) string { return "127.0.0.1:" + port },
		},
		{
			name:      "advertises what it is told",
			extraArgs: []string{"--advertise", "localhost"},
			advertise: func(port string) string { return "localhost:" + port },
		},
		{
			name:      "TLS and SASL PLAIN",
			extraArgs: []string{"--advertise", "localhost", "--tls-cert", certs.ServerCertFile, "--tls-key", certs.ServerKeyFile, "--sasl-user", "svc", "--sasl-password", "pw"},
			advertise: func(port string) string { return "localhost:" + port },
			client: kafkaclient.Config{
				TLS:  kafkaclient.TLSConfig{Enabled: true, CAFile: certs.CAFile},
				SASL: kafkaclient.SASLConfig{Mechanism: "plain", Username: "svc", Password: "pw"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			args := append([]string{"--listen", "127.0.0.1:" + port, "--topics", "orders:6"}, tt.extraArgs...)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stdoutR, stdoutW := io.Pipe()
			var stderr syncBuffer
			done := make(chan error, 1)
			go func() { done <- run(ctx, args, stdoutW, &stderr) }()

			addr := readLine(t, stdoutR)
			want := tt.advertise(port)
			if addr != want {
				t.Errorf("printed address %q, want %q", addr, want)
			}
			client := tt.client
			client.Brokers = []string{addr}
			brokers, topics := metadata(t, client, "127.0.0.1:"+port)
			if diff := cmp.Diff([]string{want}, brokers); diff != "" {
				t.Errorf("advertised brokers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]int{"orders": 6}, topics); diff != "" {
				t.Errorf("topics (-want +got):\n%s", diff)
			}
			produceAndConsume(t, client)

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run = %v, want nil after cancel", err)
				}
			case <-time.After(30 * time.Second): // generous: a loaded -race run
				t.Fatal("run did not return after its context was cancelled")
			}
			logs := stderr.String()
			for _, w := range []string{"for development and tests", "production uses a real Kafka cluster", "devbroker stopped"} {
				if !strings.Contains(logs, w) {
					t.Errorf("logs lack %q:\n%s", w, logs)
				}
			}
		})
	}
}

func TestBadFlagsPrintUsageAndAreUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined: -bogus"},
		{"bad topics", []string{"--topics", "orders:x"}, `partition count "x"`},
		{"bad log level", []string{"--log-level", "loud"}, `invalid value "loud" for flag -log-level`},
		{"bad log format", []string{"--log-format", "xml"}, `--log-format "xml": want text or json`},
		{"certificate without key", []string{"--tls-cert", "server.pem"}, "--tls-cert and --tls-key go together"},
		{"user without password", []string{"--sasl-user", "svc"}, "--sasl-user and --sasl-password go together"},
		{"unknown mechanism", []string{"--sasl-mechanism", "GSSAPI"}, `--sasl-mechanism "GSSAPI"`},
		{"no partitions for auto-created topics", []string{"--default-partitions", "0"}, "--default-partitions 0: want at least 1"},
		{"positional argument", []string{"orders:6"}, `unexpected arguments ["orders:6"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			if !errors.Is(err, errUsage) {
				t.Errorf("run(%q) = %v, want a usage error (exit status 2)", tt.args, err)
			}
			for _, w := range []string{tt.want, "Usage:", "for development and tests"} {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

func TestHelpSaysItIsForDevelopmentAndTests(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--help"}, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run(--help) = %v, want flag.ErrHelp (exit status 0)", err)
	}
	help := strings.Join(strings.Fields(stderr.String()), " ")
	for _, w := range []string{"for development and tests", "Production uses a real Kafka cluster", "-advertise", "-topics", "containers:6,order-dead-letter:3,order-retries:6,orders:6"} {
		if !strings.Contains(help, w) {
			t.Errorf("help lacks %q:\n%s", w, stderr.String())
		}
	}
}

func TestRunFailsWhenThePortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"--listen", ln.Addr().String()}, &stdout, &stderr)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("run on a taken port = %v, want a runtime error naming the address", err)
	}
}

// TestBinaryStopsCleanlyOnSIGTERM builds the command and runs it as a
// process, as make demo and the images do.
func TestBinaryStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "devbroker")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := freePort(t)
	dataDir := t.TempDir()
	cmd := exec.Command(bin, "--listen", "127.0.0.1:"+port, "--topics", "orders:6", "--data-dir", dataDir, "--log-format", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // only if the test fails before Wait

	addr := readLine(t, stdout)
	if addr != "127.0.0.1:"+port {
		t.Errorf("printed address %q, want 127.0.0.1:%s", addr, port)
	}
	produceAndConsume(t, kafkaclient.Config{Brokers: []string{addr}})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("devbroker exited with %v after SIGTERM, want status 0\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatalf("devbroker did not exit after SIGTERM\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"devbroker stopped"`) {
		t.Errorf("logs lack the stop message:\n%s", stderr.String())
	}
	// With --data-dir, the state was saved on the way out.
	entries, err := os.ReadDir(dataDir)
	if err != nil || len(entries) == 0 {
		t.Errorf("data dir after shutdown: %v entries, err %v; want saved state", len(entries), err)
	}
}
