package validate

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Stand-ins for the Kafka tools topic-init.sh calls. kafka-topics.sh keeps
// the topics in $STATE (one file per topic holding its partition count) and
// logs every call to $STATE/calls; kafka-broker-api-versions.sh lists as
// many brokers as the next line of $STATE/brokers says (the last line once
// they are used up).
const (
	stubTopics = `#!/bin/sh
echo "kafka-topics.sh $*" >>"$STATE/calls"
topic= partitions= describe=
while [ $# -gt 0 ]; do
	case $1 in
	--topic) topic=$2; shift ;;
	--partitions) partitions=$2; shift ;;
	--describe) describe=1 ;;
	esac
	shift
done
if [ -n "$describe" ]; then
	[ -f "$STATE/topic.$topic" ] || { echo "Topic '$topic' does not exist" >&2; exit 1; }
	printf 'Topic: %s\tTopicId: x\tPartitionCount: %s\tReplicationFactor: 1\tConfigs: \n' "$topic" "$(cat "$STATE/topic.$topic")"
	exit 0
fi
[ -f "$STATE/topic.$topic" ] || echo "$partitions" >"$STATE/topic.$topic"
`
	stubBrokers = `#!/bin/sh
echo "kafka-broker-api-versions.sh $*" >>"$STATE/calls"
n=$(head -n 1 "$STATE/brokers")
[ "$(wc -l <"$STATE/brokers")" -gt 1 ] && sed -i 1d "$STATE/brokers"
i=1
while [ "$i" -le "$n" ]; do
	echo "kafka-$i:29092 (id: $i rack: null isFenced: false) -> ("
	echo "	Produce(0): 0 to 11 [usable: 11],"
	i=$((i + 1))
done
`
)

