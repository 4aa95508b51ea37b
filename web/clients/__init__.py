"""The web's clients of its upstream services, one module each: `ledger` (the interface pages use of the
one ledger client, reciprocity.ledger.client), `balance` and `notify`. Their errors are those of every
client of our services (reciprocity.common.service_client). Pages get a `Clients`; `http_clients()`
builds the real ones, tests hand in fakes (tests/support/web_fakes.py)."""

from __future__ import annotations

from dataclasses import dataclass

from reciprocity.ledger.client import LedgerClient

from .balance import Balance, HttpBalance
from .ledger import Ledger
from .notify import HttpNotify, Notify


@dataclass
class Clients:
    ledger: Ledger
    balance: Balance
    notify: Notify


def http_clients(*, ledger_url: str, ledger_token: str, balance_url: str, balance_token: str, notify_url: str,
                 notify_token: str, timeout_s: float = 5.0) -> Clients:
    return Clients(
        ledger=LedgerClient(ledger_url, ledger_token, timeout_s=timeout_s),
        balance=HttpBalance(balance_url, timeout_s=timeout_s, token=balance_token),
        notify=HttpNotify(notify_url, timeout_s=timeout_s, token=notify_token),
    )
