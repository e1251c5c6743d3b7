#!/usr/bin/env python3
"""An independent verifier of lakeproof proof bundles, written from
docs/FORMAT.md alone (sections 1, 3, 4, 6 and 7). It shares no code with
lakeproof: BLAKE3 comes from the b3sum binary, JSON from the standard library.

usage: verify.py BUNDLE FILE
exit 0 valid; 1 invalid (prints which check failed); 2 malformed bundle.
"""
import json
import subprocess
import sys


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


def main() -> int:
    bundle_path, file_path = sys.argv[1], sys.argv[2]
    fields = {"format", "key", "size", "digest", "leaf_index", "tree_size", "inclusion", "root", "dataset"}
    try:
        with open(bundle_path, "rb") as f:
            raw = f.read(1 << 20 + 1)
        if len(raw) > 1 << 20:
            raise ValueError("bundle larger than 1 MiB")
        b = json.loads(raw.decode("utf-8"))
        if not isinstance(b, dict) or set(b) - fields or not fields - {"dataset"} <= set(b):
            raise ValueError("wrong set of fields")
        if b["format"] != "lakeproof/proof/v1":
            raise ValueError("unknown format")
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
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
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
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
