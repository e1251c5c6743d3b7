package trail

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// MaxReadLimit is the most entries one read returns.
const MaxReadLimit = 10000

var addrRE = regexp.MustCompile(`^[0-9a-f]{80}:[0-9a-f]{24}$`)

// ValidAddress reports whether addr has the IS channel address shape:
// 80 lowercase hex digits, ':', 24 lowercase hex digits (105 bytes).
func ValidAddress(addr string) bool { return len(addr) == 105 && addrRE.MatchString(addr) }

func pathAddr(r *http.Request) (string, error) {
	addr := r.PathValue("addr")
	if !ValidAddress(addr) {
		return "", errf(http.StatusBadRequest, "malformed channel address: want <80 hex>:<24 hex>")
	}
	return addr, nil
}

// Source names the writer of an entry.
type Source struct {
	ID        string `json:"id"`
	PublicKey string `json:"publicKey"`
}

// ChannelData is one entry as the API returns it: the IS fields (link,
// messageId, source, log) plus lakeproof's index, signer, signature, nonce
// and receive time. The statement of the signature is
// {v, channelAddress, writer: source.id, nonce, log}.
type ChannelData struct {
	Link      string `json:"link"`
	MessageID string `json:"messageId"`
	Source    Source `json:"source"`
	Log       Log    `json:"log"`
	Index     int64  `json:"index"`
	Signer    string `json:"signer"`
	Signature string `json:"signature"`
	Nonce     string `json:"nonce,omitempty"`
	Received  string `json:"received,omitempty"`
}

// SignedEntry rebuilds the signed entry that d claims to be.
func (d ChannelData) SignedEntry(channelAddress string) SignedEntry {
	return SignedEntry{
		Statement: Statement{V: StatementVersion, ChannelAddress: channelAddress, Writer: d.Source.ID, Nonce: d.Nonce, Log: d.Log},
		Signer:    d.Signer, Signature: d.Signature,
	}
}

// channelData renders a stored entry. It decodes the leaf without the
// canonical-form check of ParseLeaf (validate does that); a leaf that is not
// even JSON is a store integrity failure.
func channelData(e Entry) (ChannelData, error) {
	var se SignedEntry
	if err := json.Unmarshal(e.Leaf, &se); err != nil {
		return ChannelData{}, fmt.Errorf("entry %d of %s: %w: %w", e.Index, e.ChannelAddress, ErrBadEntry, err)
	}
	return entryData(e, se), nil
}

func entryData(e Entry, se SignedEntry) ChannelData {
	d := ChannelData{
		Link: Link(e.ChannelAddress, e.LeafHash), MessageID: hex.EncodeToString(e.LeafHash[:]),
		Source: Source{ID: se.Statement.Writer}, Log: se.Statement.Log, Index: e.Index,
		Signer: se.Signer, Signature: se.Signature, Nonce: se.Statement.Nonce, Received: jsTime(e.Received),
	}
	if pub, err := ParseDID(se.Statement.Writer); err == nil {
		d.Source.PublicKey = Base58Encode(pub)
	}
	return d
}

// access is what a caller may do on a channel.
type access struct {
	ch            Channel
	sub           *Subscription
	author, admin bool
	read, write   bool
	visible       bool
}

func (s *Server) access(ctx context.Context, addr string, c *caller) (access, error) {
	ch, err := s.cfg.Store.GetChannel(ctx, addr)
	if err != nil {
		return access{}, err
	}
	a := access{ch: ch}
	if c == nil {
		a.read = ch.Type == "public"
		a.visible = !ch.Hidden
		return a, nil
	}
	a.author, a.admin = c.ID == ch.AuthorID, c.isAdmin()
	a.visible = !ch.Hidden || a.author || a.admin
	for _, v := range ch.VisibilityList {
		a.visible = a.visible || v == c.ID
	}
	sub, err := s.cfg.Store.GetSubscription(ctx, addr, c.ID)
	switch {
	case err == nil:
		a.sub = &sub
		a.visible = true
	case !errors.Is(err, ErrNotFound):
		return access{}, err
	}
	a.write = a.author || (a.sub != nil && a.sub.IsAuthorized && a.sub.AccessRights.CanWrite())
	a.read = a.author || ch.Type == "public" || (a.sub != nil && a.sub.IsAuthorized && a.sub.AccessRights.CanRead())
	return a, nil
}

