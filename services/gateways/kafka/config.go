package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventgate/eventgate/pkg/config"
)

// Config is one Kafka event source: every Argo Events v0.10 field (url, partition, topic,
// backoff), plus jsonBody, TLS, SASL and a consumer group.
type Config struct {
	// URL is the broker list, host:port, several separated by commas; any one of them is
	// enough to find the others.
	URL string `json:"url"`
	// Partition is the partition to consume without a consumer group (default 0). v0.10 wrote
	// it as a string ("0"); numbers are accepted too. A consumer group is assigned its
	// partitions by the brokers and ignores this field.
	Partition intOrString `json:"partition,omitempty"`
	// Topic is the topic to consume.
	Topic string `json:"topic"`
	// Backoff spaces the reconnects, for the life of the source (v0.10: first connect only).
	Backoff config.Backoff `json:"backoff,omitempty"`
	// JSONBody puts a JSON message body into the event as JSON rather than as base64 bytes.
	JSONBody bool `json:"jsonBody,omitempty"`
	// TLS configures a TLS connection to the brokers (CA, client certificate).
	TLS *config.TLS `json:"tls,omitempty"`
	// SASL authenticates to the brokers.
	SASL *SASL `json:"sasl,omitempty"`
	// ConsumerGroup consumes every partition of the topic as a member of a group and commits,
	// per partition, the offset below which every record was acknowledged (delivered to the
	// sensors, or dropped), so a restarted source resumes where it stopped (at-least-once).
	ConsumerGroup *ConsumerGroup `json:"consumerGroup,omitempty"`
}

// SASL is SASL/PLAIN authentication (over TLS, unless the network is private).
type SASL struct {
	// Mechanism is PLAIN, the default and the only one supported.
	Mechanism string `json:"mechanism,omitempty"`
	Username  string `json:"username"`
	// Password, or PasswordSecret, a Secret's key ({name, key}) read at each connect.
	Password       string            `json:"password,omitempty"`
	PasswordSecret *config.SecretRef `json:"passwordSecret,omitempty"`
}

// passwordPending stands in for a password that is read from a secret at connect, so that
// the client configuration can be checked when the source is parsed.
const passwordPending = "(from passwordSecret)"

// ConsumerGroup is Argo Events v1's consumerGroup block.
type ConsumerGroup struct {
	// GroupName is the Kafka consumer group ID.
	GroupName string `json:"groupName"`
	// Oldest starts a group that has no committed offset yet at the oldest message rather
	// than the newest. Once the group committed, it always resumes from there.
	Oldest bool `json:"oldest,omitempty"`
}

// intOrString is a YAML number or a string holding one, kept as written so that Validate
// can name the field when it is not a number.
type intOrString string

func (p *intOrString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = intOrString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("partition: %s is neither a number nor a string", b)
	}
	*p = intOrString(n)
	return nil
}

// Validate reports every problem of c with its field path.
func (c *Config) Validate() error {
	var errs config.Errors
	config.CheckList(&errs, "kafka.url", c.URL, "kafka.argo-events:9092", checkBroker)
	if _, err := c.partition(); err != nil {
		errs.Addf("kafka.partition", "%v", err)
	}
	if err := checkTopic(c.Topic); err != nil {
		errs.Addf("kafka.topic", "%v", err)
	}
	c.Backoff.Validate(&errs, "kafka.backoff")
	c.TLS.Validate(&errs, "kafka.tls")
	if s := c.SASL; s != nil {
		if m := s.Mechanism; m != "" && !strings.EqualFold(m, "PLAIN") {
			errs.Addf("kafka.sasl.mechanism", "%q is not supported, only PLAIN", m)
		}
		if s.Username == "" {
			errs.Addf("kafka.sasl.username", "is required")
		}
		config.CheckCredential(&errs, "kafka.sasl.password", s.Password != "", "kafka.sasl.passwordSecret", s.PasswordSecret)
		if s.Password == "" && s.PasswordSecret == nil {
			errs.Addf("kafka.sasl.password", "is required (or passwordSecret)")
		}
	}
	if g := c.ConsumerGroup; g != nil && strings.TrimSpace(g.GroupName) == "" {
		errs.Addf("kafka.consumerGroup.groupName", "is required with a consumer group")
	}
	return errs.Err()
}

// brokers splits the comma-separated broker list.
func (c *Config) brokers() []string { return config.List(c.URL) }

// partition is the configured partition number, 0 when unset.
func (c *Config) partition() (int32, error) {
	s := strings.TrimSpace(string(c.Partition))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a partition number (0, 1, ...)", string(c.Partition))
	}
	return int32(n), nil
}

func checkBroker(b string) error {
	if b == "" {
		return fmt.Errorf("is empty (a stray comma in the list?)")
	}
	if strings.Contains(b, "://") {
		return fmt.Errorf("is not host:port: Kafka brokers are given without a scheme")
	}
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		return fmt.Errorf("is not host:port")
	}
	if host == "" {
		return fmt.Errorf("has no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("has port %q, want 1-65535", port)
	}
	return nil
}

// checkTopic applies Kafka's own rule for topic names.
func checkTopic(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("is required")
	case t == "." || t == "..":
		return fmt.Errorf("%q is not a topic name", t)
	case len(t) > 249:
		return fmt.Errorf("is %d characters long, at most 249 are allowed", len(t))
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q may hold only letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}

// saramaConfig is the client configuration of one source.
func (c *Config) saramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.ClientID = "eventgate-kafka-gateway"
	// Errors end the session (and Reconnect starts a new one) instead of being retried
	// silently inside sarama, so a lost broker shows in the logs and the backoff applies.
	sc.Consumer.Return.Errors = true
	sc.Net.DialTimeout = 10 * time.Second
	sc.Metadata.Retry.Max = 1
	if c.TLS != nil {
		tc, err := c.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("kafka.tls: %w", err)
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if c.SASL != nil {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		sc.Net.SASL.User = c.SASL.Username
		sc.Net.SASL.Password = c.SASL.Password
		if c.SASL.PasswordSecret != nil {
			sc.Net.SASL.Password = passwordPending // see source.clientConfig
		}
	}
	if g := c.ConsumerGroup; g != nil {
		// Where a partition the group has not committed yet starts. From the newest offset,
		// the claim commits where it started before handing anything over (see
		// groupHandler.ConsumeClaim), so a retry or the next call resumes from there.
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
		if g.Oldest {
			sc.Consumer.Offsets.Initial = sarama.OffsetOldest
		}
		sc.Consumer.Offsets.AutoCommit.Enable = true
		sc.Consumer.Offsets.AutoCommit.Interval = time.Second
		// How long a rebalance waits for the members to join again (sarama's default is a
		// minute). A gateway killed while it was joining stays a member until then, holding
		// the partitions it was given; ours end their claims at once when a session ends, so
		// a short bound costs nothing and hands a dead gateway's partitions on sooner.
		sc.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: client configuration: %w", err)
	}
	return sc, nil
}
