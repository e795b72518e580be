// Package gateways_test runs the conformance kit against every gateway of ours, each as the
// process a pod runs, with a valid and an invalid config and the real test server its
// source needs, and against the v0.10-field-list peer of the compatibility test.
package gateways_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/amqpenv"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
	"github.com/eventgate/eventgate/pkg/testenv/minioenv"
	"github.com/eventgate/eventgate/pkg/testenv/mqttenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
	"github.com/eventgate/eventgate/protos/gateways"
	"github.com/eventgate/eventgate/tools/gwcat/conform"
	"github.com/eventgate/eventgate/tools/gwcat/conform/conformtest"
)

// MinIO, kube-apiserver and etcd are stopped after the tests (and their files removed);
// RabbitMQ by its script's watchdog or tools/test.sh.
func TestMain(m *testing.M) {
	code := minioenv.Run(m)
	kubeenv.Stop()
	os.Exit(code)
}

// suite is one gateway's conformance run: its configs and how to make its events.
type suite struct {
	valid, valid2, invalid string
	trigger                func(ctx context.Context, es *gateways.EventSource) error
	env                    []string // for the gateway process
}

// run starts the gateway process of gatewayType and checks it with the kit: every check
// must pass.
func run(t *testing.T, gatewayType string, s suite) {
	t.Helper()
	bin := testenv.Binary(t, "services/gateways/"+gatewayType)
	gw, _ := testenv.StartGatewayProcess(t, bin, nil, s.env...)
	// Every Go gateway is on the framework, which serves acknowledged delivery.
	check(t, gw.Addr, s, map[string]conform.Status{conform.CheckAckedDelivery: conform.Pass})
}

// check runs the kit against addr: every check must pass, or have the status want gives it.
func check(t *testing.T, addr string, s suite, want map[string]conform.Status) {
	t.Helper()
	conformtest.Check(t, addr, conform.Options{
		Valid: s.valid, Valid2: s.valid2, Invalid: s.invalid,
		Timeout: 20 * time.Second, Stall: time.Second, Trigger: s.trigger,
	}, want)
}

func TestCalendar(t *testing.T) {
	run(t, "calendar", suite{valid: "interval: 100ms", invalid: "interval: -1s"})
}

func TestWebhook(t *testing.T) {
	port := strings.TrimPrefix(testenv.FreePort(t), "127.0.0.1:")
	source := func(endpoint string) string {
		return fmt.Sprintf("endpoint: %s\nport: %q\nmethod: POST", endpoint, port)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	run(t, "webhook", suite{
		valid: source("/conform"), valid2: source("/conform2"), invalid: fmt.Sprintf("endpoint: /conform\nport: %q", port),
		trigger: func(ctx context.Context, es *gateways.EventSource) error {
			endpoint := "/conform"
			if es.GetData() == source("/conform2") {
				endpoint = "/conform2"
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:"+port+endpoint, strings.NewReader(`{"conform":true}`))
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("POST %s: %s", endpoint, resp.Status)
			}
			return nil
		},
	})
}

func TestNATS(t *testing.T) {
	url := natsenv.Start(t, -1)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	run(t, "nats", suite{
		valid: "url: " + url + "\nsubject: conform", invalid: "url: " + url,
		trigger: func(context.Context, *gateways.EventSource) error {
			return nc.Publish("conform", []byte(`{"conform":true}`))
		},
	})
}

// TestNATSJetStream checks the at-least-once NATS option: two sources are two durable
// consumers of one stream, and the trigger stores a message in it.
func TestNATSJetStream(t *testing.T) {
	srv := natsenv.StartJetStream(t, -1, t.TempDir())
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "CONFORM", Subjects: []string{"conform"}}); err != nil {
		t.Fatal(err)
	}
	source := func(consumer string) string {
		return fmt.Sprintf("url: %s\nsubject: conform\njetStream:\n  stream: CONFORM\n  consumer: %s", srv.ClientURL(), consumer)
	}
	run(t, "nats", suite{
		valid: source("conform-1"), valid2: source("conform-2"),
		invalid: "url: " + srv.ClientURL() + "\nsubject: conform\njetStream:\n  consumer: no-stream",
		trigger: func(context.Context, *gateways.EventSource) error {
			_, err := js.Publish("conform", []byte(`{"conform":true}`))
			return err
		},
	})
}

func TestMQTT(t *testing.T) {
	b := mqttenv.Start(t)
	source := func(clientID string) string {
		return fmt.Sprintf("url: %s\ntopic: conform\nclientId: %s", b.URL, clientID)
	}
	run(t, "mqtt", suite{
		// Two sources with one client ID would take the broker's session from each other.
		valid: source("conform-1"), valid2: source("conform-2"), invalid: "url: " + b.URL,
		trigger: func(context.Context, *gateways.EventSource) error {
			return b.Publish("conform", []byte(`{"conform":true}`), 1)
		},
	})
}

func TestKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "conform"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addr := cluster.ListenAddrs()[0]
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	producer, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { producer.Close() })
	run(t, "kafka", suite{
		valid: "url: " + addr + "\ntopic: conform\npartition: \"0\"", invalid: "url: " + addr + "\npartition: \"0\"",
		trigger: func(context.Context, *gateways.EventSource) error {
			_, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: "conform", Value: sarama.StringEncoder(`{"conform":true}`)})
			return err
		},
	})
}

func TestAMQP(t *testing.T) {
	b := amqpenv.Start(t)
	conn, err := amqp.Dial(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// As the gateway declares it by default (durable); a name of this run's own.
	exchange := fmt.Sprintf("conform-%d", time.Now().UnixNano())
	if err := ch.ExchangeDeclare(exchange, "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.ExchangeDelete(exchange, false, false) })
	source := "url: " + b.URL + "\nexchangeName: " + exchange + "\nexchangeType: fanout\nroutingKey: conform"
	run(t, "amqp", suite{
		valid: source, invalid: strings.Replace(source, "exchangeName: "+exchange, "exchangeName: ''", 1),
		trigger: func(ctx context.Context, _ *gateways.EventSource) error {
			return ch.PublishWithContext(ctx, exchange, "conform", false, false, amqp.Publishing{Body: []byte(`{"conform":true}`)})
		},
	})
}

func TestResource(t *testing.T) {
	env := kubeenv.Shared(t)
	client, err := kubernetes.NewForConfig(env.Admin)
	if err != nil {
		t.Fatal(err)
	}
	cms := client.CoreV1().ConfigMaps("default")
	t.Cleanup(func() {
		cms.DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "conform=true"})
	})
	run(t, "resource", suite{
		valid:   "namespace: default\nversion: v1\nkind: ConfigMap\ntype: ADDED\nfilter: {labels: {conform: \"true\"}}",
		invalid: "namespace: default\nversion: v1\ntype: ADDED",
		trigger: func(ctx context.Context, _ *gateways.EventSource) error {
			_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				GenerateName: "conform-", Labels: map[string]string{"conform": "true"},
			}}, metav1.CreateOptions{})
			return err
		},
		env: []string{"KUBECONFIG=" + env.AdminKubeconfig},
	})
}

func TestArtifact(t *testing.T) {
	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "conform")
	dir := testenv.NewSecretsDir(t)
	dir.Put(t, "minio", "accesskey", minioenv.AccessKey)
	dir.Put(t, "minio", "secretkey", minioenv.SecretKey)
	valid := "bucket: {name: conform}\nendpoint: " + srv.Endpoint + "\ninsecure: true\n" +
		"accessKey: {name: minio, key: accesskey}\nsecretKey: {name: minio, key: secretkey}"
	mc := srv.Client()
	run(t, "artifact", suite{
		valid: valid, invalid: valid + "\nevents: [s3:ObjectCreated]",
		trigger: func(ctx context.Context, _ *gateways.EventSource) error {
			body := []byte(`{"conform":true}`)
			_, err := mc.PutObject(ctx, "conform", "object.json", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
			return err
		},
		env: []string{"GATEWAY_SECRETS_DIR=" + string(dir)},
	})
}

// The peer built from the v0.10 field list alone: "interval: D" emits every D. It has no
// grpc.health.v1, as v0.10 gateways had none: the kit warns.
func TestV010Peer(t *testing.T) {
	parse := func(data string) (time.Duration, error) {
		raw, ok := strings.CutPrefix(data, "interval: ")
		d, err := time.ParseDuration(raw)
		if !ok || err != nil || d <= 0 {
			return 0, fmt.Errorf("interval: want a positive duration, got %q", data)
		}
		return d, nil
	}
	addr := testenv.StartV010Peer(t, testenv.V010Peer{
		Validate: func(src testenv.V010Source) (bool, string) {
			if _, err := parse(src.Data); err != nil {
				return false, err.Error()
			}
			return true, ""
		},
		Start: func(ctx context.Context, src testenv.V010Source, send func([]byte) error) error {
			d, err := parse(src.Data)
			if err != nil {
				return status.Error(codes.InvalidArgument, err.Error())
			}
			tick := time.NewTicker(d)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
					if err := send([]byte(`{"from":"v0.10"}`)); err != nil {
						return err
					}
				}
			}
		},
	})
	check(t, addr, suite{valid: "interval: 50ms", invalid: "interval: -1s"}, map[string]conform.Status{
		conform.CheckHealth: conform.Warn, conform.CheckAckedDelivery: conform.Warn})
}
