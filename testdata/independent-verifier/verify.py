#!/usr/bin/env python3
"""An independent verifier of lakeproof proof bundles, written from
docs/FORMAT.md alone (sections 1, 3, 4, 6, 7 and 12). It shares no code with
lakeproof: BLAKE3 comes from the b3sum binary, SHA-256, base64 and JSON from
the standard library, Ed25519 from the `cryptography` package or, failing
that, the openssl binary.

usage: verify.py BUNDLE FILE [TRUST]
With TRUST (a trust file, section 12.5) a lakeproof/proof/v2 bundle is checked
to the channel checkpoint (section 12.6, steps 4-10).
exit 0 valid; 1 invalid (prints which check failed); 2 malformed bundle;
3 no Ed25519 implementation available.

Limitation: canonical JSON (RFC 8785) is approximated with json.dumps
(sorted keys, no spaces, UTF-8): exact for the ASCII member names and
integer values of lakeproof entries.
"""
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile


def blake3(data: bytes) -> bytes:
    out = subprocess.run(["b3sum", "--no-names", "-"], input=data, capture_output=True, check=True).stdout
    return bytes.fromhex(out.decode().split()[0])


def blake3_file(path: str) -> bytes:
    out = subprocess.run(["b3sum", "--no-names", "--no-mmap", "--", path], capture_output=True, check=True).stdout
    return bytes.fromhex(out.decode().split()[0])


def valid_key(key: str) -> bool:
    raw = key.encode("utf-8")
    if not 1 <= len(raw) <= 1024:
        return False
    if any(c < 0x20 or c == 0x7F for c in raw):
        return False
    return all(seg not in ("", ".", "..") for seg in key.split("/"))


