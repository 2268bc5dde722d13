#!/usr/bin/env python3
"""Writes key_schedule_kat.txt (docs/spec.md sections 1, 12 and 13) from Python's own
hmac/hashlib, independently of the crate: python3 key_schedule_kat.py > key_schedule_kat.txt"""
import hashlib
import hmac


def hkdf_expand(prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:length]


def hkdf(ikm, salt, info, length):
    prk = hmac.new(salt if salt is not None else b"\0" * 32, ikm, hashlib.sha256).digest()
    return hkdf_expand(prk, info, length)


NODE_PUBLIC = bytes([0x42] * 32)
NODE_CERT = bytes(range(0xA0, 0xC0))
JOINER_PUBLIC = bytes(range(0x80, 0xA0))

print("# Known-answer vectors for the key schedule (docs/spec.md section 1) and the grant's id and deletion proof (sections 12, 13).")
print("# Computed independently with Python's hmac/hashlib HKDF (key_schedule_kat.py), not with this crate.")
print("# Format: name = hex. A change to any label or derivation breaks these on purpose.")
for root in (bytes(range(32)), bytes([0xFF] * 32)):
    vault_id = hkdf(root, None, b"vigil/v1/vault-id", 16)
    mailbox = hkdf(root, vault_id, b"vigil/v1/mailbox/" + NODE_PUBLIC + NODE_CERT, 32)
    alert = hkdf(root, vault_id, b"vigil/v1/alert/" + NODE_PUBLIC, 32)
    sas = hkdf(root, vault_id, b"vigil/v1/sas/" + JOINER_PUBLIC, 8)
    # Section 12 and 13: the grant id, and the proof that deletes the grant.
    grant_id = hashlib.sha256(b"vigil/v1/grant-id" + alert).digest()[:16]
    shred_key = hkdf(alert, None, b"vigil/v1/grant-shred", 32)
    shred_proof = hkdf_expand(shred_key, vault_id + grant_id, 32)
    rows = [
        ("root", root.hex()),
        ("node_public", NODE_PUBLIC.hex()),
        ("node_cert_sha256", NODE_CERT.hex()),
        ("joiner_public", JOINER_PUBLIC.hex()),
        ("vault_id", vault_id.hex()),
        ("log_key", hkdf(root, vault_id, b"vigil/v1/log", 32).hex()),
        ("store_key", hkdf(root, vault_id, b"vigil/v1/store", 32).hex()),
        ("mailbox_key", mailbox.hex()),
        ("mailbox_verifier", hashlib.sha256(b"vigil/v1/mailbox-verifier" + mailbox).hexdigest()),
        ("alert_key", alert.hex()),
        ("grant_id", grant_id.hex()),
        ("grant_shred_proof", shred_proof.hex()),
        ("pairing_code", "%06d" % (int.from_bytes(sas, "big") % 1_000_000)),
    ]
    for name, value in rows:
        print(f"{name} = {value}")
    print()
