package odometer

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps each to a status in one table.
const (
	EINVALID       = "invalid"       // bad input: 400
	EUNPROCESSABLE = "unprocessable" // a batch with invalid members: 422
	ECONFLICT      = "conflict"      // same id, different body: 409
	ENOTFOUND      = "not_found"     // 404
	EUNAUTHORIZED  = "unauthorized"  // no key or a wrong key: 401
	EFORBIDDEN     = "forbidden"     // a key without the scope: 403
	ETOOLARGE      = "too_large"     // body or batch over the limit: 413
	EUNSUPPORTED   = "unsupported"   // a Content-Encoding not understood: 415
	EUNAVAILABLE   = "unavailable"   // the store cannot take writes now (disk full): 503
	EINTERNAL      = "internal"      // anything else: 500, never shown
)

// Error is the one error type of the domain. Message is safe to show to a
// client; errors without a code are internal and are never shown.
type Error struct {
	Code    string
	Message string
	// Details carries extra fields of the JSON error body, such as the
	// per-event validation errors of a batch.
	Details map[string]any
}

func (e *Error) Error() string {
	return fmt.Sprintf("odometer error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EINTERNAL when it has none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
