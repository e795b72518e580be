package cloudevent

import (
	"mime"
	"strings"
)

// IsJSON reports whether a data content type is JSON: application/json, text/json, or any
// +json type (application/cloudevents+json; charset=utf-8, ...).
func IsJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mediaType == "application/json" || mediaType == "text/json" || strings.HasSuffix(mediaType, "+json")
}