// visibleChannel returns the channel access, 404 when the caller may not
// even see it (hidden).
func (s *Server) visibleChannel(ctx context.Context, addr string, c *caller) (access, error) {
	a, err := s.access(ctx, addr, c)
	if err != nil {
		return a, err
	}
	if !a.visible {
		return a, fmt.Errorf("channel %s: %w", addr, ErrNotFound)
	}
	return a, nil
}

type createChannelBody struct {
	Name            string           `json:"name"`
	Description     string           `json:"description"`
	Type            string           `json:"type"`
	Hidden          bool             `json:"hidden"`
	VisibilityList  []VisibilityItem `json:"visibilityList"`
	Topics          []Topic          `json:"topics"`
	HasPresharedKey bool             `json:"hasPresharedKey"`
	Seed            string           `json:"seed"`
	PresharedKey    string           `json:"presharedKey"`
	ChannelAddress  string           `json:"channelAddress"`
	AuthorID        string           `json:"authorId"`
}

type VisibilityItem struct {
	ID string `json:"id"`
}

func (b *createChannelBody) validate() error {
	if len(b.Topics) == 0 || len(b.Topics) > 64 {
		return errf(http.StatusBadRequest, "No valid body provided!: 1 to 64 topics are required")
	}
	for _, t := range b.Topics {
		if t.Type == "" || len(t.Type) > 256 || len(t.Source) > 256 {
			return errf(http.StatusBadRequest, "No valid body provided!: a topic needs a type (and source) of at most 256 bytes")
		}
	}
	if len(b.Name) > 256 || len(b.Description) > 4096 {
		return errf(http.StatusBadRequest, "No valid body provided!: name or description too long")
	}
	switch b.Type {
	case "":
		b.Type = "private"
	case "public", "private":
	case "privatePlus":
		return errf(http.StatusBadRequest, "privatePlus channels are not supported (see docs/GATEWAY.md)")
	default:
		return errf(http.StatusBadRequest, "unknown channel type %q", b.Type)
	}
	if b.PresharedKey != "" && len(b.PresharedKey) != 32 {
		return errf(http.StatusBadRequest, "presharedKey must have 32 characters")
	}
	for _, v := range b.VisibilityList {
		if _, err := ParseDID(v.ID); err != nil {
			return errf(http.StatusBadRequest, "visibilityList: %v", err)
		}
	}
	return nil
}

func (b *createChannelBody) visibility() []string {
	out := make([]string, 0, len(b.VisibilityList))
	for _, v := range b.VisibilityList {
		out = append(out, v.ID)
	}
	return out
}

func authorSub(addr, did string) Subscription {
	return Subscription{ChannelAddress: addr, ID: did, Type: "Author", SubscriptionLink: addr, IsAuthorized: true,
		AccessRights: RightReadAndWrite, KeyloadLink: addr, SequenceLink: addr}
}

