package esclient

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// AuthError reports a request Elasticsearch refused for its credentials
// (HTTP 401) or for the privileges behind them (HTTP 403). Its message says
// which settings to fix.
type AuthError struct {
	Status int
	// Reason is Elasticsearch's explanation (error.reason).
	Reason string
	// User is the basic-auth user sent, if any; APIKey says whether an API
	// key was sent.
	User   string
	APIKey bool
}

func (e *AuthError) Error() string {
	why := fmt.Sprintf("HTTP %d", e.Status)
	if e.Reason != "" {
		why += ": " + e.Reason
	}
	switch {
	case e.Status == http.StatusForbidden:
		who := "the API key"
		if !e.APIKey {
			who = fmt.Sprintf("user %q", e.User)
		}
		return fmt.Sprintf("elasticsearch refused the request for lack of a privilege (%s): grant %s a role with the cluster privilege monitor and, on the indices walsearch writes, create_index, manage, write and read", why, who)
	case e.APIKey:
		return fmt.Sprintf("elasticsearch refused the API key (%s): check elasticsearch.api_key — the base64 \"encoded\" value Elasticsearch returned when the key was created, not expired or invalidated", why)
	case e.User != "":
		return fmt.Sprintf("elasticsearch refused user %q and its password (%s): check elasticsearch.username and elasticsearch.password (ES_USER, ES_PASSWORD)", e.User, why)
	default:
		return fmt.Sprintf("elasticsearch requires credentials (%s): set elasticsearch.username and elasticsearch.password (ES_USER, ES_PASSWORD), or elasticsearch.api_key", why)
	}
}

// UnavailableError is an answer of a server that is up but cannot serve
// the request now: 429 or a 5xx status. Retrying later may succeed.
type UnavailableError struct {
	Status int
	// Reason is the server's explanation (error.reason, or the start of
	// the body).
	Reason string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("elasticsearch answered HTTP %d (%s): it is up but cannot serve requests now; "+
		"check the cluster's health and logs, or start walsearch again once it answers", e.Status, e.Reason)
}

// unavailable returns an *UnavailableError for a 429 or 5xx status, else nil.
func unavailable(status int, body []byte) error {
	if status != http.StatusTooManyRequests && status < 500 {
		return nil
	}
	return &UnavailableError{Status: status, Reason: errorReason(body)}
}

// AuthError returns an *AuthError when status (with the response body) says
// the request's credentials or privileges were refused, and nil otherwise.
func (c *Client) AuthError(status int, body []byte) error {
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return nil
	}
	return &AuthError{Status: status, Reason: errorReason(body), User: c.user, APIKey: c.apiKey}
}

// errorReason is error.reason of an Elasticsearch error answer (or the
// error itself when it is a string), else the start of the body.
func errorReason(body []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
		var obj struct {
			Reason string `json:"reason"`
		}
		if json.Unmarshal(e.Error, &obj) == nil && obj.Reason != "" {
			return obj.Reason
		}
		var str string
		if json.Unmarshal(e.Error, &str) == nil && str != "" {
			return str
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// explainConnError adds what to set to a TLS failure; other errors are
// returned as they are.
func explainConnError(err error) error {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("the server's certificate is not signed by a trusted CA: set elasticsearch.ca_cert to a PEM file of the CA that signed it (or, for a test cluster only, elasticsearch.insecure_skip_verify: true): %w", err)
	case errors.As(err, &host):
		return fmt.Errorf("the server's certificate does not name the host of elasticsearch.url: use a host name the certificate names: %w", err)
	case errors.As(err, &invalid):
		return fmt.Errorf("the server's certificate is not valid (expired, or not for serving): %w", err)
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("elasticsearch.url says https but the server does not speak TLS: use http:// or enable TLS on the cluster: %w", err)
	}
	return err
}
