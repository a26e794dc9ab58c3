package kafka

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalidTenant is returned (wrapped) by ValidateTenant.
var ErrInvalidTenant = errors.New("invalid tenant id")

// tenantRE is a DNS label: lower-case letters, digits and '-', 1 to 63
// characters, starting and ending with a letter or digit. No dots or
// underscores: Kafka treats '.' and '_' in topic names as colliding, and ACL
// prefixes must end at a delimiter.
var tenantRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateTenant reports whether id is a valid tenant id.
func ValidateTenant(id string) error {
	if !tenantRE.MatchString(id) {
		return fmt.Errorf("%w %q: must be 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", ErrInvalidTenant, id)
	}
	return nil
}
