package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"

	"github.com/lakeproof/lakeproof/trail"
)

// Anchor is the anchor block of a job file, in defaults or in a dataset
// (a dataset's fields override the defaults'):
//
//	anchor:
//	  channel: <80 hex>:<24 hex>   # the channel to anchor to; set = anchor
//	  gateway: https://gw.example  # default: $LAKEPROOF_GATEWAY, then the key file's
//	  key: /etc/lakeproof/writer.key  # the writer's key (lakeproof identity new);
//	                               # relative to the job file's directory
//	  trust_gateway: <verifier key>  # optional: check the checkpoint signature
//
// Every version a run publishes for the dataset (a run, or the merge of a
// sharded run; never a shard, never a run that failed or violated
// append-only) is anchored right after it is published, with the receipt
// stored in the version directory, as 'lakeproof anchor' does.
type Anchor struct {
	Channel      string `yaml:"channel"`
	Gateway      string `yaml:"gateway"`
	Key          string `yaml:"key"`
	TrustGateway string `yaml:"trust_gateway"`
}

// AnchorOf returns the effective anchor settings of d (its block over the
// defaults', the key path made absolute against the job file's directory),
// or nil when d is not anchored (no channel).
func (j *Job) AnchorOf(d *Dataset) *Anchor {
	var a Anchor
	for _, b := range []*Anchor{j.Defaults.Anchor, d.Anchor} {
		if b == nil {
			continue
		}
		if b.Channel != "" {
			a.Channel = b.Channel
		}
		if b.Gateway != "" {
			a.Gateway = b.Gateway
		}
		if b.Key != "" {
			a.Key = b.Key
		}
		if b.TrustGateway != "" {
			a.TrustGateway = b.TrustGateway
		}
	}
	if a.Channel == "" {
		return nil
	}
	if a.Key != "" && !filepath.IsAbs(a.Key) && j.File != "" {
		a.Key = filepath.Join(filepath.Dir(j.File), a.Key)
	}
	return &a
}

// AnchorReport is the anchor of a published version.
type AnchorReport struct {
	Channel string `json:"channel"`
	Entry   int64  `json:"entry"`
	Receipt string `json:"receipt"` // path of the receipt file in the version
}

// AnchorFunc anchors the complete local index directory dir with the
// settings a and returns the entry written and the path of the receipt it
// stored in dir. The CLI implements it with package anchor.
type AnchorFunc func(ctx context.Context, dir, dataset string, a *Anchor) (AnchorReport, error)

// anchor validates a dataset's anchor block together with the defaults'.
func (v *validator) anchor(yp, fp string, a, def *Anchor) {
	if a != nil {
		v.anchorFields(yp+".anchor", fp+".anchor", a)
	}
	channel, key := "", ""
	for _, b := range []*Anchor{def, a} {
		if b != nil && b.Channel != "" {
			channel = b.Channel
		}
		if b != nil && b.Key != "" {
			key = b.Key
		}
	}
	switch {
	case a != nil && channel == "":
		v.fail(yp+".anchor", fp+".anchor.channel", "required: the channel address to anchor to (lakeproof channel create)")
	case channel != "" && key == "":
		v.fail(yp+".anchor", fp+".anchor.key", "required to anchor: the writer's key file (lakeproof identity new), here or in defaults.anchor")
	}
}

func (v *validator) anchorFields(yp, fp string, a *Anchor) {
	if a.Channel != "" && !trail.ValidAddress(a.Channel) {
		v.fail(yp+".channel", fp+".channel", "%q is not a channel address (80 hex digits, ':', 24 hex digits)", a.Channel)
	}
	if a.Gateway != "" {
		if u, err := url.Parse(a.Gateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail(yp+".gateway", fp+".gateway", "%q: want the gateway's http:// or https:// URL", a.Gateway)
		}
	}
	if a.TrustGateway != "" {
		if _, err := note.NewVerifier(a.TrustGateway); err != nil {
			v.fail(yp+".trust_gateway", fp+".trust_gateway", "%q is not a note verifier key (lakeproof serve --print-verifier): %v", a.TrustGateway, err)
		}
	}
}

// anchorVersion anchors the version just published at dir (a local
// directory) when the dataset has a channel; a failure is the dataset's
// error, the version staying published.
func anchorVersion(ctx context.Context, j *Job, d *Dataset, o RunOptions, dir string, dr *DatasetReport) bool {
	a := j.AnchorOf(d)
	if a == nil {
		return true
	}
	if o.Anchor == nil {
		dr.err = fmt.Errorf("anchor %s: this program cannot anchor (no anchor function)", dir)
		return false
	}
	r, err := o.Anchor(ctx, dir, d.Name, a)
	if err != nil {
		dr.err = fmt.Errorf("%w: the index %s is published but not anchored: %w (anchor it with: lakeproof anchor --index %s --channel %s --key %s)",
			ErrAnchor, dir, err, dir, a.Channel, a.Key)
		return false
	}
	dr.Anchor = &r
	return true
}

// ErrAnchor means a published version could not be anchored.
var ErrAnchor = errors.New("anchoring failed")
