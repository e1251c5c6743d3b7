package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/spf13/cobra"
)

// channelOpts are the flags shared by every `lakeproof channel` command.
type channelOpts struct {
	gateway, key, apiKey string
	json                 bool
}

// client loads the key file, resolves the gateway (flag, $LAKEPROOF_GATEWAY,
// the key file's gateway, then http://127.0.0.1:8080) and logs in.
func (o channelOpts) client(ctx context.Context) (*trail.Client, error) {
	if o.key == "" {
		return nil, usageError{errors.New("--key FILE is required (create one with 'lakeproof identity new')")}
	}
	k, priv, err := trail.LoadKeyFile(o.key)
	if err != nil {
		return nil, usageError{err}
	}
	gw := trailFirstSet(o.gateway, os.Getenv("LAKEPROOF_GATEWAY"), k.Gateway, "http://127.0.0.1:8080")
	c := trail.NewClient(gw)
	c.ID, c.Key, c.APIKey = k.ID, priv, trailFirstSet(o.apiKey, os.Getenv("LAKEPROOF_API_KEY"))
	if err := c.Authenticate(ctx); err != nil {
		return nil, fmt.Errorf("log in to %s as %s: %w", gw, k.ID, err)
	}
	return c, nil
}

type channelCreateOpts struct {
	name, description, typ string
	topics                 []string
	hidden                 bool
	visible                []string
}

type channelSearchOpts struct {
	name, topicType, topicSource, author string
	limit                                int
}

type channelWriteOpts struct {
	typ, payload, publicPayload, metadata, payloadFile string
}

type channelReadOpts struct {
	since, limit int64
	asc          bool
}

func init() {
	register(func() *cobra.Command {
		o := &channelOpts{}
		cmd := &cobra.Command{
			Use:   "channel",
			Short: "Use audit-trail channels: create, search, subscribe, authorize, revoke, write, read, follow",
			Long: `Talk to an audit-trail gateway as the identity of --key (a file from 'lakeproof identity new').
The gateway is --gateway, else $LAKEPROOF_GATEWAY, else the one recorded in the key file,
else http://127.0.0.1:8080. Entries written here are signed with the key file's key.`,
		}
		pf := cmd.PersistentFlags()
		pf.StringVar(&o.gateway, "gateway", "", "gateway URL")
		pf.StringVar(&o.key, "key", "", "key file of the acting identity")
		pf.StringVar(&o.apiKey, "api-key", "", "gateway api key (default $LAKEPROOF_API_KEY)")
		pf.BoolVar(&o.json, "json", false, "print JSON")

		co := &channelCreateOpts{}
		create := &cobra.Command{
			Use:   "create --name NAME --topic TYPE:SOURCE",
			Short: "Create a channel; prints its address",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runChannelCreate(cmd.Context(), cmd.OutOrStdout(), *o, *co)
			},
		}
		f := create.Flags()
		f.StringVar(&co.name, "name", "", "unique channel name")
		f.StringVar(&co.description, "description", "", "description")
		f.StringVar(&co.typ, "type", "private", "private or public")
		f.StringArrayVar(&co.topics, "topic", nil, "topic TYPE:SOURCE (repeatable, at least one)")
		f.BoolVar(&co.hidden, "hidden", false, "hide the channel from searches")
		f.StringArrayVar(&co.visible, "visible-to", nil, "DID that may see the hidden channel (repeatable)")

		so := &channelSearchOpts{}
		search := &cobra.Command{
			Use:   "search [--name S] [--topic-type S] [--topic-source S] [--author DID]",
			Short: "Search channels (plain, case-insensitive substring matching)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runChannelSearch(cmd.Context(), cmd.OutOrStdout(), *o, *so)
			},
		}
		f = search.Flags()
		f.StringVar(&so.name, "name", "", "name contains")
		f.StringVar(&so.topicType, "topic-type", "", "a topic type contains")
		f.StringVar(&so.topicSource, "topic-source", "", "a topic source contains")
		f.StringVar(&so.author, "author", "", "author DID (exact)")
		f.IntVar(&so.limit, "limit", 100, "most results")

		var rights string
		subscribe := &cobra.Command{
			Use:   "subscribe ADDR [--rights Read|Write|ReadAndWrite|Audit]",
			Short: "Request a subscription (the author must authorize it)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runChannelSubscribe(cmd.Context(), cmd.OutOrStdout(), *o, args[0], rights)
			},
		}
		subscribe.Flags().StringVar(&rights, "rights", "Read", "requested rights")

		var target, grant string
		authorize := &cobra.Command{
			Use:   "authorize ADDR --id DID [--rights R]",
			Short: "Authorize a requested subscription (author only)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runChannelAuthorize(cmd.Context(), cmd.OutOrStdout(), *o, args[0], target, grant, false)
			},
		}
		authorize.Flags().StringVar(&target, "id", "", "DID of the subscriber")
		authorize.Flags().StringVar(&grant, "rights", "", "rights to grant (default: as requested)")
		revoke := &cobra.Command{
			Use:   "revoke ADDR --id DID",
			Short: "Revoke a subscription (author only)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runChannelAuthorize(cmd.Context(), cmd.OutOrStdout(), *o, args[0], target, "", true)
			},
		}
		revoke.Flags().StringVar(&target, "id", "", "DID of the subscriber")
		subs := &cobra.Command{
			Use:   "subscriptions ADDR",
			Short: "List a channel's subscriptions and requests (author or Admin)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runChannelSubscriptions(cmd.Context(), cmd.OutOrStdout(), *o, args[0])
			},
		}

		wo := &channelWriteOpts{}
		write := &cobra.Command{
			Use:   "write ADDR [--type T] [--payload JSON | --payload-file FILE|-] [--metadata JSON] [--public-payload JSON]",
			Short: "Append an entry signed with the key file's key",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runChannelWrite(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), *o, args[0], *wo)
			},
		}
		f = write.Flags()
		f.StringVar(&wo.typ, "type", "", "entry type")
		f.StringVar(&wo.payload, "payload", "", "payload: JSON, or a plain string")
		f.StringVar(&wo.payloadFile, "payload-file", "", "read the payload (JSON) from FILE, or - for stdin")
		f.StringVar(&wo.publicPayload, "public-payload", "", "public payload: JSON, or a plain string")
		f.StringVar(&wo.metadata, "metadata", "", "metadata: JSON, or a plain string")

		ro := &channelReadOpts{}
		read := &cobra.Command{
			Use:   "read ADDR [--since N] [--limit N]",
			Short: "Print a channel's entries (oldest first)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runChannelRead(cmd.Context(), cmd.OutOrStdout(), *o, args[0], *ro)
			},
		}
		read.Flags().Int64Var(&ro.since, "since", 0, "first entry index")
		read.Flags().Int64Var(&ro.limit, "limit", 0, "most entries (0: up to the gateway's maximum)")
		var followSince int64
		follow := &cobra.Command{
			Use:   "follow ADDR [--since N]",
			Short: "Print new entries as they arrive (server-sent events; resumes after disconnects)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runChannelFollow(cmd.Context(), cmd.OutOrStdout(), *o, args[0], followSince)
			},
		}
		follow.Flags().Int64Var(&followSince, "since", -1, "start at this entry index (-1: only new entries)")
		cmd.AddCommand(create, search, subscribe, authorize, revoke, subs, write, read, follow, newChannelWatchCmd(o), newChannelVerifyCmd(o))
		return cmd
	})
}