def leaf_hash(key: str, size: int, digest: bytes) -> bytes:
    k = key.encode("utf-8")
    data = b"\x01" + len(k).to_bytes(2, "big") + k + size.to_bytes(8, "big") + digest
    return blake3(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return blake3(b"\x01" + left + right)


def proof_len(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + bin(index >> inner).count("1")


def root_from_path(index: int, size: int, leaf: bytes, path: list) -> bytes:
    # RFC 9162 section 2.1.3.2, as in docs/FORMAT.md section 6.
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def unhex(s) -> bytes:
    if not isinstance(s, str) or len(s) != 64:
        raise ValueError("hash must be 64 hex digits")
    return bytes.fromhex(s)


class Invalid(Exception):
    """A failed check of section 12.6; its message names the check."""


def b64(s: str) -> bytes:
    if not isinstance(s, str):
        raise ValueError("base64 value is not a string")
    raw = base64.b64decode(s, validate=True)
    if base64.b64encode(raw).decode() != s:
        raise ValueError("non-canonical base64")
    return raw


def decimal(s: str) -> int:
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", s):
        raise ValueError(f"{s!r} is not a decimal without leading zeros")
    return int(s)


def parse_checkpoint(note: str):
    """Section 12.2: returns (body bytes, origin, size, root, [(name, sig bytes)])."""
    i = note.rfind("\n\n")
    if i < 0:
        raise ValueError("checkpoint: no empty line")
    body, sigs = note[: i + 1], note[i + 2 :]
    if not sigs.endswith("\n"):
        raise ValueError("checkpoint: no signature lines")
    lines = body[:-1].split("\n")
    if len(lines) < 3 or any(l == "" for l in lines):
        raise ValueError("checkpoint: bad body")
    origin, size, root = lines[0], decimal(lines[1]), b64(lines[2])
    if len(root) != 32:
        raise ValueError("checkpoint: root is not 32 bytes")
    out = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise ValueError("checkpoint: bad signature line")
        name, _, sig = line[2:].rpartition(" ")
        out.append((name, b64(sig)))
    return body.encode("utf-8"), origin, size, root, out


def parse_tlog_proof(text: str):
    """Section 12.3: returns (index, [hashes], checkpoint text, (body, origin, size, root, sigs))."""
    lines = text.split("\n")
    if lines[0] != "c2sp.org/tlog-proof@v1":
        raise ValueError("tlog-proof: bad header")
    n = 1
    if lines[n].startswith("extra "):
        if not b64(lines[n][6:]):
            raise ValueError("tlog-proof: empty extra")
        n += 1
    if not lines[n].startswith("index "):
        raise ValueError("tlog-proof: no index line")
    index = decimal(lines[n][6:])
    n += 1
    path = []
    while n < len(lines) and lines[n] != "":
        h = b64(lines[n])
        if len(h) != 32:
            raise ValueError("tlog-proof: hash is not 32 bytes")
        path.append(h)
        n += 1
    if n >= len(lines):
        raise ValueError("tlog-proof: no checkpoint")
    cp = "\n".join(lines[n + 1 :])
    parsed = parse_checkpoint(cp)
    size = parsed[2]
    if not index < size or len(path) != proof_len(index, size):
        raise ValueError("tlog-proof: index or path length wrong")
    return index, path, cp, parsed


def ed25519_verify(pub: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.exceptions import InvalidSignature
    except ImportError:
        return ed25519_verify_openssl(pub, msg, sig)
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except InvalidSignature:
        return False


def ed25519_verify_openssl(pub: bytes, msg: bytes, sig: bytes) -> bool:
    der = bytes.fromhex("302a300506032b6570032100") + pub
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PUBLIC KEY-----\n"
    with tempfile.TemporaryDirectory() as d:
        paths = {n: os.path.join(d, n) for n in ("k", "m", "s")}
        for n, data in (("k", pem.encode()), ("m", msg), ("s", sig)):
            with open(paths[n], "wb") as f:
                f.write(data)
        try:
            r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths["k"], "-rawin",
                                "-in", paths["m"], "-sigfile", paths["s"]], capture_output=True)
        except FileNotFoundError:
            print("no Ed25519 implementation: install python3-cryptography or openssl")
            sys.exit(3)
        if r.returncode != 0 and b"Signature Verification Failure" not in r.stdout + r.stderr:
            print("no usable Ed25519 implementation in openssl")
            sys.exit(3)
        return r.returncode == 0


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def did_key(did: str) -> bytes:
    if not isinstance(did, str) or not did.startswith("did:key:z"):
        raise ValueError("not a did:key")
    n = 0
    for c in did[9:]:
        n = n * 58 + B58.index(c)
    raw = n.to_bytes(34, "big")
    if raw[:2] != b"\xed\x01" or did != "did:key:z" + b58encode(raw):
        raise ValueError("not a canonical Ed25519 did:key")
    return raw[2:]


def b58encode(b: bytes) -> str:
    n, out = int.from_bytes(b, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + out


def verifier_key(vkey: str):
    """golang.org/x/mod/sumdb/note verifier key: (name, key hash, public key)."""
    name, h, k = vkey.split("+", 2)  # the base64 key may itself contain "+"
    raw = b64(k)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError("not an Ed25519 verifier key")
    want = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if bytes.fromhex(h) != want:
        raise ValueError("verifier key hash mismatch")
    return name, want, raw[1:]


def sha_leaf(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def sha_root_from_path(index: int, size: int, leaf: bytes, path: list) -> bytes:
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


PAYLOAD = {"dataset", "source", "root", "treeSize", "files", "bytes", "indexDigest", "tool"}


def check_anchor(b: dict, anchor: dict, proof, trust: dict) -> None:
    """Section 12.6, steps 4 to 10; raises Invalid naming the failed check."""
    leaf_text = anchor["entry"]
    leaf = leaf_text.encode("utf-8")
    index, path, cp, (body, origin, size, cp_root, sigs) = proof
    # 4. entry: canonical anchor entry.
    try:
        e = json.loads(leaf_text)
        canon = json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if canon != leaf or set(e) != {"signature", "signer", "statement"}:
            raise ValueError("not canonical")
        st = e["statement"]
        if set(st) - {"v", "channelAddress", "writer", "nonce", "log"} or st["v"] != "lakeproof.trail.entry/v1":
            raise ValueError("bad statement")
        log = st["log"]
        if set(log) != {"type", "created", "publicPayload"} or log["type"] != "lakeproof.anchor/v1":
            raise ValueError("not an anchor")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", log["created"]):
            raise ValueError("created is not RFC 3339")
        p = log["publicPayload"]
        if set(p) != PAYLOAD or not p["dataset"]:
            raise ValueError("payload members")
    except (ValueError, KeyError, TypeError, AttributeError) as x:
        raise Invalid(f"entry: {x}")
    # 5. entry signature: by the writer; the signed bytes are the statement's bytes in the leaf.
    try:
        if e["signer"] != st["writer"]:
            raise ValueError("signer is not the writer")
        pub = did_key(e["signer"])
        sig = e["signature"]
        if not re.fullmatch(r"[0-9a-f]{128}", sig):
            raise ValueError("signature is not 128 hex digits")
        prefix = ('{"signature":"%s","signer":"%s","statement":' % (sig, e["signer"])).encode()
        if not (leaf.startswith(prefix) and leaf.endswith(b"}")):
            raise ValueError("leaf layout")
        if not ed25519_verify(pub, leaf[len(prefix):-1], bytes.fromhex(sig)):
            raise ValueError("Ed25519 signature does not verify")
    except ValueError as x:
        raise Invalid(f"entry signature: {x}")
    # 6. writer trusted.
    if st["writer"] not in trust["writers"]:
        raise Invalid("writer not trusted")
    # 7. payload = dataset.
    if p["root"] != b["root"] or p["treeSize"] != b["tree_size"]:
        raise Invalid("payload does not match the dataset")
    # 8. checkpoint signature by a trusted key.
    signer = None
    for vkey in trust["gateways"]:
        name, khash, kpub = verifier_key(vkey)
        for sname, s in sigs:
            if sname == name and len(s) == 68 and s[:4] == khash and ed25519_verify(kpub, body, s[4:]):
                signer = name
    if signer is None:
        raise Invalid("checkpoint signature")
    # 9. channel.
    if origin != signer + "/channel/" + anchor["channel"] or st["channelAddress"] != anchor["channel"]:
        raise Invalid("channel mismatch")
    # 10. entry inclusion.
    if sha_root_from_path(index, size, sha_leaf(leaf), path) != cp_root:
        raise Invalid("entry inclusion")


def main() -> int:
    bundle_path, file_path = sys.argv[1], sys.argv[2]
    trust = None
    if len(sys.argv) > 3:
        try:
            with open(sys.argv[3], "rb") as f:
                trust = json.loads(f.read().decode("utf-8"))
            if set(trust) != {"gateways", "writers"}:
                raise ValueError("trust file members")
            for k in trust["gateways"]:
                verifier_key(k)
            for w in trust["writers"]:
                did_key(w)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            print(f"malformed trust file: {e}")
            return 2
    fields = {"format", "key", "size", "digest", "leaf_index", "tree_size", "inclusion", "root", "dataset"}
    try:
        with open(bundle_path, "rb") as f:
            raw = f.read(1 << 20 + 1)
        if len(raw) > 1 << 20:
            raise ValueError("bundle larger than 1 MiB")
        b = json.loads(raw.decode("utf-8"))
        if not isinstance(b, dict):
            raise ValueError("not an object")
        anchor, proof = None, None
        if b.get("format") == "lakeproof/proof/v2":
            anchor = b.get("anchor")
            if not isinstance(anchor, dict) or set(anchor) != {"channel", "entry", "proof"}:
                raise ValueError("anchor must have exactly channel, entry, proof")
            if not re.fullmatch(r"[!-~]{1,256}", anchor["channel"]) or not 1 <= len(anchor["entry"].encode()) <= 65535:
                raise ValueError("bad anchor channel or entry")
            proof = parse_tlog_proof(anchor["proof"])
            b = {k: v for k, v in b.items() if k != "anchor"}
        elif b.get("format") != "lakeproof/proof/v1":
            raise ValueError("unknown format")
        if set(b) - fields or not fields - {"dataset"} <= set(b):
            raise ValueError("wrong set of fields")
        key, size, index, tsize = b["key"], b["size"], b["leaf_index"], b["tree_size"]
        if not isinstance(key, str) or not valid_key(key):
            raise ValueError("invalid key")
        for v in (size, index, tsize):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v >= 1 << 64:
                raise ValueError("bad integer")
        if not index < tsize:
            raise ValueError("leaf_index out of range")
        digest, root = unhex(b["digest"]), unhex(b["root"])
        path = [unhex(h) for h in b["inclusion"]]
        if len(path) != proof_len(index, tsize):
            raise ValueError("inclusion path has the wrong length")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError) as e:
        print(f"malformed bundle: {e}")
        return 2
    with open(file_path, "rb") as f:
        content_size = len(f.read())
    if content_size != size or blake3_file(file_path) != digest:
        print("content changed")
        return 1
    if root_from_path(index, tsize, leaf_hash(key, size, digest), path) != root:
        print("proof does not lead to root")
        return 1
    if trust is not None:
        if anchor is None:
            print("bundle has no anchor level")
            return 1
        try:
            check_anchor(b, anchor, proof, trust)
        except Invalid as x:
            print(x)
            return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
