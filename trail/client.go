package trail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// APIError is a non-2xx answer of the gateway.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("gateway: %d %s", e.Status, e.Message) }

// StatusOf returns the HTTP status of an *APIError in err's chain, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// Client talks to a lakeproof gateway. With Key set (the holder's own
// key), Write signs entries client-side so that they verify without
// trusting the gateway. A Client is safe for concurrent use after
// Authenticate.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080 (no /api suffix)
	HTTP    *http.Client
	APIKey  string
	ID      string             // did:key of the holder
	Key     ed25519.PrivateKey // optional signing key of ID
	jwt     string
}

// NewClient returns a client for the gateway at base.
func NewClient(base string) *Client {
	return &Client{BaseURL: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 2 * time.Minute}}
}

// JWT returns the current bearer token ("" before Authenticate).
func (c *Client) JWT() string { return c.jwt }

// SetJWT sets the bearer token.
func (c *Client) SetJWT(t string) { c.jwt = t }

func (c *Client) url(path string, q url.Values) string {
	if c.APIKey != "" {
		if q == nil {
			q = url.Values{}
		}
		q.Set("api-key", c.APIKey)
	}
	u := c.BaseURL + "/api/v0.1" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.jwt != "" {
		req.Header.Set("Authorization", "Bearer "+c.jwt)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return fmt.Errorf("%s %s: %w", method, path, &APIError{Status: resp.StatusCode, Message: e.Error})
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}

// Register registers the client's own did:key identity (only the public
// key, inside the DID, is sent).
func (c *Client) Register(ctx context.Context, username string, claim any) error {
	body := map[string]any{"id": c.ID, "username": username}
	if claim != nil {
		body["claim"] = claim
	}
	return c.do(ctx, "POST", "/identities/identity", nil, body, nil)
}

// Authenticate proves ownership of c.ID with c.Key and keeps the JWT.
func (c *Client) Authenticate(ctx context.Context) error {
	var n struct {
		Nonce string `json:"nonce"`
	}
	if err := c.do(ctx, "GET", "/authentication/prove-ownership/"+c.ID, nil, nil, &n); err != nil {
		return err
	}
	sig := ed25519.Sign(c.Key, NonceDigest(n.Nonce))
	var t struct {
		JWT string `json:"jwt"`
	}
	if err := c.do(ctx, "POST", "/authentication/prove-ownership/"+c.ID, nil, map[string]string{"signedNonce": hex.EncodeToString(sig)}, &t); err != nil {
		return err
	}
	c.jwt = t.JWT
	return nil
}

// CreateChannelRequest is the body of POST /channels/create.
type CreateChannelRequest struct {
	Name            string           `json:"name,omitempty"`
	Description     string           `json:"description,omitempty"`
	Type            string           `json:"type,omitempty"`
	Hidden          bool             `json:"hidden,omitempty"`
	VisibilityList  []VisibilityItem `json:"visibilityList,omitempty"`
	Topics          []Topic          `json:"topics"`
	HasPresharedKey bool             `json:"hasPresharedKey,omitempty"`
}

// CreateChannel creates a channel and returns its address.
func (c *Client) CreateChannel(ctx context.Context, req CreateChannelRequest) (string, error) {
	var out struct {
		ChannelAddress string `json:"channelAddress"`
	}
	if err := c.do(ctx, "POST", "/channels/create", nil, req, &out); err != nil {
		return "", err
	}
	return out.ChannelAddress, nil
}

// SearchChannels runs /channel-info/search with IS query names
// (author-id, name, topic-type, topic-source, …).
func (c *Client) SearchChannels(ctx context.Context, q url.Values) ([]ChannelInfo, error) {
	var out []ChannelInfo
	err := c.do(ctx, "GET", "/channel-info/search", q, nil, &out)
	return out, err
}

// ChannelInfo fetches one channel's info.
func (c *Client) ChannelInfo(ctx context.Context, addr string) (ChannelInfo, error) {
	var out ChannelInfo
	err := c.do(ctx, "GET", "/channel-info/channel/"+addr, nil, nil, &out)
	return out, err
}

// RequestSubscription asks for rights on a channel; it returns the
// subscription link.
func (c *Client) RequestSubscription(ctx context.Context, addr string, rights AccessRights) (string, error) {
	var out struct {
		SubscriptionLink string `json:"subscriptionLink"`
	}
	body := map[string]any{}
	if rights != "" {
		body["accessRights"] = rights
	}
	err := c.do(ctx, "POST", "/subscriptions/request/"+addr, nil, body, &out)
	return out.SubscriptionLink, err
}

// Authorize authorizes did's subscription (author only); rights, when
// set, replace the requested rights.
func (c *Client) Authorize(ctx context.Context, addr, did string, rights AccessRights) error {
	body := map[string]any{"id": did}
	if rights != "" {
		body["accessRights"] = rights
	}
	return c.do(ctx, "POST", "/subscriptions/authorize/"+addr, nil, body, nil)
}

// Revoke removes did's subscription (author only).
func (c *Client) Revoke(ctx context.Context, addr, did string) error {
	return c.do(ctx, "POST", "/subscriptions/revoke/"+addr, nil, map[string]string{"id": did}, nil)
}

// Subscriptions lists a channel's subscriptions (author or Admin).
func (c *Client) Subscriptions(ctx context.Context, addr string) ([]Subscription, error) {
	var out []Subscription
	err := c.do(ctx, "GET", "/subscriptions/"+addr, nil, nil, &out)
	return out, err
}

// Write appends l to a channel. With c.Key set the entry is signed here
// (log.created defaults to now); otherwise the gateway signs it.
func (c *Client) Write(ctx context.Context, addr string, l Log) (ChannelData, error) {
	// The body is the log's members plus signature and nonce (the server's
	// writeBody); payloads travel as the caller's bytes.
	body := struct {
		Log
		Signature string `json:"signature,omitempty"`
		Nonce     string `json:"nonce,omitempty"`
	}{Log: l}
	if c.Key != nil {
		if l.Created == "" {
			l.Created = jsTime(time.Now())
		}
		st := Statement{V: StatementVersion, ChannelAddress: addr, Writer: c.ID, Nonce: randomHex(16), Log: l}
		se, err := Sign(st, c.Key)
		if err != nil {
			return ChannelData{}, err
		}
		body.Log, body.Signature, body.Nonce = se.Statement.Log, se.Signature, st.Nonce
	}
	var out ChannelData
	err := c.do(ctx, "POST", "/channels/logs/"+addr, nil, body, &out)
	return out, err
}

// Read reads entries with the IS query options (limit, index, asc,
// start-date, end-date) or since/wait.
func (c *Client) Read(ctx context.Context, addr string, q url.Values) ([]ChannelData, error) {
	var out []ChannelData
	err := c.do(ctx, "GET", "/channels/logs/"+addr, q, nil, &out)
	return out, err
}

// ValidateResult is one answer of /channels/validate.
type ValidateResult struct {
	Link      string `json:"link"`
	IsValid   bool   `json:"isValid"`
	Error     string `json:"error,omitempty"`
	TangleLog *Log   `json:"tangleLog,omitempty"`
	Index     *int64 `json:"index,omitempty"`
}

// Validate checks entries against the gateway's log.
func (c *Client) Validate(ctx context.Context, addr string, items []ChannelData) ([]ValidateResult, error) {
	var out []ValidateResult
	err := c.do(ctx, "POST", "/channels/validate/"+addr, nil, items, &out)
	return out, err
}

// ErrStreamEnded reports that the gateway closed an event stream because
// the reader lost its rights ("revoked").
var ErrStreamEnded = errors.New("event stream ended: read access revoked")

// Follow calls fn for every entry of addr from index since (-1: only new
// ones) until ctx ends, fn fails or access is revoked. It reconnects after
// network errors and resumes after the last delivered index, so no entry
// is missed or repeated.
func (c *Client) Follow(ctx context.Context, addr string, since int64, fn func(ChannelData) error) error {
	next := since
	backoff := 100 * time.Millisecond
	for {
		err := c.followOnce(ctx, addr, &next, fn)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrStreamEnded), StatusOf(err) >= 400 && StatusOf(err) < 500:
			return err
		case err != nil && !isRetryable(err):
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

type callbackError struct{ error }

func (e callbackError) Unwrap() error { return e.error }

func isRetryable(err error) bool {
	var cb callbackError
	return !errors.As(err, &cb)
}

func (c *Client) followOnce(ctx context.Context, addr string, next *int64, fn func(ChannelData) error) error {
	q := url.Values{}
	if *next >= 0 {
		q.Set("since", strconv.FormatInt(*next, 10))
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.url("/channels/events/"+addr, q), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.jwt != "" {
		req.Header.Set("Authorization", "Bearer "+c.jwt)
	}
	hc := *c.HTTP
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			switch event {
			case "entry":
				var d ChannelData
				if err := json.Unmarshal([]byte(data), &d); err != nil {
					return callbackError{fmt.Errorf("decode event: %w", err)}
				}
				if err := fn(d); err != nil {
					return callbackError{err}
				}
				*next = d.Index + 1
			case "revoked":
				return ErrStreamEnded
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(line[len("data:"):], " ")
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// Get performs a GET on an API path (below /api/v0.1) and decodes the JSON
// answer into out.
func (c *Client) Get(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, "GET", path, q, nil, out)
}
