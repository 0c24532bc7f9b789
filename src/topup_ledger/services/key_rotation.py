"""``topup key rotate``: a new ledger key takes over from a recorded event onward.

The rotation is a ``ledger.key_rotated`` event on the ``keys`` stream naming the new key's id,
authenticated by the key in use (so only its holder can hand over); every event after it is
authenticated by the new key (``storage.key_stretches``). Old events keep their old
authentication: the old key is kept beside the new one (``keys.kept_key_path``), for verify.

In what order, so that a rotation cut short at any step leaves a ledger that opens:

1. the new key is written to its own kept file (nothing refers to it yet);
2. the old key is kept in its own file too, if it is not there already;
3. the rotation is recorded (from here the new key is the ledger's: the store finds it in its
   kept file even if step 4 never happened);
4. the default key file, if that is where the key in use came from, is replaced by the new key.

A key from ``TOPUP_LEDGER_KEY`` or a key file given (a secret store) is not touched: the
operator puts the new key there (``--new-key-file`` takes one made there beforehand).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from topup_ledger.domain import events as ev
from topup_ledger.services.recording import Ledger, check_reason, check_text
from topup_ledger.storage import keys as ledger_keys
from topup_ledger.storage.store import Recorded, StoreError
from topup_ledger.storage.streams import KEYS_STREAM


class RotationRefused(StoreError):
    """The key cannot be rotated (no key, or the new key is not new): nothing recorded."""


@dataclass(frozen=True)
class RotationResult:
    event: str  # e.g. keys/1
    position: int  # the rotation's own position: the last the old key authenticates
    previous_key_id: str
    key_id: str
    new_key_file: Path  # where the new key is (its kept file, or the file given)
    old_key_file: Path  # where the old key is kept for verify
    default_replaced: bool  # whether the default key file now holds the new key

    def as_json(self) -> dict[str, object]:
        return {"event": self.event, "position": self.position, "key_id": self.key_id,
                "previous_key_id": self.previous_key_id, "new_key_file": str(self.new_key_file),
                "old_key_file": str(self.old_key_file), "default_replaced": self.default_replaced}


def rotate_key(ledger: Ledger, reason: str = "", new_key_file: Path | None = None) -> RotationResult:
    store = ledger.store
    old = store.mapper.ledger_key
    ledger_id = getattr(store, "ledger_id", "")
    if old is None or not ledger_id:
        raise RotationRefused("this ledger has no key to rotate (it was made before ledgers had "
                              "keys); nothing was recorded")
    reason = check_reason(reason)
    check_text(reason, "reason")
    if new_key_file is not None:
        try:
            new = ledger_keys.read_key_file(new_key_file)
        except ledger_keys.LedgerKeyError as error:
            raise RotationRefused(f"{error}; nothing was recorded") from None
        new_path = new_key_file
    else:
        new = ledger_keys.LedgerKey(secrets.token_bytes(32), "a new key")
        new_path = ledger_keys.kept_key_path(ledger_id, new.id)
    if new.id in store.key_stretches.key_ids():
        raise RotationRefused(f"key {new.id} has been this ledger's key already: a rotation takes "
                              "a new key; nothing was recorded")
    try:
        if new_key_file is None:
            ledger_keys.write_key_file(new_path, new.key)  # 1
        old_path = ledger_keys.kept_key_path(ledger_id, old.id)
        if not old_path.exists():
            ledger_keys.write_key_file(old_path, old.key)  # 2
    except OSError as error:
        raise RotationRefused(f"cannot keep the keys in {ledger_keys.key_dir()}: {error}; nothing "
                              "was recorded") from None
    version = store.version(KEYS_STREAM) + 1
    fact = ev.KeyRotated(new.id, old.id, reason)
    [position] = store.append([Recorded(KEYS_STREAM, version, ledger.clock(), fact)])  # 3
    default = ledger_keys.default_key_path(ledger_id)
    replaced = old.source == f"the key file {default}"
    if replaced:
        ledger_keys.write_key_file(default, new.key, replace=True)  # 4
    return RotationResult(f"{KEYS_STREAM}/{version}", position, old.id, new.id, new_path, old_path,
                          replaced)
