package main

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/eventgate/eventgate/pkg/config"
)

// Config is one artifact event source, a MinIO bucket's notifications: every Argo Events
// v0.10 field (bucket, endpoint, events, filter, insecure, accessKey, secretKey, region),
// plus caCertPath and backoff.
type Config struct {
	Bucket Bucket `json:"bucket"`
	// Endpoint is the server, host:port without a scheme, as minio-go takes it.
	Endpoint string `json:"endpoint"`
	// Events are the S3 event names to listen for (s3:ObjectCreated:*, ...); all when empty.
	Events []string `json:"events,omitempty"`
	Filter *Filter  `json:"filter,omitempty"`
	// Insecure talks plain HTTP to the endpoint (v0.10's meaning: not TLS).
	Insecure bool `json:"insecure,omitempty"`
	// AccessKey and SecretKey are the credentials, from secrets resolved when the source
	// starts, never while validating.
	AccessKey *config.SecretRef `json:"accessKey"`
	SecretKey *config.SecretRef `json:"secretKey"`
	Region    string            `json:"region,omitempty"`
	// CACertPath is a PEM bundle of the CAs that sign the endpoint's certificate (the
	// system's when empty); only with TLS.
	CACertPath string `json:"caCertPath,omitempty"`
	// Backoff spaces the attempts to listen again after the listen failed or ended, for
	// the life of the source.
	Backoff config.Backoff `json:"backoff,omitempty"`
}

// Bucket is v0.10's S3Bucket. Key names one object in v0.10's sensors' artifacts; a
// gateway listens to the whole bucket (narrowed by filter), so it is accepted and unused,
// as in v0.10.
type Bucket struct {
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
}

// Filter narrows the notifications to object keys with this prefix and suffix. Each is at
// most 1024 bytes of UTF-8, without a backslash or a "." or ".." path segment: MinIO refuses
// the listen otherwise.
type Filter struct {
	Prefix string `json:"prefix,omitempty"`
	Suffix string `json:"suffix,omitempty"`
}

// s3Events are the event names MinIO's listen API accepts (its internal/event names).
var s3Events = []string{
	"s3:BucketCreated:*", "s3:BucketRemoved:*",
	"s3:ObjectAccessed:*", "s3:ObjectAccessed:Get", "s3:ObjectAccessed:GetRetention",
	"s3:ObjectAccessed:GetLegalHold", "s3:ObjectAccessed:Head", "s3:ObjectAccessed:Attributes",
	"s3:ObjectCreated:*", "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectCreated:Copy",
	"s3:ObjectCreated:Post", "s3:ObjectCreated:Put", "s3:ObjectCreated:PutTagging",
	"s3:ObjectCreated:DeleteTagging", "s3:ObjectCreated:PutRetention", "s3:ObjectCreated:PutLegalHold",
	"s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated",
	"s3:ObjectRemoved:NoOP", "s3:ObjectRemoved:DeleteAllVersions",
	"s3:LifecycleDelMarkerExpiration:Delete",
	"s3:Replication:*", "s3:Replication:OperationFailedReplication",
	"s3:Replication:OperationCompletedReplication", "s3:Replication:OperationNotTracked",
	"s3:Replication:OperationMissedThreshold", "s3:Replication:OperationReplicatedAfterThreshold",
	"s3:ObjectRestore:*", "s3:ObjectRestore:Post", "s3:ObjectRestore:Completed",
	"s3:ObjectTransition:*", "s3:ObjectTransition:Failed", "s3:ObjectTransition:Complete",
	"s3:Scanner:ManyVersions", "s3:Scanner:LargeVersions", "s3:Scanner:BigPrefix",
}

