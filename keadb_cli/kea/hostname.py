"""Whether a ``host`` value can name a database server at all.

Kea hands ``host`` to libpq or libmysqlclient unchecked, and a name no resolver can look up
only fails when the connection is tried. kea-db says so up front, the same way for
``--host`` (a settings error) and for a Kea file's ``host`` (a configuration error): a DNS
name has at most 253 characters and each label at most 63 (RFC 1035 2.3.4), and Python's
resolver refuses longer ones with an exception rather than a lookup failure.

Kept apart from :mod:`keadb_cli.kea.validate` so that the command line can use it without
loading the configuration parser.
"""

from __future__ import annotations

__all__ = ["MAX_HOST_NAME", "MAX_LABEL", "host_list_problem", "host_problem"]

MAX_HOST_NAME = 253  # characters of a DNS name, without a final dot
MAX_LABEL = 63  # characters of one label (between dots)


def host_problem(host: str) -> str | None:
    """Why ``host`` can never name a server, or None when it may.

    The answer completes a sentence about the value ("'host' has a label of 64
    characters..."); it never quotes the value. A path (``/run/postgresql``: a Unix socket
    directory) and an IP address are not names and pass; so does an empty value (the
    client library's default).
    """
    if not host:
        return None
    if any(ch < " " or ch == "\x7f" for ch in host):
        return "holds a control character: it cannot be a host name"
    if host.startswith("/"):
        return None
    if ":" in host:
        import ipaddress  # only for a value with a colon: an IPv6 address

        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return None
    name = host[:-1] if host.endswith(".") else host
    if len(name) > MAX_HOST_NAME:
        return (f"is {len(name)} characters long: a host name has at most {MAX_HOST_NAME} "
                "(RFC 1035), so no resolver can look it up")
    for label in name.split("."):
        if not label:
            return ("has an empty label (a leading dot or two dots in a row): no resolver "
                    "can look it up")
        size = _label_size(label)
        if size > MAX_LABEL:
            return (f"has a label of {size} characters: a host name label has at most "
                    f"{MAX_LABEL} (RFC 1035), so no resolver can look it up")
    return None


def host_list_problem(host: str) -> str | None:
    """:func:`host_problem` for a value that may be libpq's comma-separated host list
    (PostgreSQL's ``host``): each entry is checked alone and named by its position."""
    names = host.split(",")
    if len(names) == 1:
        return host_problem(host)
    for number, name in enumerate(names, 1):
        problem = host_problem(name)
        if problem:
            return f"(a host list): entry {number} {problem}"
    return None


def _label_size(label: str) -> int:
    """Characters of a label as a resolver sends it: an internationalised one encoded."""
    if label.isascii():
        return len(label)
    try:
        return len(label.encode("idna"))
    except UnicodeError:  # too long once encoded, or not a name the codec can encode
        return len(label.encode("utf-8", "surrogatepass"))
