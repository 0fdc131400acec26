"""Writes the app icons (public/icon-192.png, icon-512.png): a dark square with a prompt mark.

Plain Python (zlib + struct), so no image tool is needed: python3 scripts/icons.py
"""
import struct
import zlib
from pathlib import Path

BG = (11, 14, 20)
FG = (95, 179, 255)


def pixel(x, y, n):
    u, v = x / n, y / n
    # ">" chevron
    if 0.22 < u < 0.52:
        t = (u - 0.22) / 0.30
        if abs(v - (0.30 + 0.20 * t)) < 0.06 or abs(v - (0.70 - 0.20 * t)) < 0.06:
            if v < 0.5 + 0.0001 or v >= 0.5:
                return FG
    # "_" cursor
    if 0.56 < u < 0.80 and 0.64 < v < 0.72:
        return FG
    return BG


def png(n):
    rows = b"".join(b"\x00" + bytes(c for x in range(n) for c in pixel(x, y, n)) for y in range(n))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", n, n, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


out = Path(__file__).resolve().parent.parent / "public"
for n in (192, 512):
    (out / f"icon-{n}.png").write_bytes(png(n))
