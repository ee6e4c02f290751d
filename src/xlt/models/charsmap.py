"""Build a SentencePiece ``precompiled_charsmap`` from a code-point normalisation map.

A charsmap is the ``precompiled_charsmap`` field of a SentencePiece model, the input of
``tokenizers.normalizers.Precompiled``. It contains a u32 byte length of a darts-clone double-array
trie, the trie's 32-bit units, then the replacement strings, each ending in a NUL byte. A trie key is the UTF-8 form of a source string and its value
is the byte offset of the replacement.

Unit layout (darts-clone ``DoubleArrayUnit``): bits 0-7 hold the label, bit 8 says that the node
ends a key, bit 9 selects an offset shifted by 8 bits, bits 10-30 hold the offset, and a unit with
bit 31 set stores a value in bits 0-30. The children of a node at position ``p`` sit at
``p ^ offset ^ label``, and a key's value sits at ``p ^ offset`` of its last node.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Mapping, Sequence

_HAS_LEAF = 1 << 8
_VALUE_FLAG = 1 << 31
# Offsets below 2**21 fit without the shifted encoding, and the tries built here stay far below.
_MAX_PLAIN_OFFSET = 1 << 21


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None


def build_precompiled_charsmap(mapping: Mapping[str, str]) -> bytes:
    """Return a charsmap that replaces each key of `mapping` with its value.

    Keys must be non-empty strings, and an empty value deletes its key. `Precompiled` applies the
    shortest key that starts the text, so a key that extends another key never matches.
    """
    pool = bytearray()
    value_offsets: dict[str, int] = {}
    root = _Node()
    for key in sorted(mapping):
        if not key:
            raise ValueError("charsmap keys must be non-empty strings")
        replacement = mapping[key]
        if "\0" in replacement:
            raise ValueError(f"replacement for {key!r} contains a NUL character")
        if replacement not in value_offsets:
            value_offsets[replacement] = len(pool)
            pool += replacement.encode("utf-8") + b"\0"
        node = root
        for byte in key.encode("utf-8"):
            node = node.children.setdefault(byte, _Node())
        node.value = value_offsets[replacement]

    units = _build_double_array(root)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(pool)


def build_codepoint_charsmap(normalization: Mapping[int, Sequence[int]]) -> bytes:
    """Return a charsmap for a map from single code points to replacement code points."""
    mapping = {
        chr(code_point): "".join(chr(c) for c in replacement)
        for code_point, replacement in normalization.items()
    }
    return build_precompiled_charsmap(mapping)


def _build_double_array(root: _Node) -> list[int]:
    units = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root's own unit
    next_free = 1
    # Two nodes with the same base would each accept the other's children: the unit at
    # `base ^ label` only records its label, not its parent. Every base is used once.
    used_bases: set[int] = set()

    def grow(size: int) -> None:
        # Keep the array a whole number of 256-unit blocks, so that `base ^ label` is inside it
        # for any byte label. The Rust reader indexes the array directly and panics past its end.
        size = (size | 0xFF) + 1
        if size > len(units):
            units.extend([0] * (size - len(units)))
            used.extend(bytes(size - len(used)))

    queue: deque[tuple[_Node, int]] = deque([(root, 0)])
    while queue:
        node, position = queue.popleft()
        labels = sorted(node.children)
        if node.value is not None:
            labels.insert(0, 0)
        if not labels:
            continue

        # Scan up from the first free slot for an unused base whose slots `base ^ label` are all
        # free. Slot 0 is the root.
        base = None
        candidate_slot = next_free
        while base is None:
            grow(candidate_slot + 1)
            if not used[candidate_slot]:
                candidate = candidate_slot ^ labels[0]
                grow(candidate | 0xFF)
                if candidate not in used_bases and all(
                    not used[candidate ^ label] and (candidate ^ label) != 0 for label in labels
                ):
                    base = candidate
            candidate_slot += 1

        used_bases.add(base)
        offset = position ^ base
        if offset >= _MAX_PLAIN_OFFSET:
            raise ValueError(
                f"normalisation map too large: trie offset {offset} needs the shifted encoding, "
                "which this builder does not write"
            )
        units[position] |= offset << 10
        for label in labels:
            used[base ^ label] = 1
        if node.value is not None:
            units[base] = node.value | _VALUE_FLAG
        for label, child in sorted(node.children.items()):
            units[base ^ label] = label | (_HAS_LEAF if child.value is not None else 0)
            queue.append((child, base ^ label))
        while next_free < len(used) and used[next_free]:
            next_free += 1

    return units
