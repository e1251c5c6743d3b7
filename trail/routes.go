package trail

// apiRoutes is the API surface: every route is served under each prefix
// in APIVersions. openapi.json must list exactly these (TestOpenAPIMatchesRoutes).
func (s *Server) apiRoutes() []Route {
	return []Route{
		{"GET", "/authentication/prove-ownership/{id}", "Get a login nonce for an identity", "none", s.getNonce},
		{"POST", "/authentication/prove-ownership/{id}", "Exchange a signed nonce for a JWT", "none", s.proveOwnership},
		{"POST", "/authentication/verify-jwt", "Check a JWT", "none", s.verifyJWT},

		{"POST", "/identities/create", "Generate and register an identity (key pair returned once)", "optional", s.createIdentity},
		{"GET", "/identities/key-pair", "Generate a key pair", "none", s.keyPair},
		{"GET", "/identities/search", "Search identities", "jwt", s.searchIdentities},
		{"GET", "/identities/identity/{id}", "Get an identity", "jwt", s.getIdentity},
		{"POST", "/identities/identity", "Register an existing did:key identity", "optional", s.registerIdentity},
		{"PUT", "/identities/identity", "Update an identity", "jwt", s.updateIdentity},
		{"DELETE", "/identities/identity/{id}", "Delete an identity", "jwt", s.deleteIdentity},

		{"GET", "/verification/latest-document/{id}", "DID document of a did:key", "none", s.latestDocument},
		{"POST", "/verification/trusted-roots", "Add a trusted root (Admin)", "jwt", s.addTrustedRoot},
		{"GET", "/verification/trusted-roots", "List trusted roots", "none", s.trustedRoots},
		{"DELETE", "/verification/trusted-roots/{trustedRootId}", "Remove a trusted root (Admin)", "jwt", s.removeTrustedRoot},
		{"POST", "/verification/create-credential", "Issue a verifiable credential", "jwt", s.createCredential},
		{"POST", "/verification/check-credential", "Check a verifiable credential", "none", s.checkCredential},
		{"POST", "/verification/revoke-credential", "Revoke a verifiable credential", "jwt", s.revokeCredential},

		{"POST", "/channels/create", "Create a channel", "jwt", s.createChannel},
		{"POST", "/channels/logs/{addr}", "Append an entry", "jwt", s.writeLog},
		{"GET", "/channels/logs/{addr}", "Read entries (paging, dates, since/wait long poll)", "jwt", s.readLog},
		{"GET", "/channels/history/{addr}", "Read a public channel, or a private one with its preshared key", "optional", s.history},
		{"POST", "/channels/validate/{addr}", "Validate entries against the log and their signatures", "jwt", s.validate},
		{"GET", "/channels/events/{addr}", "Server-sent events of new entries", "jwt", s.events},

		{"GET", "/channels/log/{addr}/checkpoint", "Latest signed checkpoint of the channel's transparency log (C2SP tlog-checkpoint)", "none", s.getCheckpoint},
		{"GET", "/channels/log/{addr}/tile/{L}/{N...}", "Hash tile of the channel log (C2SP tlog-tiles)", "none", s.getTile},
		{"GET", "/channels/log/{addr}/tile/entries/{N...}", "Entry bundle of the channel log (C2SP tlog-tiles; read rights)", "optional", s.getEntryBundle},
		{"GET", "/channels/log/{addr}/proof/inclusion", "Inclusion proof of an entry index in a tree size", "none", s.getInclusionProof},
		{"GET", "/channels/log/{addr}/proof/consistency", "Consistency proof between two tree sizes", "none", s.getConsistencyProof},
		{"GET", "/channels/log/{addr}/entry/{index}", "One entry's verbatim bytes (read rights)", "optional", s.getEntry},
		{"GET", "/channels/log/{addr}/verify", "Full integrity check of the channel log (author or Admin)", "jwt", s.verifyLog},

		{"GET", "/channel-info/search", "Search channels (plain matching)", "jwt", s.searchChannels},
		{"GET", "/channel-info/channel/{addr}", "Get channel info", "jwt", s.getChannelInfo},
		{"POST", "/channel-info/channel", "Add channel info", "jwt", s.addChannelInfo},
		{"PUT", "/channel-info/channel", "Update topics, hidden, visibility list", "jwt", s.updateChannelInfo},
		{"DELETE", "/channel-info/channel/{addr}", "Delete channel info and subscriptions", "jwt", s.deleteChannelInfo},

		{"POST", "/subscriptions/request/{addr}", "Request a subscription", "jwt", s.requestSubscription},
		{"POST", "/subscriptions/authorize/{addr}", "Authorize a subscription (author)", "jwt", s.authorizeSubscription},
		{"POST", "/subscriptions/revoke/{addr}", "Revoke a subscription (author)", "jwt", s.revokeSubscription},
		{"GET", "/subscriptions/{addr}", "List subscriptions (author or Admin)", "jwt", s.listSubscriptions},
		{"GET", "/subscriptions/{addr}/{id}", "Get a subscription", "jwt", s.getSubscription},
		{"POST", "/subscriptions/{addr}/{id}", "Add a subscription (author or Admin)", "jwt", s.addSubscription},
		{"PUT", "/subscriptions/{addr}/{id}", "Update a subscription", "jwt", s.updateSubscription},
		{"DELETE", "/subscriptions/{addr}/{id}", "Delete a subscription", "jwt", s.deleteSubscription},
	}
}
