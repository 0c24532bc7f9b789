"""The ledger's key, held outside the database, and who is recording.

``topup init`` gives a ledger an id and a key: 32 random bytes, kept (base64) in a file readable
only by its owner, by default ``~/.config/topup-ledger/keys/<ledger id>.key`` (``TOPUP_KEY_DIR``
or ``XDG_CONFIG_HOME`` move the folder; ``TOPUP_LEDGER_KEY`` gives the key itself and
``TOPUP_LEDGER_KEY_FILE`` or ``--key-file`` another file, e.g. from a secret store). The ledger
records only the key's id (``ledger_info``), never the key. Every event is authenticated with an
HMAC under the key (``seal_state``), so someone who can write the database but does not hold the
key cannot add or alter an event unnoticed; a command run with a missing or different key
refuses before recording anything.

The MAC of an event covers its stream, version, type and its state as stored without the MAC::

    mac = HMAC-SHA256(key, "topup-mac/1" LF F(stream) F(version) F(type) F(state without mac))

where the state is ``{…,"data":{…},"mac":"<64 hex>"}`` and the state without the MAC is the
same bytes with ``,"mac":"<64 hex>"`` taken out (``F`` as in ``schemas/chain.md``).
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

MAC_FORMAT = b"topup-mac/1\n"
_MAC_END = re.compile(rb',"mac":"([0-9a-f]{64})"\}\Z')


class LedgerKeyError(RuntimeError):
    """The ledger's key (or cipher key) is missing or not this ledger's."""


def key_dir() -> Path:
    """Where ``topup init`` keeps ledger keys by default."""
    explicit = os.environ.get("TOPUP_KEY_DIR")
    if explicit:
        return Path(explicit)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "topup-ledger" / "keys"


def key_id(key: bytes) -> str:
    """A key's public name: it says which key, and nothing of the key itself."""
    return hashlib.sha256(b"topup-key-id\n" + key).hexdigest()[:16]


def cipher_id(key_text: str) -> str:
    """The public name of a ``TOPUP_CIPHER_KEY`` (recorded so a wrong one is refused)."""
    return hashlib.sha256(b"topup-cipher-key-id\n" + key_text.strip().encode()).hexdigest()[:16]


def decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise LedgerKeyError(f"the ledger key in {where} is not a key (base64 of at least 16 random "
                        "bytes, as `topup init` writes)")
    return key


@dataclass(frozen=True)
class LedgerKey:
    key: bytes
    source: str  # where it came from, for messages

    @property
    def id(self) -> str:
        return key_id(self.key)


def default_key_path(ledger_id: str) -> Path:
    return key_dir() / f"{ledger_id}.key"


def find_key(ledger_id: str, key_file: str | None = None) -> LedgerKey | None:
    """The key given (``key_file``, ``TOPUP_LEDGER_KEY``, ``TOPUP_LEDGER_KEY_FILE``) or kept
    in the default place for this ledger; None if there is none."""
    text = os.environ.get("TOPUP_LEDGER_KEY")
    if key_file is None and text:
        return LedgerKey(decode_key(text, "TOPUP_LEDGER_KEY"), "TOPUP_LEDGER_KEY")
    path_text = key_file or os.environ.get("TOPUP_LEDGER_KEY_FILE")
    path = Path(path_text) if path_text else default_key_path(ledger_id)
    where = f"the key file {path}"
    if not path.is_file():
        if path_text:
            raise LedgerKeyError(f"the ledger key file {path} does not exist")
        return None
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise LedgerKeyError(f"cannot read {where}: {error}") from None
    return LedgerKey(decode_key(text, where), where)


def kept_key_path(ledger_id: str, key_id_: str) -> Path:
    """Where a key replaced by ``topup key rotate`` is kept (and a new one written first), by
    the ledger's id and the key's own id: verify needs the old keys for the old events."""
    return key_dir() / f"{ledger_id}.{key_id_}.key"


def read_key_file(path: Path) -> LedgerKey:
    where = f"the key file {path}"
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise LedgerKeyError(f"cannot read {where}: {error}") from None
    return LedgerKey(decode_key(text, where), where)


def write_key_file(path: Path, key: bytes, *, replace: bool = False) -> None:
    """The key, base64, in a file only its owner can read (written whole, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    if replace:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # never over a key that is there already
    finally:
        temp.unlink()


def keys_at_hand(ledger_id: str, wanted: list[str]) -> dict[str, bytes]:
    """The keys of ``wanted`` ids found where rotation keeps them (``kept_key_path``), in the
    default key file, or in the files ``TOPUP_LEDGER_OLD_KEY_FILES`` lists (separated by
    ``os.pathsep``: old keys kept in a secret store)."""
    paths = [kept_key_path(ledger_id, k) for k in wanted] + [default_key_path(ledger_id)]
    paths += [Path(p) for p in os.environ.get("TOPUP_LEDGER_OLD_KEY_FILES", "").split(os.pathsep) if p]
    found: dict[str, bytes] = {}
    for path in paths:
        if not path.is_file():
            continue
        try:
            key = read_key_file(path)
        except LedgerKeyError:
            continue
        if key.id in wanted:
            found[key.id] = key.key
    return found


def new_key(ledger_id: str, key_file: str | None = None) -> LedgerKey:
    """A new key for a new ledger: the one given, or 32 random bytes written to a 0600 file."""
    given = find_key(ledger_id, key_file)
    if given is not None:
        return given
    key = secrets.token_bytes(32)
    path = default_key_path(ledger_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
    return LedgerKey(key, f"the key file {path}")


def mac_of(key: bytes, stream: str, version: int, topic: str, unsealed: bytes) -> bytes:
    s, n, t = stream.encode(), str(version).encode(), topic.encode()
    message = b"%s%d:%s\n%d:%s\n%d:%s\n%d:%s\n" % (MAC_FORMAT, len(s), s, len(n), n, len(t), t,
                                                  len(unsealed), unsealed)
    return hmac.new(key, message, hashlib.sha256).digest()


def seal_state(key: bytes, stream: str, version: int, topic: str, state: bytes) -> bytes:
    """``state`` (a JSON object's bytes) with its MAC as a last member ``"mac"``."""
    mac = mac_of(key, stream, version, topic, state)
    return b'%s,"mac":"%s"}' % (state[:-1], mac.hex().encode())


def check_state(keys: dict[str, bytes], key_named: str | None, stream: str, version: int,
                topic: str, payload: bytes) -> str | None:
    """Why the event's MAC does not authenticate it under the ledger's keys (None: it does)."""
    match = _MAC_END.search(payload)
    if match is None:
        return "it carries no authentication (it was not recorded with the ledger's key)"
    key = keys.get(key_named or "")
    if key is None:
        return (f"it names key {key_named!r}, which is not this ledger's key" if key_named
                else "it names no key")
    unsealed = payload[:match.start()] + b"}"
    if not hmac.compare_digest(mac_of(key, stream, version, topic, unsealed),
                               bytes.fromhex(match.group(1).decode())):
        return "its authentication does not match: it was altered or forged without the key"
    return None


def os_login() -> str:
    """The operating system's login of this process (its effective user, not $USER)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return getpass.getuser()