func runChannelCreate(ctx context.Context, w io.Writer, o channelOpts, co channelCreateOpts) error {
	if len(co.topics) == 0 {
		return usageError{errors.New("at least one --topic TYPE:SOURCE is required")}
	}
	req := trail.CreateChannelRequest{Name: co.name, Description: co.description, Type: co.typ, Hidden: co.hidden}
	for _, t := range co.topics {
		typ, src, ok := strings.Cut(t, ":")
		if !ok || typ == "" {
			return usageError{fmt.Errorf("--topic %q: want TYPE:SOURCE", t)}
		}
		req.Topics = append(req.Topics, trail.Topic{Type: typ, Source: src})
	}
	for _, v := range co.visible {
		req.VisibilityList = append(req.VisibilityList, trail.VisibilityItem{ID: v})
	}
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	addr, err := c.CreateChannel(ctx, req)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(w).Encode(map[string]string{"channelAddress": addr})
	}
	_, err = fmt.Fprintln(w, addr)
	return err
}

func runChannelSearch(ctx context.Context, w io.Writer, o channelOpts, so channelSearchOpts) error {
	q := url.Values{}
	for k, v := range map[string]string{"name": so.name, "topic-type": so.topicType, "topic-source": so.topicSource, "author-id": so.author} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(so.limit))
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	found, err := c.SearchChannels(ctx, q)
	if err != nil {
		return err
	}
	if o.json {
		if found == nil {
			found = []trail.ChannelInfo{}
		}
		return json.NewEncoder(w).Encode(found)
	}
	for _, ch := range found {
		topics := make([]string, 0, len(ch.Topics))
		for _, t := range ch.Topics {
			topics = append(topics, t.Type+":"+t.Source)
		}
		fmt.Fprintf(w, "%s  %-20s %-7s author %s  topics %s\n", ch.ChannelAddress, ch.Name, ch.Type, ch.AuthorID, strings.Join(topics, ","))
	}
	if len(found) == 0 {
		fmt.Fprintln(w, "no channels found")
	}
	return nil
}

