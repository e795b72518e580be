// Package config decodes event-source configurations (the YAML values of a gateway's
// ConfigMap) strictly, and collects validation problems as field-path errors, so that
// every gateway reports bad input the same way: "calendar.interval: must be positive".
package config
