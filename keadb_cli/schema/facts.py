"""Facts about Kea's schema that several revisions state: one place, so they cannot drift.

A revision that uses one of these must keep rendering the SQL recorded for it
(``migrations/<backend>/rendered.json``): change a fact here only for a new revision.
"""

from __future__ import annotations

# dhcp4/6_option_def.type for an option definition with record fields.
RECORD_TYPE = 254

# option_def_data_type (Kea 2.6.1's schema 22.1, the main line's 24.0): id -> name, with
# that schema's spelling of int8 (corrected in 26.0). 9 (any-address) is internal to Kea
# and has no row.
OPTION_DEF_DATA_TYPES: tuple[tuple[int, str], ...] = (
    (0, "empty"),
    (1, "binary"),
    (2, "boolean"),
    (3, 'int8"'),
    (4, "int16"),
    (5, "int32"),
    (6, "uint8"),
    (7, "uint16"),
    (8, "uint32"),
    (10, "ipv4-address"),
    (11, "ipv6-address"),
    (12, "ipv6-prefix"),
    (13, "psid"),
    (14, "string"),
    (15, "tuple"),
    (16, "fqdn"),
    (17, "internal"),
    (RECORD_TYPE, "record"),
)