func runChannelSubscribe(ctx context.Context, w io.Writer, o channelOpts, addr, rights string) error {
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	link, err := c.RequestSubscription(ctx, addr, trail.AccessRights(rights))
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(w).Encode(map[string]string{"subscriptionLink": link, "id": c.ID})
	}
	fmt.Fprintf(w, "requested %s on %s as %s; the author must now run:\n  lakeproof channel authorize %s --id %s\n", rights, addr, c.ID, addr, c.ID)
	return nil
}

func runChannelAuthorize(ctx context.Context, w io.Writer, o channelOpts, addr, did, rights string, revoke bool) error {
	if did == "" {
		return usageError{errors.New("--id DID is required")}
	}
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	verb := "authorized"
	if revoke {
		verb, err = "revoked", c.Revoke(ctx, addr, did)
	} else {
		err = c.Authorize(ctx, addr, did, trail.AccessRights(rights))
	}
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(w).Encode(map[string]string{"channelAddress": addr, "id": did, "result": verb})
	}
	fmt.Fprintf(w, "%s %s on %s\n", verb, did, addr)
	return nil
}

func runChannelSubscriptions(ctx context.Context, w io.Writer, o channelOpts, addr string) error {
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	var subs []map[string]any
	if err := c.Get(ctx, "/subscriptions/"+addr, nil, &subs); err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(w).Encode(subs)
	}
	for _, s := range subs {
		state := "requested"
		if s["isAuthorized"] == true {
			state = "authorized"
		}
		fmt.Fprintf(w, "%-10s %-12v %-12s verified=%v %v\n", s["type"], s["accessRights"], state, s["isVerified"], s["id"])
	}
	return nil
}

// trailJSONOrString returns v as raw JSON when it parses, else as a JSON string.
func trailJSONOrString(v string) json.RawMessage {
	if v == "" {
		return nil
	}
	if json.Valid([]byte(v)) {
		return json.RawMessage(v)
	}
	b, _ := json.Marshal(v)
	return b
}

func runChannelWrite(ctx context.Context, stdin io.Reader, w io.Writer, o channelOpts, addr string, wo channelWriteOpts) error {
	l := trail.Log{Type: wo.typ, Payload: trailJSONOrString(wo.payload), PublicPayload: trailJSONOrString(wo.publicPayload), Metadata: trailJSONOrString(wo.metadata)}
	if wo.payloadFile != "" {
		var (
			b   []byte
			err error
		)
		if wo.payloadFile == "-" {
			b, err = io.ReadAll(io.LimitReader(stdin, 16<<20))
		} else {
			b, err = os.ReadFile(wo.payloadFile)
		}
		if err != nil {
			return usageError{fmt.Errorf("read payload: %w", err)}
		}
		if !json.Valid(b) {
			return usageError{fmt.Errorf("payload file %q is not JSON", wo.payloadFile)}
		}
		l.Payload = b
	}
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	d, err := c.Write(ctx, addr, l)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(w).Encode(d)
	}
	fmt.Fprintf(w, "entry %d written to %s\nlink %s\nsigned by %s\n", d.Index, addr, d.Link, d.Signer)
	return nil
}

func printTrailEntry(w io.Writer, d trail.ChannelData, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(d)
	}
	body := string(d.Log.Payload)
	if body == "" {
		body = string(d.Log.PublicPayload)
	}
	if len(body) > 200 {
		body = body[:197] + "..."
	}
	_, err := fmt.Fprintf(w, "#%d %s %s by %s %s\n", d.Index, d.Log.Created, trailFirstSet(d.Log.Type, "-"), d.Source.ID, body)
	return err
}

func runChannelRead(ctx context.Context, w io.Writer, o channelOpts, addr string, ro channelReadOpts) error {
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	q := url.Values{"since": {strconv.FormatInt(ro.since, 10)}}
	if ro.limit > 0 {
		q.Set("limit", strconv.FormatInt(ro.limit, 10))
	}
	es, err := c.Read(ctx, addr, q)
	if err != nil {
		return err
	}
	if o.json {
		if es == nil {
			es = []trail.ChannelData{}
		}
		return json.NewEncoder(w).Encode(es)
	}
	for _, d := range es {
		if err := printTrailEntry(w, d, false); err != nil {
			return err
		}
	}
	return nil
}

// runChannelFollow prints entries (one JSON object per line with --json)
// until the context ends (Ctrl-C: exit 0) or access is revoked (exit 1).
func runChannelFollow(ctx context.Context, w io.Writer, o channelOpts, addr string, since int64) error {
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	err = c.Follow(ctx, addr, since, func(d trail.ChannelData) error { return printTrailEntry(w, d, o.json) })
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return nil
	case errors.Is(err, trail.ErrStreamEnded):
		return invalidError{err}
	}
	return err
}
