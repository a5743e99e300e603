#!/usr/bin/env python3
"""Writes the tiny hand-made romfs images the romfs tests read: one good
image laid out by hand, and copies of it each broken in one way (with every
other checksum still right, so the break is what the parser meets).

Run from this directory: python3 make.py
"""
import struct

def put(img, at, value):
    img[at:at + 4] = struct.pack('>I', value)

def total(data):
    return sum(struct.unpack('>%dI' % (len(data) // 4), bytes(data[:len(data) // 4 * 4]))) & 0xffffffff

def pad16(n):
    return (n + 15) & ~15

def header(img, at, next_, kind, exec_, spec, size, name, data=b''):
    """Write a file header (checksum fixed) and its data."""
    put(img, at, next_ | (8 if exec_ else 0) | kind)
    put(img, at + 4, spec)
    put(img, at + 8, size)
    put(img, at + 12, 0)
    img[at + 16:at + 16 + len(name)] = name
    meta = 16 + pad16(len(name) + 1)
    put(img, at + 12, (-total(img[at:at + meta])) & 0xffffffff)
    img[at + meta:at + meta + len(data)] = data

def fix_header(img, at):
    name_end = img.index(0, at + 16)
    meta = 16 + pad16(name_end - (at + 16) + 1)
    put(img, at + 12, 0)
    put(img, at + 12, (-total(img[at:at + meta])) & 0xffffffff)

def fix_super(img):
    size = struct.unpack('>I', bytes(img[8:12]))[0]
    put(img, 12, 0)
    n = min(512, size, len(img))
    put(img, 12, (-total(img[:n])) & 0xffffffff)

HARD, DIR, REG, LNK = 0, 1, 2, 3

def good():
    img = bytearray(0x140)
    img[0:8] = b'-rom1fs-'
    put(img, 8, len(img))
    img[16:17] = b't'
    header(img, 0x20, 0x40, DIR, True, 0x20, 0, b'.')
    header(img, 0x40, 0x60, HARD, False, 0x20, 0, b'..')
    header(img, 0x60, 0x90, REG, False, 0, 5, b'f', b'hello')
    header(img, 0x90, 0x110, DIR, True, 0xB0, 0, b'd')
    header(img, 0xB0, 0xD0, HARD, False, 0x90, 0, b'.')
    header(img, 0xD0, 0xF0, HARD, False, 0x20, 0, b'..')
    # "d/again" is a hard link to d itself: a cycle a walk must survive.
    header(img, 0xF0, 0, HARD, False, 0x90, 0, b'again')
    header(img, 0x110, 0, LNK, False, 0, 1, b'l', b'f')
    fix_super(img)
    return img

def write(name, img):
    with open(name, 'wb') as f:
        f.write(bytes(img))

g = good()
write('good.img', g)

b = bytearray(g); b[0] = ord('+'); write('bad-magic.img', b)
b = bytearray(g); put(b, 12, struct.unpack('>I', bytes(b[12:16]))[0] + 1); write('bad-superblock-checksum.img', b)
b = bytearray(g); put(b, 0x68, 4); fix_super(b); write('bad-header-checksum.img', b)
b = bytearray(g); put(b, 8, 0x400); write('size-beyond-image.img', b)
write('truncated.img', g[:0xA0])
b = bytearray(g); put(b, 0x60, 0x1000 | REG); fix_header(b, 0x60); fix_super(b); write('next-out-of-bounds.img', b)
b = bytearray(g); put(b, 0x110, 0x60 | LNK); fix_header(b, 0x110); fix_super(b); write('chain-loop.img', b)
b = bytearray(g); put(b, 0x44, 0x40); fix_header(b, 0x40); fix_super(b); write('hard-link-loop.img', b)
b = bytearray(g); put(b, 0x68, 0x1000); fix_header(b, 0x60); fix_super(b); write('data-out-of-bounds.img', b)
b = bytearray(g); put(b, 0x20, 0x40 | REG); fix_header(b, 0x20); fix_super(b); write('root-not-directory.img', b)
# The last name runs to the end of the image without a NUL.
b = bytearray(g[:0x130]); put(b, 8, 0x130); b[0x120:0x130] = b'x' * 16; fix_super(b); write('unterminated-name.img', b)
write('too-small.img', b'-rom1fs-\0\0')
