"""Who may act: one operator credential from the configuration, sessions by cookie, CSRF tokens.

Reading is open (to whoever can reach the bound address); acting (POST) needs either the credential in
an ``Authorization: Bearer`` header, which browsers never add on their own, or a session cookie from
``/login`` together with that session's CSRF token in the ``X-CSRF-Token`` header, which another site's
page cannot read. Without a configured credential nothing can act.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "ims_console_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 64  # the oldest session is forgotten beyond this


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str


class OperatorAuth:
    def __init__(self, token: str | None) -> None:
        self._token = token
        self._sessions: dict[str, Session] = {}

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def credential_ok(self, presented: str) -> bool:
        return self._token is not None and hmac.compare_digest(presented.encode(), self._token.encode())

    def login(self, presented: str) -> Session | None:
        if not self.credential_ok(presented):
            return None
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        self._sessions[session.id] = session
        while len(self._sessions) > MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        return session

    def session(self, session_id: str | None) -> Session | None:
        return None if session_id is None else self._sessions.get(session_id)

    def logout(self, session_id: str | None) -> None:
        if session_id is not None:
            self._sessions.pop(session_id, None)

    def may_act(self, authorization: str | None, session_id: str | None, csrf: str | None) -> bool:
        """Bearer credential, or a live session whose CSRF token came back in the header."""
        if authorization is not None and authorization.startswith("Bearer "):
            return self.credential_ok(authorization.removeprefix("Bearer "))
        session = self.session(session_id)
        return session is not None and csrf is not None and hmac.compare_digest(csrf, session.csrf)
