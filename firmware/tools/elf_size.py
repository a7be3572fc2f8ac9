#!/usr/bin/env python3
"""Image size and static RAM of an ESP32 firmware ELF, from its section
headers (no external tools): what goes to flash, what occupies SRAM before
the first instruction runs, and the heap the firmware declares."""

import argparse
import re
import struct
import sys
from pathlib import Path

# Sections copied to flash in the app image (code, read-only data, and the
# initial values of .data) vs. sections occupying SRAM at run time.
IMAGE = re.compile(r"^\.(trap|rwtext.*|data.*|rodata.*|text.*|flash\..*|iram.*)$")
RAM = re.compile(r"^\.(trap|rwtext.*|data.*|bss.*|noinit|iram.*)$")


def sections(path):
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1:
        sys.exit(f"{path}: not a 32-bit ELF")
    endian = "<" if data[5] == 1 else ">"
    (shoff,) = struct.unpack_from(endian + "I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
    headers = []
    for i in range(shnum):
        name, kind, flags, addr, off, size = struct.unpack_from(
            endian + "IIIIII", data, shoff + i * shentsize
        )
        headers.append((name, kind, flags, size))
    strtab_off = struct.unpack_from(endian + "I", data, shoff + shstrndx * shentsize + 16)[0]
    for name, kind, flags, size in headers:
        end = data.index(b"\0", strtab_off + name)
        yield data[strtab_off + name : end].decode(), kind, flags, size


def heap_bytes(main_rs):
    text = Path(main_rs).read_text()
    extra = re.search(r"HEAP_EXTRA_BYTES: usize = (\d+) \* 1024", text)
    reclaimed = re.search(r"ram\(reclaimed\)\] size: (\d+) \* 1024", text)
    return (
        int(reclaimed.group(1)) * 1024 if reclaimed else 0,
        int(extra.group(1)) * 1024 if extra else 0,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("elf")
    ap.add_argument("--chip", default="")
    args = ap.parse_args()
    SHF_ALLOC = 0x2
    image = ram = bss = 0
    for name, kind, flags, size in sections(args.elf):
        if not flags & SHF_ALLOC:
            continue
        if IMAGE.match(name):
            image += size
        if RAM.match(name):
            ram += size
        if name.startswith(".bss"):
            bss += size
    reclaimed, extra = heap_bytes(Path(__file__).resolve().parent.parent / "src" / "main.rs")
    print(f"   {args.chip}: image {image} B ({image / 1024:.1f} KiB), "
          f"static RAM {ram} B ({ram / 1024:.1f} KiB, .bss {bss / 1024:.1f} KiB), "
          f"heap {(reclaimed + extra) // 1024} KiB "
          f"({reclaimed // 1024} KiB reclaimed from the bootloader + {extra // 1024} KiB in .bss)")


if __name__ == "__main__":
    main()
