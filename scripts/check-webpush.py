#!/usr/bin/env python3
"""Decrypts a push the host sent, and verifies its VAPID token, with other implementations:
PyPI's http_ece (RFC 8188/8291) and py_vapid (RFC 8292), on the `cryptography` package.

    python3 -m venv /tmp/wp && /tmp/wp/bin/pip install http_ece py_vapid cryptography
    PEER_PUSH_CAPTURE=/tmp/push.json cargo test -p peer --test it -- push::approval_needed
    /tmp/wp/bin/python scripts/check-webpush.py /tmp/push.json

It also re-encrypts RFC 8291 section 5's example with http_ece and compares it byte for byte
with the RFC (the Rust unit test `rfc_8291_example_is_reproduced_byte_for_byte` does the same
with the host's code).
"""
import base64
import json
import sys

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid.jwt import decode as vapid_decode


def b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def private_key(raw: bytes):
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def rfc_8291_example() -> None:
    body = b64d("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
    sender = private_key(b64d("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
    ua_pub = b64d("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
    again = http_ece.encrypt(
        b"When I grow up, I want to be a watermelon",
        salt=b64d("DGv6ra1nlYgDCS1FRnbzlw"),
        private_key=sender,
        dh=ua_pub,
        auth_secret=b64d("BTBZMqHH6r4Tts7J_aSIgg"),
        version="aes128gcm",
        rs=4096,
    )
    assert again == body, "http_ece does not reproduce RFC 8291 section 5"
    print("RFC 8291 section 5: http_ece reproduces the example byte for byte")


def main(path: str) -> None:
    rfc_8291_example()
    cap = json.load(open(path))
    body = b64d(cap["body"])
    plain = http_ece.decrypt(
        body,
        private_key=private_key(b64d(cap["ua_private"])),
        auth_secret=b64d(cap["auth"]),
        version="aes128gcm",
    )
    notice = json.loads(plain)
    print(f"{len(body)}-byte body decrypts to {plain.decode()}")
    auth = cap["authorization"]
    token = auth.split("t=")[1].split(",")[0].strip()
    key = auth.split("k=")[1].strip()
    assert b64d(key) == b64d(cap["applicationServerKey"]), "k is not the applicationServerKey"
    claims = vapid_decode(token, key)
    assert claims["aud"] == cap["aud"], claims
    print(f"VAPID token verified by py_vapid: {claims}")
    assert notice["kind"] == "approval"


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "push.json")
