"""The court's domain: cases, detentions, sessions and seats, accounts and terminals, the role
policy, invites, consent, the audit chain, documents, and the services that change them (Clerk,
Gate, Registry). No web or media framework is imported here.
"""

from courtlink.clock import Clock, new_id, system_clock
from courtlink.court.accounts import Account
from courtlink.court.audit import AuditEvent, AuditKind, Checkpoint, VerifyReport, verify_chain
from courtlink.court.auditor import Auditor
from courtlink.court.cases import Case, normalize_case_number
from courtlink.court.clerk import Clerk, ClerkRules, IssuedInvite
from courtlink.court.consent import CONSENT_SEATS, Consent
from courtlink.court.detentions import Detention, DetentionStatus, Period
from courtlink.court.gate import Gate, GateRules, Login
from courtlink.court.hashing import SecretHasher
from courtlink.court.invites import Invite, InviteClaims, InviteSigner
from courtlink.court.keys import KeyRing, load_or_create_secret
from courtlink.court.policy import (
    AccountPrincipal,
    Action,
    InvitePrincipal,
    Principal,
    TerminalPrincipal,
    authorize,
)
from courtlink.court.seats import SEATS, AccountRole, Seat
from courtlink.court.sessions import Session, SessionState
from courtlink.court.terminals import Terminal
from courtlink.errors import (
    ConfigError,
    Conflict,
    CourtlinkError,
    Forbidden,
    InvalidInput,
    InviteExpired,
    InviteInvalid,
    InviteRevoked,
    NotAuthenticated,
    NotFound,
    RateLimited,
    SeatNotAllowed,
    Unavailable,
)

__all__ = [
    "CONSENT_SEATS",
    "SEATS",
    "Account",
    "AccountPrincipal",
    "AccountRole",
    "Action",
    "AuditEvent",
    "AuditKind",
    "Auditor",
    "Case",
    "Checkpoint",
    "Clerk",
    "ClerkRules",
    "Clock",
    "ConfigError",
    "Conflict",
    "Consent",
    "CourtlinkError",
    "Detention",
    "DetentionStatus",
    "Forbidden",
    "Gate",
    "GateRules",
    "InvalidInput",
    "Invite",
    "InviteClaims",
    "InviteExpired",
    "InviteInvalid",
    "InvitePrincipal",
    "InviteRevoked",
    "InviteSigner",
    "IssuedInvite",
    "KeyRing",
    "Login",
    "NotAuthenticated",
    "NotFound",
    "Period",
    "Principal",
    "RateLimited",
    "Seat",
    "SeatNotAllowed",
    "SecretHasher",
    "Session",
    "SessionState",
    "Terminal",
    "TerminalPrincipal",
    "Unavailable",
    "VerifyReport",
    "authorize",
    "load_or_create_secret",
    "new_id",
    "normalize_case_number",
    "system_clock",
    "verify_chain",
]
