package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/spf13/cobra"
)

type identityNewOpts struct {
	out, gateway, name, apiKey, claimType string
	json                                  bool
}

type identityShowOpts struct {
	key, gateway, apiKey string
	json                 bool
}

func init() {
	register(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "identity",
			Short: "Create and show did:key identities for the audit-trail gateway",
		}
		no := identityNewOpts{}
		newCmd := &cobra.Command{
			Use:   "new --out FILE [--gateway URL --name NAME]",
			Short: "Create a key file (mode 0600) and optionally register its public key at a gateway",
			Long: `Create a non-custodial identity: an Ed25519 key pair whose did:key is its identifier.
The secret key stays in --out (mode 0600); only the DID (which carries the public key)
is sent to the gateway when --gateway is given.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				no.apiKey = trailFirstSet(no.apiKey, os.Getenv("LAKEPROOF_API_KEY"))
				if no.gateway == "" {
					no.gateway = os.Getenv("LAKEPROOF_GATEWAY")
				}
				return runIdentityNew(cmd.Context(), cmd.OutOrStdout(), no)
			},
		}
		f := newCmd.Flags()
		f.StringVar(&no.out, "out", "", "key file to create (must not exist)")
		f.StringVar(&no.gateway, "gateway", "", "gateway URL to register at (default $LAKEPROOF_GATEWAY; none: do not register)")
		f.StringVar(&no.name, "name", "", "username to register (default: derived from the DID)")
		f.StringVar(&no.claimType, "type", "Person", "claim type: Person, Organization, Device, Service, Product")
		f.StringVar(&no.apiKey, "api-key", "", "gateway api key (default $LAKEPROOF_API_KEY)")
		f.BoolVar(&no.json, "json", false, "print JSON")
		_ = newCmd.MarkFlagRequired("out")

		so := identityShowOpts{}
		showCmd := &cobra.Command{
			Use:   "show --key FILE [--gateway URL]",
			Short: "Show the identity of a key file (and its registration at a gateway)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				so.apiKey = trailFirstSet(so.apiKey, os.Getenv("LAKEPROOF_API_KEY"))
				return runIdentityShow(cmd.Context(), cmd.OutOrStdout(), so)
			},
		}
		f = showCmd.Flags()
		f.StringVar(&so.key, "key", "", "key file")
		f.StringVar(&so.gateway, "gateway", "", "gateway URL to look the identity up at (default: the key file's, or $LAKEPROOF_GATEWAY)")
		f.StringVar(&so.apiKey, "api-key", "", "gateway api key (default $LAKEPROOF_API_KEY)")
		f.BoolVar(&so.json, "json", false, "print JSON")
		_ = showCmd.MarkFlagRequired("key")
		cmd.AddCommand(newCmd, showCmd)
		return cmd
	})
}

func trailFirstSet(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func runIdentityNew(ctx context.Context, w io.Writer, o identityNewOpts) error {
	k, err := trail.NewKeyFile()
	if err != nil {
		return err
	}
	if o.gateway != "" {
		k.Gateway = o.gateway
		k.Username = trailFirstSet(o.name, "id-"+k.ID[len(k.ID)-10:])
	}
	if err := trail.SaveKeyFile(o.out, k); err != nil {
		return usageError{err}
	}
	if o.gateway != "" {
		priv, _ := k.PrivateKey()
		c := trail.NewClient(o.gateway)
		c.ID, c.Key, c.APIKey = k.ID, priv, o.apiKey
		if err := c.Register(ctx, k.Username, map[string]string{"type": o.claimType}); err != nil {
			return fmt.Errorf("key saved in %s, but registration at %s failed: %w", o.out, o.gateway, err)
		}
	}
	if o.json {
		return json.NewEncoder(w).Encode(map[string]string{"id": k.ID, "keyFile": o.out, "publicKey": k.Public, "gateway": k.Gateway, "username": k.Username})
	}
	fmt.Fprintf(w, "identity %s\nkey file %s (mode 0600; keep it secret)\n", k.ID, o.out)
	if o.gateway != "" {
		fmt.Fprintf(w, "registered at %s as %s\n", o.gateway, k.Username)
	}
	return nil
}

func runIdentityShow(ctx context.Context, w io.Writer, o identityShowOpts) error {
	k, priv, err := trail.LoadKeyFile(o.key)
	if err != nil {
		return usageError{err}
	}
	out := map[string]any{"id": k.ID, "publicKey": k.Public, "keyFile": o.key}
	gw := trailFirstSet(o.gateway, k.Gateway, os.Getenv("LAKEPROOF_GATEWAY"))
	if gw != "" {
		c := trail.NewClient(gw)
		c.ID, c.Key, c.APIKey = k.ID, priv, o.apiKey
		var info map[string]any
		err := c.Authenticate(ctx)
		if err == nil {
			info, err = trailGetIdentity(ctx, c)
		}
		switch {
		case trail.StatusOf(err) == 404:
			out["registered"] = false
		case err != nil:
			return err
		default:
			out["registered"], out["gateway"] = true, gw
			for _, f := range []string{"username", "role", "isVerified", "registrationDate"} {
				out[f] = info[f]
			}
		}
	}
	if o.json {
		return json.NewEncoder(w).Encode(out)
	}
	fmt.Fprintf(w, "identity   %s\npublic key %s (base58 Ed25519)\n", k.ID, k.Public)
	if reg, ok := out["registered"].(bool); ok {
		if !reg {
			fmt.Fprintf(w, "not registered at %s\n", gw)
		} else {
			fmt.Fprintf(w, "registered at %s as %v (role %v, verified %v, since %v)\n", gw, out["username"], out["role"], out["isVerified"], out["registrationDate"])
		}
	}
	return nil
}

// trailGetIdentity fetches the client's own identity record.
func trailGetIdentity(ctx context.Context, c *trail.Client) (map[string]any, error) {
	var out map[string]any
	err := c.Get(ctx, "/identities/identity/"+c.ID, nil, &out)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errors.New("empty identity record")
	}
	return out, nil
}
