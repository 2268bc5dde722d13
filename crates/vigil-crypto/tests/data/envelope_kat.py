#!/usr/bin/env python3
"""Writes envelope_kat.txt (docs/spec.md sections 2 and 3) independently of the crate, with
Python's `cryptography` ChaCha20-Poly1305 and HChaCha20 written out below (XChaCha20-Poly1305 as
in draft-irtf-cfrg-xchacha): python3 envelope_kat.py > envelope_kat.txt

Version 1 blobs are padded to powers of two up to 4 KiB; version 2 blobs to quarter octaves
between 1 KiB and 16 KiB. Each vector says whether the crate must open it: a blob whose padded
size is not its version's bucket for its length is refused even though its tag verifies."""
import struct

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

MASK = 0xFFFFFFFF


def rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & MASK


def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & MASK
    s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK
    s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    s = list(struct.unpack("<4I", b"expand 32-byte k"))
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        quarter(s, 0, 4, 8, 12)
        quarter(s, 1, 5, 9, 13)
        quarter(s, 2, 6, 10, 14)
        quarter(s, 3, 7, 11, 15)
        quarter(s, 0, 5, 10, 15)
        quarter(s, 1, 6, 11, 12)
        quarter(s, 2, 7, 8, 13)
        quarter(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_seal(key, nonce24, plain, aad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0" * 4 + nonce24[16:], plain, aad)


def bucket_v1(length):
    n = length + 4
    if n <= 256:
        return 256
    if n <= 4096:
        return 1 << (n - 1).bit_length()
    return -(-n // 4096) * 4096


def bucket_v2(length):
    n = length + 4
    if n <= 1024:
        return bucket_v1(length)
    if n <= 16384:
        step = (1 << ((n - 1).bit_length() - 1)) // 4
        return -(-n // step) * step
    return -(-n // 4096) * 4096


def field(b):
    return struct.pack("<I", len(b)) + b


# The log key of the key schedule's first root (key_schedule_kat.txt), and the
# context the envelope tests use.
LOG_KEY = bytes.fromhex("830431d806bb36f1ddcfc83df5891a4d7576d8363e126900db5c0290d0208a34")
KIND_LOG_BUNDLE = 1
CONTEXT = field(b"test-bundle") + field(b"vault-a") + field(b"device-1") + struct.pack("<Q", 7)


def blob(version, length, padded, nonce):
    plain = bytes((i * 7 + 3) & 0xFF for i in range(length))
    body = struct.pack("<I", length) + plain + b"\0" * (padded - 4 - length)
    header = b"VGIL" + bytes([version, KIND_LOG_BUNDLE])
    return header + nonce + xchacha_seal(LOG_KEY, nonce, body, header + CONTEXT)


print("# Known-answer sealed envelopes (docs/spec.md sections 2, 3), log key of the first root of")
print("# key_schedule_kat.txt, kind LogBundle, context test-bundle/vault-a/device-1/7, plaintext")
print("# byte i = (7 i + 3) mod 256. Computed independently (envelope_kat.py), not with this crate.")
print("# Format: opens|refused version length padded blob-hex")
n = 0
for version, bucket in ((1, bucket_v1), (2, bucket_v2)):
    for length in (0, 1100, 3000):
        n += 1
        nonce = bytes([n] * 24)
        print("opens", version, length, bucket(length), blob(version, length, bucket(length), nonce).hex())
# Each version's blob padded to the other's bucket: authentic, but not canonical.
for version, other in ((1, bucket_v2), (2, bucket_v1)):
    for length in (1100,):
        n += 1
        nonce = bytes([n] * 24)
        print("refused", version, length, other(length), blob(version, length, other(length), nonce).hex())
