package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultNode is the node a client talks to when none is given.
const DefaultNode = "http://127.0.0.1:7370"

// Client is a terminal API client.
type Client struct {
	Base  string // node URL, e.g. http://127.0.0.1:7370
	Token string // bearer token: a terminal's or the node's admin token
	HTTP  *http.Client
}

// New returns a client for the node at base ("" means DefaultNode).
func New(base, token string) (*Client, error) {
	if base == "" {
		base = DefaultNode
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("node URL %q: want http://host:port", base)
	}
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{}}, nil
}

// APIError is an error answer of the node.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// ErrUnreachable is returned, wrapped, when the node does not answer.
var ErrUnreachable = errors.New("node unreachable")

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("node answered %s %s with malformed JSON: %v", method, path, err)
	}
	return nil
}

// send makes a request and turns error answers into *APIError.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			// It runs: its certificate is not trusted, most likely the
			// node's self-signed one.
			return nil, fmt.Errorf("%w at %s: %v (a node's self-signed certificate is <data-dir>/https.crt: trust it with SSL_CERT_FILE=<data-dir>/https.crt, or use the node's http:// --api address)", ErrUnreachable, c.Base, err)
		}
		return nil, fmt.Errorf("%w at %s: %v (is `irmv node` running?)", ErrUnreachable, c.Base, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return nil, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

// Node describes the node.
func (c *Client) Node(ctx context.Context) (NodeInfo, error) {
	var info NodeInfo
	err := c.do(ctx, "GET", "/v1/node", nil, &info)
	return info, err
}

// Register registers a terminal.
func (c *Client) Register(ctx context.Context, reg Registration) (Ack, error) {
	var ack Ack
	err := c.do(ctx, "POST", "/v1/terminals", reg, &ack)
	return ack, err
}

// SetSIPUser sets a SIP user's credentials (POST /v1/sip/users).
func (c *Client) SetSIPUser(ctx context.Context, u SIPUser) (SIPUserInfo, error) {
	var out SIPUserInfo
	err := c.do(ctx, "POST", "/v1/sip/users", u, &out)
	return out, err
}

// SIPUsers lists the SIP users (GET /v1/sip/users).
func (c *Client) SIPUsers(ctx context.Context) ([]SIPUserInfo, error) {
	var out struct {
		Users []SIPUserInfo `json:"users"`
	}
	err := c.do(ctx, "GET", "/v1/sip/users", nil, &out)
	return out.Users, err
}

// RemoveSIPUser removes a SIP user (DELETE /v1/sip/users/{user}).
func (c *Client) RemoveSIPUser(ctx context.Context, user string) error {
	return c.do(ctx, "DELETE", "/v1/sip/users/"+url.PathEscape(user), nil, nil)
}

// SIPBindings lists the registered SIP phones (GET /v1/sip/bindings).
func (c *Client) SIPBindings(ctx context.Context) ([]SIPBinding, error) {
	var out struct {
		Bindings []SIPBinding `json:"bindings"`
	}
	err := c.do(ctx, "GET", "/v1/sip/bindings", nil, &out)
	return out.Bindings, err
}

// Prepare returns the body a terminal with a key must sign.
func (c *Client) Prepare(ctx context.Context, reg Registration) ([]byte, error) {
	var out struct {
		Body []byte `json:"body"`
	}
	err := c.do(ctx, "POST", "/v1/terminals/prepare", reg, &out)
	return out.Body, err
}

// Get reads one terminal's registration (GET /v1/terminals/{terminal}).
func (c *Client) Get(ctx context.Context, terminal string) (Terminal, error) {
	var t Terminal
	err := c.do(ctx, "GET", "/v1/terminals/"+url.PathEscape(terminal), nil, &t)
	return t, err
}

// List lists the node's terminals.
func (c *Client) List(ctx context.Context) ([]Terminal, error) {
	var out struct {
		Terminals []Terminal `json:"terminals"`
	}
	err := c.do(ctx, "GET", "/v1/terminals", nil, &out)
	return out.Terminals, err
}

// Remove removes a terminal.
func (c *Client) Remove(ctx context.Context, terminal string) error {
	return c.do(ctx, "DELETE", "/v1/terminals/"+url.PathEscape(terminal), nil, nil)
}

// SetStatus sets a terminal's status.
func (c *Client) SetStatus(ctx context.Context, terminal, status string) (Ack, error) {
	var ack Ack
	err := c.do(ctx, "PUT", "/v1/terminals/"+url.PathEscape(terminal)+"/status", map[string]string{"status": status}, &ack)
	return ack, err
}

// Heartbeat refreshes a terminal's registration.
func (c *Client) Heartbeat(ctx context.Context, terminal string) (Ack, error) {
	var ack Ack
	err := c.do(ctx, "POST", "/v1/terminals/"+url.PathEscape(terminal)+"/heartbeat", nil, &ack)
	return ack, err
}

// Search runs a search and calls fn for each result as it arrives.
func (c *Client) Search(ctx context.Context, q Query, fn func(Result) error) error {
	v := url.Values{"q": {q.Text}}
	if q.Via != "" {
		v.Set("via", q.Via)
	}
	if q.Limit > 0 {
		v.Set("limit", fmt.Sprint(q.Limit))
	}
	if q.Timeout > 0 {
		v.Set("timeout", q.Timeout.String())
	}
	resp, err := c.send(ctx, "GET", "/v1/search?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("node sent a malformed result: %v", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}

// WaitReady polls /healthz until the node answers or timeout passes.
func (c *Client) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.do(ctx, "GET", "/healthz", nil, nil)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