func TestTopicInitScript(t *testing.T) {
	script := repo(t, "deployments", "k8s", "components", "topic-init", "topic-init.sh")
	contract := "orders:6 containers:6 order-dead-letter:3:retention.ms=2592000000,max.message.bytes=1048576"
	cases := []struct {
		name     string
		env      map[string]string
		brokers  string // lines of $STATE/brokers
		existing map[string]string
		wantErr  string   // in stderr, when the script must fail
		want     []string // calls of kafka-topics.sh --create, in order
		wantWait int      // calls of kafka-broker-api-versions.sh
	}{
		{
			name:    "creates every topic with its partitions, replicas and configs",
			env:     map[string]string{"TOPICS": contract, "REPLICATION_FACTOR": "3", "MIN_INSYNC_REPLICAS": "2"},
			brokers: "3",
			want: []string{
				"--create --if-not-exists --topic orders --partitions 6 --replication-factor 3 --config min.insync.replicas=2",
				"--create --if-not-exists --topic containers --partitions 6 --replication-factor 3 --config min.insync.replicas=2",
				"--create --if-not-exists --topic order-dead-letter --partitions 3 --replication-factor 3 --config min.insync.replicas=2 --config retention.ms=2592000000 --config max.message.bytes=1048576",
			},
			wantWait: 1,
		},
		{
			name:    "waits until enough brokers joined",
			env:     map[string]string{"TOPICS": "orders:6", "REPLICATION_FACTOR": "3"},
			brokers: "0\n1\n3",
			want: []string{
				"--create --if-not-exists --topic orders --partitions 6 --replication-factor 3 --config min.insync.replicas=1",
			},
			wantWait: 3,
		},
		{
			name:     "leaves an existing topic with the right partitions alone",
			env:      map[string]string{"TOPICS": "orders:6"},
			brokers:  "1",
			existing: map[string]string{"orders": "6"},
			want: []string{
				"--create --if-not-exists --topic orders --partitions 6 --replication-factor 1 --config min.insync.replicas=1",
			},
			wantWait: 1,
		},
		{
			name:     "refuses an existing topic with other partitions",
			env:      map[string]string{"TOPICS": "orders:6"},
			brokers:  "1",
			existing: map[string]string{"orders": "3"},
			wantErr:  "topic orders has 3 partitions, want 6",
		},
		{
			name:    "gives up when the brokers do not come",
			env:     map[string]string{"TOPICS": "orders:6", "REPLICATION_FACTOR": "3", "WAIT_SECONDS": "1", "POLL_SECONDS": "1"},
			brokers: "1",
			wantErr: "has 1 broker(s) after 1s; REPLICATION_FACTOR=3 needs 3",
		},
		{
			name:    "passes the client properties to every tool",
			env:     map[string]string{"TOPICS": "orders:6", "COMMAND_CONFIG": "CLIENT_PROPERTIES"},
			brokers: "1",
			want: []string{
				"--command-config CLIENT_PROPERTIES --create --if-not-exists --topic orders --partitions 6 --replication-factor 1 --config min.insync.replicas=1",
			},
			wantWait: 1,
		},
		{
			name:    "refuses an entry without partitions",
			env:     map[string]string{"TOPICS": "orders"},
			wantErr: "TOPICS entry orders: want name:partitions",
		},
		{
			name:    "refuses a config without a value",
			env:     map[string]string{"TOPICS": "orders:6:retention.ms", "REPLICATION_FACTOR": "1"},
			brokers: "1",
			wantErr: "config retention.ms: want key=value",
		},
		{
			name:    "refuses min.insync.replicas above the replication factor",
			env:     map[string]string{"TOPICS": "orders:6", "REPLICATION_FACTOR": "1", "MIN_INSYNC_REPLICAS": "2"},
			wantErr: "MIN_INSYNC_REPLICAS=2 is above REPLICATION_FACTOR=1",
		},
		{
			name:    "refuses a missing bootstrap address",
			env:     map[string]string{"TOPICS": "orders:6", "BOOTSTRAP_SERVERS": ""},
			wantErr: "BOOTSTRAP_SERVERS is not set",
		},
	}
	// dash is Debian's sh, bash what the apache/kafka image has: the script
	// must run on both (the image's /bin/sh is busybox ash).
	for _, shell := range []string{"sh", "bash"} {
		if _, err := exec.LookPath(shell); err != nil {
			t.Fatalf("precondition: %s is not installed: %v", shell, err)
		}
		for _, tc := range cases {
			t.Run(shell+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				bin, state := filepath.Join(dir, "bin"), filepath.Join(dir, "state")
				for _, d := range []string{bin, state} {
					if err := os.Mkdir(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				write := func(path, content string, mode os.FileMode) {
					t.Helper()
					if err := os.WriteFile(path, []byte(content), mode); err != nil {
						t.Fatal(err)
					}
				}
				write(filepath.Join(bin, "kafka-topics.sh"), stubTopics, 0o755)
				write(filepath.Join(bin, "kafka-broker-api-versions.sh"), stubBrokers, 0o755)
				write(filepath.Join(state, "brokers"), tc.brokers+"\n", 0o644)
				for topic, n := range tc.existing {
					write(filepath.Join(state, "topic."+topic), n+"\n", 0o644)
				}
				props := filepath.Join(dir, "client.properties")
				write(props, "security.protocol=SASL_SSL\n", 0o644)

				env := map[string]string{"BOOTSTRAP_SERVERS": "kafka:29092", "POLL_SECONDS": "0", "WAIT_SECONDS": "5"}
				for k, v := range tc.env {
					env[k] = strings.ReplaceAll(v, "CLIENT_PROPERTIES", props)
				}
				cmd := exec.Command(shell, script)
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KAFKA_BIN=" + bin, "STATE=" + state}
				for k, v := range env {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
				var stderr strings.Builder
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(stderr.String(), tc.wantErr) {
						t.Fatalf("err %v, stderr %q: want a failure saying %q", err, stderr.String(), tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("%v: %s%s", err, out, stderr.String())
				}

				calls, err := os.ReadFile(filepath.Join(state, "calls"))
				if err != nil {
					t.Fatal(err)
				}
				var creates []string
				waits := 0
				for _, line := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
					tool, args, _ := strings.Cut(line, " ")
					args, ok := strings.CutPrefix(args, "--bootstrap-server kafka:29092")
					args = strings.TrimSpace(args)
					if !ok {
						t.Errorf("%s called without --bootstrap-server kafka:29092 first: %s", tool, line)
					}
					switch {
					case tool == "kafka-broker-api-versions.sh":
						waits++
					case strings.Contains(args, "--create"):
						creates = append(creates, args)
					}
				}
				var want []string
				for _, w := range tc.want {
					want = append(want, strings.ReplaceAll(w, "CLIENT_PROPERTIES", props))
				}
				if diff := cmp.Diff(want, creates); diff != "" {
					t.Errorf("topics created (-want +got):\n%s", diff)
				}
				if waits != tc.wantWait {
					t.Errorf("looked at the brokers %d times, want %d", waits, tc.wantWait)
				}
				for _, c := range tc.want {
					topic := strings.Fields(c)[slices.Index(strings.Fields(c), "--topic")+1]
					if !strings.Contains(string(out), "topic-init: "+topic+": ") {
						t.Errorf("stdout does not report topic %s:\n%s", topic, out)
					}
				}
			})
		}
	}
}
