package config

// Parse decodes one event source's YAML strictly into a new C (see Decode) and validates it:
// the first two steps of every gateway's Parse, so that none can skip the validation.
// prefix is the config's root in error messages, usually the gateway type; C's Validate,
// on a pointer receiver, gives the field paths.
func Parse[C any, P interface {
	*C
	Validate() error
}](prefix, data string) (*C, error) {
	c := new(C)
	if err := Decode(prefix, data, c); err != nil {
		return nil, err
	}
	if err := P(c).Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
