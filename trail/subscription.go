package trail

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// subscriptionJSON is a subscription plus whether the subscriber holds a
// valid VerifiedIdentityCredential (so an author can decide).
type subscriptionJSON struct {
	Subscription
	IsVerified bool `json:"isVerified"`
}

func (s *Server) subJSON(r *http.Request, sub Subscription) subscriptionJSON {
	ok, _ := s.verification(r, sub.ID)
	return subscriptionJSON{Subscription: sub, IsVerified: ok}
}

func (s *Server) requestSubscription(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	var body struct {
		Seed         string       `json:"seed"`
		AccessRights AccessRights `json:"accessRights"`
		PresharedKey string       `json:"presharedKey"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil && !isEmptyBody(err) {
			return err
		}
	}
	if body.AccessRights == "" {
		body.AccessRights = RightRead
	}
	if !body.AccessRights.valid() {
		return errf(http.StatusBadRequest, "unknown accessRights %q", body.AccessRights)
	}
	a, err := s.visibleChannel(r.Context(), addr, c)
	if err != nil {
		return err
	}
	sub := Subscription{ChannelAddress: addr, ID: c.ID, Type: "Subscriber", SubscriptionLink: subscriptionLink(addr, c.ID), AccessRights: body.AccessRights}
	pskOK := body.PresharedKey != "" && a.ch.PresharedKey != "" && body.PresharedKey == a.ch.PresharedKey
	if a.ch.Type == "public" || pskOK {
		// As in IS: no author decision needed, but only the Audit right.
		sub.IsAuthorized, sub.AccessRights, sub.KeyloadLink = true, RightAudit, addr
	}
	if err := s.cfg.Store.CreateSubscription(r.Context(), sub); err != nil {
		if errors.Is(err, ErrConflict) {
			return errf(http.StatusConflict, "subscription already requested")
		}
		return err
	}
	out := map[string]string{"subscriptionLink": sub.SubscriptionLink}
	if body.Seed != "" {
		out["seed"] = body.Seed
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func isEmptyBody(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.msg == "empty body"
}

type subTarget struct {
	SubscriptionLink string       `json:"subscriptionLink"`
	ID               string       `json:"id"`
	AccessRights     AccessRights `json:"accessRights"`
}

// findTarget resolves the subscription named by id or subscriptionLink.
func (s *Server) findTarget(r *http.Request, addr string, t subTarget) (Subscription, error) {
	switch {
	case t.ID != "":
		return s.cfg.Store.GetSubscription(r.Context(), addr, t.ID)
	case t.SubscriptionLink != "":
		subs, err := s.cfg.Store.ListSubscriptions(r.Context(), addr, nil)
		if err != nil {
			return Subscription{}, err
		}
		for _, sub := range subs {
			if sub.SubscriptionLink == t.SubscriptionLink && sub.Type != "Author" {
				return sub, nil
			}
		}
		return Subscription{}, fmt.Errorf("subscription %s: %w", t.SubscriptionLink, ErrNotFound)
	}
	return Subscription{}, errf(http.StatusBadRequest, "no id or subscriptionLink provided")
}

func (s *Server) authorOnly(r *http.Request, c *caller) (string, access, error) {
	addr, err := pathAddr(r)
	if err != nil {
		return "", access{}, err
	}
	a, err := s.visibleChannel(r.Context(), addr, c)
	if err != nil {
		return "", a, err
	}
	if !a.author {
		return "", a, errf(http.StatusForbidden, "not the valid author of the channel")
	}
	return addr, a, nil
}

func (s *Server) authorizeSubscription(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, _, err := s.authorOnly(r, c)
	if err != nil {
		return err
	}
	var t subTarget
	if err := decodeBody(r, &t); err != nil {
		return err
	}
	if t.AccessRights != "" && !t.AccessRights.valid() {
		return errf(http.StatusBadRequest, "unknown accessRights %q", t.AccessRights)
	}
	sub, err := s.findTarget(r, addr, t)
	if err != nil {
		return err
	}
	if sub.Type == "Author" {
		return errf(http.StatusBadRequest, "the author's subscription cannot be authorized")
	}
	if sub.IsAuthorized && (t.AccessRights == "" || t.AccessRights == sub.AccessRights) {
		return errf(http.StatusConflict, "subscription already authorized")
	}
	sub.IsAuthorized = true
	if t.AccessRights != "" {
		sub.AccessRights = t.AccessRights
	}
	sub.KeyloadLink, sub.SequenceLink = addr, sub.SubscriptionLink
	if err := s.cfg.Store.UpdateSubscription(r.Context(), sub); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"keyloadLink": sub.KeyloadLink, "sequenceLink": sub.SequenceLink})
	return nil
}

func (s *Server) revokeSubscription(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, _, err := s.authorOnly(r, c)
	if err != nil {
		return err
	}
	var t subTarget
	if err := decodeBody(r, &t); err != nil {
		return err
	}
	sub, err := s.findTarget(r, addr, t)
	if err != nil {
		return err
	}
	if sub.Type == "Author" {
		return errf(http.StatusBadRequest, "the author's subscription cannot be revoked")
	}
	if err := s.cfg.Store.DeleteSubscription(r.Context(), addr, sub.ID); err != nil {
		return err
	}
	s.hub.notify(addr) // event streams re-check their reader's rights
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, a, err := s.pathChannel(r, c)
	if err != nil {
		return err
	}
	if !a.author && !a.admin {
		return errf(http.StatusForbidden, "only the author or an Admin can list the subscriptions of a channel")
	}
	var authorized *bool
	if v := r.URL.Query().Get("is-authorized"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errf(http.StatusBadRequest, "is-authorized must be true or false")
		}
		authorized = &b
	}
	subs, err := s.cfg.Store.ListSubscriptions(r.Context(), addr, authorized)
	if err != nil {
		return err
	}
	out := make([]subscriptionJSON, 0, len(subs))
	for _, sub := range subs {
		out = append(out, s.subJSON(r, sub))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, did, a, err := s.subscriptionTarget(r, c)
	if err != nil {
		return err
	}
	if did != c.ID && !a.author && !a.admin {
		return errf(http.StatusForbidden, "only the subscriber, the author or an Admin can see this subscription")
	}
	sub, err := s.cfg.Store.GetSubscription(r.Context(), addr, did)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.subJSON(r, sub))
	return nil
}

func (s *Server) addSubscription(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, did, a, err := s.subscriptionTarget(r, c)
	if err != nil {
		return err
	}
	if !a.author && !a.admin {
		return errf(http.StatusForbidden, "only the author or an Admin can add subscriptions")
	}
	var sub Subscription
	if err := decodeBody(r, &sub); err != nil {
		return err
	}
	if (sub.ID != "" && sub.ID != did) || (sub.ChannelAddress != "" && sub.ChannelAddress != addr) {
		return errf(http.StatusBadRequest, "body id/channelAddress differ from the path")
	}
	if !sub.AccessRights.valid() {
		return errf(http.StatusBadRequest, "unknown accessRights %q", sub.AccessRights)
	}
	sub.ID, sub.ChannelAddress, sub.Type = did, addr, "Subscriber"
	if sub.SubscriptionLink == "" {
		sub.SubscriptionLink = subscriptionLink(addr, did)
	}
	if err := s.cfg.Store.CreateSubscription(r.Context(), sub); err != nil {
		if errors.Is(err, ErrConflict) {
			return errf(http.StatusConflict, "subscription already added")
		}
		return err
	}
	writeJSON(w, http.StatusCreated, sub)
	return nil
}

// updateSubscription: the author (or an Admin) may change anything but the
// author's own record; the subscriber may change only its links, never
// isAuthorized or accessRights.
func (s *Server) updateSubscription(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, did, a, err := s.subscriptionTarget(r, c)
	if err != nil {
		return err
	}
	if did != c.ID && !a.author && !a.admin {
		return errf(http.StatusForbidden, "not authorized to update the subscription")
	}
	cur, err := s.cfg.Store.GetSubscription(r.Context(), addr, did)
	if err != nil {
		return err
	}
	var upd struct {
		SubscriptionLink *string       `json:"subscriptionLink"`
		IsAuthorized     *bool         `json:"isAuthorized"`
		AccessRights     *AccessRights `json:"accessRights"`
		KeyloadLink      *string       `json:"keyloadLink"`
		SequenceLink     *string       `json:"sequenceLink"`
		PskID            *string       `json:"pskId"`
	}
	if err := decodeBody(r, &upd); err != nil {
		return err
	}
	changesRights := (upd.IsAuthorized != nil && *upd.IsAuthorized != cur.IsAuthorized) || (upd.AccessRights != nil && *upd.AccessRights != cur.AccessRights)
	if changesRights && (!(a.author || a.admin) || cur.Type == "Author") {
		return errf(http.StatusForbidden, "only the author can change isAuthorized or accessRights of a subscriber")
	}
	if upd.AccessRights != nil && !upd.AccessRights.valid() {
		return errf(http.StatusBadRequest, "unknown accessRights %q", *upd.AccessRights)
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&cur.SubscriptionLink, upd.SubscriptionLink)
	set(&cur.KeyloadLink, upd.KeyloadLink)
	set(&cur.SequenceLink, upd.SequenceLink)
	set(&cur.PskID, upd.PskID)
	if upd.IsAuthorized != nil {
		cur.IsAuthorized = *upd.IsAuthorized
	}
	if upd.AccessRights != nil {
		cur.AccessRights = *upd.AccessRights
	}
	if err := s.cfg.Store.UpdateSubscription(r.Context(), cur); err != nil {
		return err
	}
	s.hub.notify(addr)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, did, a, err := s.subscriptionTarget(r, c)
	if err != nil {
		return err
	}
	if did != c.ID && !a.author && !a.admin {
		return errf(http.StatusForbidden, "not authorized to delete the subscription")
	}
	if did == a.ch.AuthorID {
		return errf(http.StatusBadRequest, "the author's subscription cannot be deleted")
	}
	if err := s.cfg.Store.DeleteSubscription(r.Context(), addr, did); err != nil {
		return err
	}
	s.hub.notify(addr)
	w.WriteHeader(http.StatusOK)
	return nil
}

// events streams a channel's entries as Server-Sent Events: "id: <index>",
// "event: entry", "data: <ChannelData JSON>". It starts at ?since= (or
// after Last-Event-ID; default: only new entries), re-checks the reader's
// rights after every wake-up and ends with "event: revoked" when they are
// gone.
func (s *Server) events(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, a, err := s.pathChannel(r, c)
	if err != nil {
		return err
	}
	if !a.read {
		return errf(http.StatusForbidden, "%s may not read channel %s", c.ID, addr)
	}
	cursor := int64(-1)
	if v := r.URL.Query().Get("since"); v != "" {
		if cursor, err = strconv.ParseInt(v, 10, 64); err != nil || cursor < 0 {
			return errf(http.StatusBadRequest, "since must be a non-negative entry index")
		}
	} else if v := r.Header.Get("Last-Event-ID"); v != "" {
		last, err := strconv.ParseInt(v, 10, 64)
		if err != nil || last < -1 {
			return errf(http.StatusBadRequest, "malformed Last-Event-ID")
		}
		cursor = last + 1
	}
	if cursor < 0 {
		if cursor, err = s.cfg.Store.Size(r.Context(), addr); err != nil {
			return err
		}
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": lakeproof channel %s from index %d\nretry: 1000\n\n", addr, cursor)
	if err := rc.Flush(); err != nil {
		return nil
	}
	s.metrics.addStreams(1)
	defer s.metrics.addStreams(-1)
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	poll := time.NewTicker(2 * time.Second) // appends by other gateway processes
	defer poll.Stop()
	const batch = 256
	for {
		woken := s.hub.wait(addr)
		es, err := s.cfg.Store.Entries(r.Context(), addr, EntryQuery{Since: cursor, Limit: batch})
		if err != nil {
			return nil // headers are sent: end the stream, the client resumes
		}
		for _, e := range es {
			d, err := channelData(e)
			if err != nil {
				return nil
			}
			b, _ := json.Marshal(d)
			fmt.Fprintf(w, "id: %d\nevent: entry\ndata: %s\n\n", e.Index, b)
			cursor = e.Index + 1
		}
		if len(es) > 0 {
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
		if len(es) == batch {
			continue
		}
		select {
		case <-woken:
		case <-poll.C:
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			if err := rc.Flush(); err != nil {
				return nil
			}
			continue
		case <-r.Context().Done():
			return nil
		case <-s.closing:
			fmt.Fprint(w, "event: shutdown\ndata: {}\n\n")
			_ = rc.Flush()
			return nil
		}
		if a, err := s.access(r.Context(), addr, c); err != nil || !a.read {
			fmt.Fprint(w, "event: revoked\ndata: {}\n\n")
			_ = rc.Flush()
			return nil
		}
	}
}

// subscriptionTarget reads the channel address and the subscriber's DID
// from the path of a /subscriptions/{addr}/{id} route and returns the
// caller's access to that channel (404 if the caller may not see it).
func (s *Server) subscriptionTarget(r *http.Request, c *caller) (addr, did string, a access, err error) {
	if did, err = pathDID(r, "id"); err != nil {
		return
	}
	addr, a, err = s.pathChannel(r, c)
	return
}
