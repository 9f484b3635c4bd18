"""Store: the database layer every step reads and writes through.

Banks, victim cases, the seen-media history, matches, the audit log and the
index change log (SQLite by default, PostgreSQL at scale); the services that
apply the bank/case rules; matching and retroactive matching; hash-list
exchange. docs/store.md describes it all.
"""

from redress.store.db import Base, make_engine
from redress.store.exchange import BankImporter, ExchangeFormat, ImportReport, export_bank
from redress.store.interfaces import (
    AddResult,
    AuditAction,
    BankPurpose,
    BankRead,
    BankStore,
    CaseCreated,
    CaseRead,
    CaseStatus,
    CaseStore,
    EntryIn,
    EntryRead,
    EntrySource,
    MatchResult,
    MediaQuery,
    ScanOutcome,
    SeenStore,
    SightingIn,
    VpdqFrameIn,
)
from redress.store.service import (
    BankService,
    CaseService,
    FrameShare,
    Matcher,
    RetroMatcher,
    vpdq_frame_share,
)
from redress.store.store import SqlAuditLog, SqlBankStore, SqlCaseStore, SqlSeenStore
from redress.store.sync import IndexFollower, SeenFollower

__all__ = [
    "AddResult",
    "AuditAction",
    "BankImporter",
    "BankPurpose",
    "BankRead",
    "BankService",
    "BankStore",
    "Base",
    "CaseCreated",
    "CaseRead",
    "CaseService",
    "CaseStatus",
    "CaseStore",
    "EntryIn",
    "EntryRead",
    "EntrySource",
    "ExchangeFormat",
    "FrameShare",
    "ImportReport",
    "IndexFollower",
    "MatchResult",
    "Matcher",
    "MediaQuery",
    "RetroMatcher",
    "ScanOutcome",
    "SeenFollower",
    "SeenStore",
    "SightingIn",
    "SqlAuditLog",
    "SqlBankStore",
    "SqlCaseStore",
    "SqlSeenStore",
    "VpdqFrameIn",
    "export_bank",
    "make_engine",
    "vpdq_frame_share",
]