func (s *Server) createChannel(w http.ResponseWriter, r *http.Request, c *caller) error {
	var body createChannelBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if err := body.validate(); err != nil {
		return err
	}
	addr := randomHex(40) + ":" + randomHex(12)
	psk := body.PresharedKey
	if psk == "" && body.HasPresharedKey {
		psk = randomHex(16)
	}
	ch := Channel{Address: addr, Name: body.Name, Description: body.Description, Type: body.Type, Hidden: body.Hidden,
		VisibilityList: body.visibility(), AuthorID: c.ID, Topics: body.Topics, PresharedKey: psk, Created: s.cfg.Now().UTC()}
	if err := s.cfg.Store.CreateChannel(r.Context(), ch, authorSub(addr, c.ID)); err != nil {
		if errors.Is(err, ErrConflict) {
			return errf(http.StatusConflict, "channel already exists: the name %q is taken", body.Name)
		}
		return err
	}
	out := map[string]string{"channelAddress": addr}
	if body.Seed != "" {
		out["seed"] = body.Seed
	}
	if psk != "" {
		out["presharedKey"] = psk
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

type writeBody struct {
	Log
	Signature string `json:"signature"`
	Nonce     string `json:"nonce"`
}

// writeLog appends an entry. Its caller comes unchecked (deferredIdentity):
// the store checks the registration in the append transaction, and any
// refusal first resolves the caller so that an unregistered identity gets
// 401 whatever else is wrong with the request, as on every other route.
func (s *Server) writeLog(w http.ResponseWriter, r *http.Request, c *caller) error {
	err := s.appendLog(w, r, c)
	if err != nil && c.unchecked {
		if rerr := s.resolve(r.Context(), c); rerr != nil {
			return rerr
		}
	}
	return err
}

func (s *Server) appendLog(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	var body writeBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	body.Log.normalize()
	if body.Log.Type == "" && body.Log.Created == "" && body.Log.Metadata == nil && body.Log.PublicPayload == nil && body.Log.Payload == nil {
		return errf(http.StatusBadRequest, "empty body")
	}
	if len(body.Nonce) > 128 || len(body.Log.Type) > 1024 {
		return errf(http.StatusBadRequest, "nonce or type too long")
	}
	created, err := body.Log.CreatedTime()
	if err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	// Rights are checked by the store inside the append transaction (the
	// authoritative check); only a refusal costs the extra lookup that
	// tells a hidden channel (404) from a forbidden one (403).
	st := Statement{V: StatementVersion, ChannelAddress: addr, Writer: c.ID, Nonce: body.Nonce, Log: body.Log}
	se := SignedEntry{Signer: c.ID, Signature: body.Signature}
	if body.Signature != "" {
		if created.IsZero() {
			return errf(http.StatusBadRequest, "a signed entry must carry log.created")
		}
	} else {
		if created.IsZero() {
			created = s.cfg.Now().UTC()
			st.Log.Created = jsTime(created)
		}
		if st.Nonce == "" {
			st.Nonce = randomHex(16)
		}
		se.Signer = s.did
	}
	se.Statement = st
	msg, err := st.SigningInput()
	if err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	if body.Signature != "" {
		sig, err := ParseSignature(body.Signature)
		if err != nil {
			return errf(http.StatusBadRequest, "%v: %v", ErrBadSignature, err)
		}
		pub, _ := ParseDID(c.ID)
		if !ed25519.Verify(pub, msg, sig) {
			return errf(http.StatusBadRequest, "%v: for writer %s", ErrBadSignature, c.ID)
		}
	} else {
		se.Signature = hex.EncodeToString(ed25519.Sign(s.cfg.GatewayKey, msg))
	}
	leaf, err := LeafFromSigningInput(msg, se.Signer, se.Signature)
	if err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	if len(leaf) > MaxLogEntry {
		return errf(http.StatusRequestEntityTooLarge, "the signed entry has %d bytes; a channel log entry may have at most %d (C2SP tlog-tiles entry bundles)", len(leaf), MaxLogEntry)
	}
	// The caller's registration is checked inside the append transaction
	// (deferredIdentity), like its rights.
	e, err := s.cfg.Store.Append(r.Context(), AppendRequest{ChannelAddress: addr, Leaf: leaf, Writer: c.ID, Created: created, RequireRegistered: c.unchecked})
	if errors.Is(err, ErrUnregistered) {
		return errf(http.StatusUnauthorized, "identity %s is no longer registered", c.ID)
	}
	if errors.Is(err, ErrForbidden) {
		if rerr := s.resolve(r.Context(), c); rerr != nil {
			return rerr
		}
		if _, verr := s.visibleChannel(r.Context(), addr, c); verr != nil {
			return verr
		}
		return errf(http.StatusForbidden, "%s may not write to channel %s", c.ID, addr)
	}
	if err != nil {
		return err
	}
	s.metrics.addAppended(1)
	s.hub.notify(addr)
	writeJSON(w, http.StatusOK, entryData(e, se))
	return nil
}

// readQuery parses the read options: IS limit/index/asc/start-date/
// end-date, and lakeproof's since (entry index, ascending catch-up) and
// wait (long poll, at most 60s, only with since).
func readQuery(r *http.Request, defAsc bool) (EntryQuery, time.Duration, error) {
	qv := r.URL.Query()
	q := EntryQuery{Since: -1, Asc: defAsc}
	var err error
	if q.Limit, q.Offset, err = paging(qv.Get("limit"), qv.Get("index"), MaxReadLimit, MaxReadLimit); err != nil {
		return q, 0, err
	}
	if v := qv.Get("asc"); v != "" {
		q.Asc = v == "true"
	}
	if q.Start, err = queryTime(qv.Get("start-date")); err != nil {
		return q, 0, err
	}
	if q.End, err = queryTime(qv.Get("end-date")); err != nil {
		return q, 0, err
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.Start.After(q.End) {
		return q, 0, errf(http.StatusBadRequest, "start date is after end date")
	}
	var wait time.Duration
	if v := qv.Get("since"); v != "" {
		if q.Since, err = strconv.ParseInt(v, 10, 64); err != nil || q.Since < 0 {
			return q, 0, errf(http.StatusBadRequest, "since must be a non-negative entry index")
		}
		if v := qv.Get("wait"); v != "" {
			if wait, err = time.ParseDuration(v); err != nil {
				secs, err2 := strconv.Atoi(v)
				if err2 != nil {
					return q, 0, errf(http.StatusBadRequest, "wait must be a duration such as 30s")
				}
				wait = time.Duration(secs) * time.Second
			}
			wait = min(max(wait, 0), 60*time.Second)
		}
	}
	return q, wait, nil
}

func (s *Server) readLog(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	q, wait, err := readQuery(r, false)
	if err != nil {
		return err
	}
	a, err := s.visibleChannel(r.Context(), addr, c)
	if err != nil {
		return err
	}
	if !a.read {
		return errf(http.StatusForbidden, "%s may not read channel %s", c.ID, addr)
	}
	return s.serveEntries(w, r, addr, q, wait)
}

func (s *Server) serveEntries(w http.ResponseWriter, r *http.Request, addr string, q EntryQuery, wait time.Duration) error {
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	for {
		woken := s.hub.wait(addr)
		es, err := s.cfg.Store.Entries(r.Context(), addr, q)
		if err != nil {
			return err
		}
		if len(es) > 0 || deadline == nil {
			out := make([]ChannelData, 0, len(es))
			for _, e := range es {
				d, err := channelData(e)
				if err != nil {
					return err
				}
				out = append(out, d)
			}
			writeJSON(w, http.StatusOK, out)
			return nil
		}
		select {
		case <-woken:
		case <-time.After(2 * time.Second): // appends by other gateway processes
		case <-deadline:
			deadline = nil
		case <-s.closing:
			deadline = nil
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
}

func (s *Server) history(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, a, err := s.pathChannel(r, c)
	if err != nil {
		return err
	}
	psk := r.URL.Query().Get("preshared-key")
	ok := a.read || (psk != "" && a.ch.PresharedKey != "" && subtle.ConstantTimeCompare([]byte(psk), []byte(a.ch.PresharedKey)) == 1)
	switch {
	case !ok && c == nil && psk == "":
		return errf(http.StatusUnauthorized, "no preshared-key provided and not authenticated")
	case !ok:
		return errf(http.StatusForbidden, "not allowed to read the history of channel %s", addr)
	}
	q, wait, err := readQuery(r, true)
	if err != nil {
		return err
	}
	return s.serveEntries(w, r, addr, q, wait)
}

type validateItem struct {
	Link      string `json:"link"`
	Log       Log    `json:"log"`
	Source    Source `json:"source"`
	Signer    string `json:"signer"`
	Signature string `json:"signature"`
	Nonce     string `json:"nonce"`
}

type validateResult struct {
	Link      string `json:"link"`
	IsValid   bool   `json:"isValid"`
	Error     string `json:"error,omitempty"`
	TangleLog *Log   `json:"tangleLog,omitempty"`
	Index     *int64 `json:"index,omitempty"`
}

func canonLog(l Log) []byte {
	l.normalize()
	b, err := CanonicalValue(l)
	if err != nil {
		return nil
	}
	return b
}

// validate compares submitted entries with the stored ones and checks
// signatures: of the stored entry (tampering at rest) and, when the item
// carries one, of the submitted entry.
func (s *Server) validate(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	var items []validateItem
	if err := decodeBody(r, &items); err != nil {
		return err
	}
	if len(items) == 0 {
		return errf(http.StatusBadRequest, "no logs provided")
	}
	if len(items) > MaxReadLimit {
		return errf(http.StatusRequestEntityTooLarge, "at most %d logs per request", MaxReadLimit)
	}
	a, err := s.visibleChannel(r.Context(), addr, c)
	if err != nil {
		return err
	}
	if !a.read {
		return errf(http.StatusForbidden, "%s may not validate channel %s", c.ID, addr)
	}
	out := make([]validateResult, 0, len(items))
	for _, it := range items {
		res := validateResult{Link: it.Link}
		res.Error = s.validateOne(r.Context(), addr, it, &res)
		res.IsValid = res.Error == ""
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) validateOne(ctx context.Context, addr string, it validateItem, res *validateResult) string {
	if len(it.Link) != 105 || it.Link[:80] != addr[:80] || it.Link[80] != ':' {
		return "log not found on the channel"
	}
	e, err := s.cfg.Store.EntryByMessageID(ctx, addr, it.Link[81:])
	if err != nil {
		return "log not found on the channel"
	}
	res.Index = &e.Index
	se, err := ParseLeaf(e.Leaf)
	if err != nil {
		return "stored entry is malformed: " + err.Error()
	}
	if Link(addr, LeafHash(e.Leaf)) != it.Link || LeafHash(e.Leaf) != e.LeafHash {
		return "stored entry does not match its link"
	}
	if err := se.Verify(s.did); err != nil {
		return "signature does not match writer: stored entry: " + err.Error()
	}
	// The channel's transparency log must hold this entry at its index:
	// catches rows altered together with their leaf_hash, moved or
	// reordered.
	if msg := s.checkLogLeaf(ctx, e); msg != "" {
		return msg
	}
	if !bytes.Equal(canonLog(it.Log), canonLog(se.Statement.Log)) {
		res.TangleLog = &se.Statement.Log
		return "not the same data"
	}
	if it.Signature != "" {
		writer := it.Source.ID
		if writer == "" {
			writer = se.Statement.Writer
		}
		signer := it.Signer
		if signer == "" {
			signer = writer
		}
		sub := SignedEntry{Statement: Statement{V: StatementVersion, ChannelAddress: addr, Writer: writer, Nonce: it.Nonce, Log: it.Log}, Signer: signer, Signature: it.Signature}
		if err := sub.Verify(s.did); err != nil {
			return "signature does not match writer: " + err.Error()
		}
		if writer != se.Statement.Writer || it.Nonce != se.Statement.Nonce {
			return "not the same data"
		}
	}
	return ""
}

// ---- channel-info ----

type ChannelInfo struct {
	ChannelAddress           string           `json:"channelAddress"`
	Name                     string           `json:"name,omitempty"`
	Description              string           `json:"description,omitempty"`
	Type                     string           `json:"type"`
	Hidden                   bool             `json:"hidden"`
	VisibilityList           []VisibilityItem `json:"visibilityList,omitempty"`
	AuthorID                 string           `json:"authorId"`
	SubscriberIDs            []string         `json:"subscriberIds"`
	RequestedSubscriptionIDs []string         `json:"requestedSubscriptionIds"`
	Topics                   []Topic          `json:"topics"`
	Created                  string           `json:"created"`
	LatestMessage            string           `json:"latestMessage,omitempty"`
	Size                     *int64           `json:"size,omitempty"`
}

func (s *Server) channelInfo(ctx context.Context, ch Channel, c *caller) (ChannelInfo, error) {
	subs, err := s.cfg.Store.ListSubscriptions(ctx, ch.Address, nil)
	if err != nil {
		return ChannelInfo{}, err
	}
	out := ChannelInfo{ChannelAddress: ch.Address, Name: ch.Name, Description: ch.Description, Type: ch.Type, Hidden: ch.Hidden,
		AuthorID: ch.AuthorID, SubscriberIDs: []string{}, RequestedSubscriptionIDs: []string{}, Topics: ch.Topics,
		Created: jsTime(ch.Created), LatestMessage: jsTime(ch.LatestMessage)}
	if ch.Topics == nil {
		out.Topics = []Topic{}
	}
	for _, sub := range subs {
		switch {
		case sub.Type == "Author":
		case sub.IsAuthorized:
			out.SubscriberIDs = append(out.SubscriberIDs, sub.ID)
		default:
			out.RequestedSubscriptionIDs = append(out.RequestedSubscriptionIDs, sub.ID)
		}
	}
	if c != nil && (c.ID == ch.AuthorID || c.isAdmin()) {
		for _, v := range ch.VisibilityList {
			out.VisibilityList = append(out.VisibilityList, VisibilityItem{ID: v})
		}
	}
	size, err := s.cfg.Store.Size(ctx, ch.Address)
	if err != nil {
		return ChannelInfo{}, err
	}
	out.Size = &size
	return out, nil
}

func (s *Server) searchChannels(w http.ResponseWriter, r *http.Request, c *caller) error {
	qv := r.URL.Query()
	limit, offset, err := paging(qv.Get("limit"), qv.Get("index"), 100, 1000)
	if err != nil {
		return err
	}
	q := ChannelQuery{
		AuthorID: qv.Get("author-id"), SubscriberID: qv.Get("subscriber-id"), RequestedID: qv.Get("requested-subscription-id"),
		Name: qv.Get("name"), TopicType: qv.Get("topic-type"), TopicSource: qv.Get("topic-source"),
		Viewer: c.ID, ViewerIsAdmin: c.isAdmin(), Limit: limit, Offset: offset,
	}
	for _, f := range []string{q.Name, q.TopicType, q.TopicSource, q.AuthorID, q.SubscriberID, q.RequestedID} {
		if len(f) > 512 {
			return errf(http.StatusBadRequest, "search strings are limited to 512 bytes")
		}
	}
	if q.Created, err = queryTime(qv.Get("created")); err != nil {
		return err
	}
	if q.LatestMessage, err = queryTime(qv.Get("latest-message")); err != nil {
		return err
	}
	if v := qv.Get("hidden"); v != "" {
		h := v == "true"
		q.Hidden = &h
	}
	if v := qv.Get("asc"); v != "" {
		asc := v == "true"
		q.Asc = &asc
	}
	chs, err := s.cfg.Store.SearchChannels(r.Context(), q)
	if err != nil {
		return err
	}
	out := make([]ChannelInfo, 0, len(chs))
	for _, ch := range chs {
		ci, err := s.channelInfo(r.Context(), ch, c)
		if err != nil {
			return err
		}
		out = append(out, ci)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getChannelInfo(w http.ResponseWriter, r *http.Request, c *caller) error {
	_, a, err := s.pathChannel(r, c)
	if err != nil {
		return err
	}
	ci, err := s.channelInfo(r.Context(), a.ch, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ci)
	return nil
}

// addChannelInfo registers a channel record under a caller-chosen address
// (IS I3); the author must be the caller unless the caller is an Admin.
func (s *Server) addChannelInfo(w http.ResponseWriter, r *http.Request, c *caller) error {
	var body createChannelBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if !ValidAddress(body.ChannelAddress) {
		return errf(http.StatusBadRequest, "malformed channelAddress")
	}
	if body.AuthorID == "" {
		body.AuthorID = c.ID
	}
	if _, err := ParseDID(body.AuthorID); err != nil {
		return errf(http.StatusBadRequest, "authorId: %v", err)
	}
	if body.AuthorID != c.ID && !c.isAdmin() {
		return errf(http.StatusForbidden, "only an Admin can add a channel for another author")
	}
	if err := body.validate(); err != nil {
		return err
	}
	// A deleted channel's entries stay; its address must not be reused, or
	// a new author would inherit the old history.
	if n, err := s.cfg.Store.Size(r.Context(), body.ChannelAddress); err != nil {
		return err
	} else if n > 0 {
		return errf(http.StatusConflict, "channel address %s has entries; addresses are not reused", body.ChannelAddress)
	}
	ch := Channel{Address: body.ChannelAddress, Name: body.Name, Description: body.Description, Type: body.Type, Hidden: body.Hidden,
		VisibilityList: body.visibility(), AuthorID: body.AuthorID, Topics: body.Topics, Created: s.cfg.Now().UTC()}
	if err := s.cfg.Store.CreateChannel(r.Context(), ch, authorSub(ch.Address, ch.AuthorID)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) updateChannelInfo(w http.ResponseWriter, r *http.Request, c *caller) error {
	var body createChannelBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if !ValidAddress(body.ChannelAddress) {
		return errf(http.StatusBadRequest, "malformed channelAddress")
	}
	a, err := s.visibleChannel(r.Context(), body.ChannelAddress, c)
	if err != nil {
		return err
	}
	if !a.author && !a.admin {
		return errf(http.StatusForbidden, "only the author or an Admin can update channel %s", body.ChannelAddress)
	}
	body.Type = a.ch.Type
	if err := body.validate(); err != nil {
		return err
	}
	ch := a.ch
	ch.Topics, ch.Hidden, ch.VisibilityList = body.Topics, body.Hidden, body.visibility()
	if err := s.cfg.Store.UpdateChannel(r.Context(), ch); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteChannelInfo(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, a, err := s.pathChannel(r, c)
	if err != nil {
		return err
	}
	if !a.author && !a.admin {
		return errf(http.StatusForbidden, "only the author or an Admin can delete channel %s", addr)
	}
	if err := s.cfg.Store.DeleteChannel(r.Context(), addr); err != nil {
		return err
	}
	s.hub.notify(addr)
	w.WriteHeader(http.StatusOK)
	return nil
}

// subscriptionLink is the deterministic link of did's subscription to addr.
func subscriptionLink(addr, did string) string {
	h := sha256.Sum256([]byte(addr + "\n" + did))
	return addr[:80] + ":" + hex.EncodeToString(h[:12])
}

// pathChannel reads the channel address from the route path and returns
// the caller's access to it (404 if the caller may not see the channel).
func (s *Server) pathChannel(r *http.Request, c *caller) (string, access, error) {
	addr, err := pathAddr(r)
	if err != nil {
		return "", access{}, err
	}
	a, err := s.visibleChannel(r.Context(), addr, c)
	return addr, a, err
}