// Validate reports every problem of c with its field path. Nothing is resolved or dialled:
// validation needs neither MinIO nor a cluster.
func (c *Config) Validate() error {
	var errs config.Errors
	switch {
	case c.Bucket.Name == "":
		errs.Addf("artifact.bucket.name", "is required")
	default:
		if err := s3utils.CheckValidBucketNameStrict(c.Bucket.Name); err != nil {
			errs.Addf("artifact.bucket.name", "%q: %v", c.Bucket.Name, err)
		}
	}
	if err := checkEndpoint(c.Endpoint); err != nil {
		errs.Addf("artifact.endpoint", "%v", err)
	}
	for i, name := range c.Events {
		if !slices.Contains(s3Events, name) {
			errs.Addf(config.Index("artifact.events", i), "unknown S3 event %q (e.g. s3:ObjectCreated:*, s3:ObjectCreated:Put, s3:ObjectRemoved:Delete)", name)
		}
	}
	if err := checkFilterValue(c.prefix()); err != nil {
		errs.Addf("artifact.filter.prefix", "%v", err)
	}
	if err := checkFilterValue(c.suffix()); err != nil {
		errs.Addf("artifact.filter.suffix", "%v", err)
	}
	checkSecret(&errs, "artifact.accessKey", c.AccessKey)
	checkSecret(&errs, "artifact.secretKey", c.SecretKey)
	if c.CACertPath != "" {
		if c.Insecure {
			errs.Addf("artifact.caCertPath", "is for TLS, but insecure is true (plain HTTP)")
		} else {
			(&config.TLS{CACertPath: c.CACertPath}).Validate(&errs, "artifact.caCertPath")
		}
	}
	c.Backoff.Validate(&errs, "artifact.backoff")
	return errs.Err()
}

func checkSecret(errs *config.Errors, path string, ref *config.SecretRef) {
	if ref == nil {
		errs.Addf(path, "is required: {name, key} of a Secret")
		return
	}
	ref.Check(errs, path)
}

// checkEndpoint accepts what minio.New does: host or host:port, no scheme, no path.
func checkEndpoint(e string) error {
	switch {
	case e == "":
		return fmt.Errorf("is required: host:port of the S3 server, without a scheme")
	case strings.Contains(e, "://"):
		return fmt.Errorf("%q has a scheme: give host:port, and insecure: true for plain HTTP", e)
	}
	u, err := url.Parse("http://" + e)
	if err != nil || u.Host != e || u.Hostname() == "" {
		return fmt.Errorf("%q is not host:port", e)
	}
	// minio-go's own test of the host, which would refuse it at every listen.
	if h := u.Hostname(); !s3utils.IsValidIP(h) && !s3utils.IsValidDomain(h) {
		return fmt.Errorf("%q: %q is neither an IP address nor a domain name", e, h)
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return fmt.Errorf("%q has a bad port", e)
		}
	}
	return nil
}

// maxFilterValue is the longest prefix or suffix MinIO takes, in bytes.
const maxFilterValue = 1024

// checkFilterValue applies MinIO's rules for a filter's prefix or suffix: MinIO refuses the
// listen of any other, at every attempt. minio-go has no check of its own for them.
func checkFilterValue(v string) error {
	switch {
	case len(v) > maxFilterValue:
		return fmt.Errorf("is %d bytes long, MinIO takes at most %d", len(v), maxFilterValue)
	case !utf8.ValidString(v):
		return fmt.Errorf("%q is not valid UTF-8, which MinIO refuses", v)
	case strings.Contains(v, `\`):
		return fmt.Errorf("%q has a backslash, which MinIO refuses", v)
	}
	for segment := range strings.SplitSeq(v, "/") {
		if segment == "." || segment == ".." {
			return fmt.Errorf("%q has a %q path segment, which MinIO refuses", v, segment)
		}
	}
	return nil
}

// events are the event names to listen for: MinIO's listen matches only those it is given,
// so "all" (none configured) is every family's wildcard and the names of the families
// that have none.
func (c *Config) events() []string {
	if len(c.Events) > 0 {
		return c.Events
	}
	var all []string
	for _, name := range s3Events {
		family := name[:strings.LastIndex(name, ":")]
		if strings.HasSuffix(name, ":*") || !slices.Contains(s3Events, family+":*") {
			all = append(all, name)
		}
	}
	return all
}

// prefix and suffix are the filter's, empty without one.
func (c *Config) prefix() string {
	if c.Filter == nil {
		return ""
	}
	return c.Filter.Prefix
}

func (c *Config) suffix() string {
	if c.Filter == nil {
		return ""
	}
	return c.Filter.Suffix
}
