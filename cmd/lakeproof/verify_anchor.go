package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/trail"
)

// verifyTrustFlags are verify's trust anchors for two-level bundles.
type verifyTrustFlags struct {
	gateways, writers []string
	file, gateway     string
}

func (t *verifyTrustFlags) add(f *pflag.FlagSet) {
	f.StringArrayVar(&t.gateways, "trust-gateway", nil, "trusted gateway verifier key ('lakeproof serve --print-verifier') or a file holding it; repeatable")
	f.StringArrayVar(&t.writers, "trust-writer", nil, "trusted writer DID (did:key:…); repeatable")
	f.StringVar(&t.file, "trust", "", `trust file: {"gateways":[KEY,…],"writers":[DID,…]} (docs/FORMAT.md §12)`)
	f.StringVar(&t.gateway, "gateway", "", "also check that this gateway's latest checkpoint extends the bundle's")
}

func (t *verifyTrustFlags) given() bool {
	return len(t.gateways) > 0 || len(t.writers) > 0 || t.file != "" || t.gateway != ""
}

// load merges the trust file and the flags.
func (t *verifyTrustFlags) load() (anchor.Trust, error) {
	var tr anchor.Trust
	if t.file != "" {
		raw, err := readLimited(t.file, 1<<20)
		if err != nil {
			return tr, usageError{fmt.Errorf("read trust file: %w", err)}
		}
		if tr, err = anchor.ParseTrust(raw); err != nil {
			return tr, usageError{fmt.Errorf("%s: %w", t.file, err)}
		}
	}
	var keys []string
	for _, g := range t.gateways {
		k, err := readGatewayKey(g) // a key, or a file holding one
		if err != nil {
			return tr, err
		}
		keys = append(keys, k)
	}
	raw, _ := json.Marshal(anchor.Trust{Gateways: keys, Writers: t.writers})
	extra, err := anchor.ParseTrust(raw)
	if err != nil {
		return tr, usageError{fmt.Errorf("--trust-gateway/--trust-writer: %w", err)}
	}
	tr.Gateways = append(tr.Gateways, extra.Gateways...)
	tr.Writers = append(tr.Writers, extra.Writers...)
	return tr, nil
}

// anchorCheck names the link that err reports, for verify's output.
func anchorCheck(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{
		{lakeproof.ErrMalformedBundle, "malformed"},
		{anchor.ErrEntry, "entry"},
		{anchor.ErrEntrySignature, "entry-signature"},
		{anchor.ErrWriterNotTrusted, "writer-trust"},
		{anchor.ErrPayloadMismatch, "payload"},
		{anchor.ErrCheckpointSignature, "checkpoint-signature"},
		{anchor.ErrOriginMismatch, "channel"},
		{anchor.ErrEntryInclusion, "entry-inclusion"},
		{anchor.ErrNewerThanGateway, "newer-than-gateway"},
		{anchor.ErrInconsistent, "gateway-consistency"},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}

// verifyAnchorLevel checks the anchor level of a bundle whose dataset level
// verified. It returns the failed check's name and the error; a check name
// of "" means the error is not a verification failure (usage, I/O). checked
// is false when no trust anchors were given and nothing was checked.
func verifyAnchorLevel(ctx context.Context, o verifyOptions, b *lakeproof.Bundle, stdout io.Writer) (check string, checked bool, err error) {
	if b.Anchor == nil {
		return "anchor", false, fmt.Errorf("the bundle has no anchor level (format %s): its root cannot be checked against the trusted keys; "+
			"make a two-level bundle with 'lakeproof prove' on an anchored index", b.Format)
	}
	tr, err := o.trust.load()
	if err != nil {
		return "", false, err
	}
	if len(tr.Gateways) == 0 || len(tr.Writers) == 0 {
		if o.trust.given() {
			return "", false, usageError{errors.New("give both a trusted gateway key (--trust-gateway) and a trusted writer (--trust-writer), or a --trust file")}
		}
		if !o.JSON && !o.Quiet {
			fmt.Fprintf(stdout, "note: anchor level not checked: give --trust-gateway KEY and --trust-writer DID (or --trust FILE)\n")
		}
		return "", false, nil
	}
	v, err := anchor.Verify(b, tr)
	if err != nil {
		if c := anchorCheck(err); c != "" {
			return c, false, err
		}
		return "", false, err
	}
	if o.trust.gateway != "" {
		c := trail.NewClient(o.trust.gateway)
		latest, err := anchor.CheckGateway(ctx, c, v, tr)
		if err != nil {
			if c := anchorCheck(err); c != "" {
				return c, false, err
			}
			return "", false, err
		}
		if !o.JSON && !o.Quiet {
			fmt.Fprintf(stdout, "OK gateway %s: its checkpoint of size %d extends the bundle's of size %d\n", o.trust.gateway, latest.Size, v.Size)
		}
	}
	if !o.JSON && !o.Quiet {
		fmt.Fprintf(stdout, "OK anchor: dataset %q root %s, entry %d of channel %s signed by %s, in checkpoint %d signed by %s\n",
			v.Payload.Dataset, v.Payload.Root, v.Index, v.Channel, v.Writer, v.Size, v.Gateway)
	}
	return "", true, nil
}
