"""One exception tree for paperbell.

Two branches matter to the boundary (CLI, Discord, web): ``UserError`` carries a message
written for the person who caused it and is shown as-is; ``InternalError`` is logged once
with its context and the person sees a short apology. Adapters raise; only the boundary logs.
"""

from __future__ import annotations


class PaperbellError(Exception):
    """Root of every error paperbell raises on purpose."""


# --- user-facing ---------------------------------------------------------------------------


class UserError(PaperbellError):
    """Something the user can fix; ``str(err)`` is the message to show them."""


class ConfigError(UserError):
    """Invalid configuration. The CLI exits with 78 (EX_CONFIG)."""


class UsageError(UserError):
    """Invalid command-line use. The CLI exits with 2."""


class NotFoundError(UserError):
    """A named thing (paper, subscription, user) does not exist or is not yours."""


class LimitError(UserError):
    """A quota was reached (subscriptions per owner, confirmation mails per day)."""


# --- internal ------------------------------------------------------------------------------


class InternalError(PaperbellError):
    """A fault in paperbell or what it talks to; logged, never shown raw to a user."""


class StoreError(InternalError):
    """The database could not do what was asked."""


class SourceError(InternalError):
    """A source could not be fetched or understood. Other sources carry on."""

    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(message)
        self.source = source


class FetchError(SourceError):
    """Network-level failure: connection refused, timeout, HTTP 5xx after retries."""


class RateLimitedError(FetchError):
    """The server asked us to wait longer than we are willing to wait in this cycle."""

    def __init__(self, message: str, *, source: str = "", retry_after: float | None = None):
        super().__init__(message, source=source)
        self.retry_after = retry_after


class SourceParseError(SourceError):
    """The body arrived but is malformed, truncated, or an error document."""


class BadItemError(SourceParseError):
    """One item of a document cannot be used; its neighbours still can.

    ``reason`` is the short kind of problem the cycle line counts (``bad date``);
    ``str(err)`` says which item and what was wrong, for the log.
    """

    def __init__(self, reason: str, detail: str, *, source: str = "") -> None:
        super().__init__(detail, source=source)
        self.reason = reason


class DeliveryError(InternalError):
    """A notifier could not deliver a message."""


class TransientDeliveryError(DeliveryError):
    """Try again later: 4xx SMTP replies, disconnects, timeouts, Discord 5xx."""


class PermanentDeliveryError(DeliveryError):
    """Give up on this message for this recipient; ``reason`` says why (kept in the outbox)."""

    def __init__(self, reason: str, *, recipient_unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # True when the address/user itself is the problem (550 mailbox unknown, Discord
        # 50007), so the caller can count strikes or fall back to another channel.
        self.recipient_unreachable = recipient_unreachable


class MessageTooLargeError(PermanentDeliveryError):
    """The receiving server refused the message for its size; a smaller one may pass."""


class ChannelDownError(DeliveryError):
    """The whole channel stopped working (bad credentials, Discord 401): stop using it."""


class ChannelUnreachableError(ChannelDownError):
    """The channel cannot be reached for now (connection refused, DNS, connect timeout):
    its messages wait, untouched, and the channel is tried again later."""


class InvalidTokenError(UserError):
    """A confirm/unsubscribe link or code is malformed, tampered with, or expired."""


class StaleLinkError(InvalidTokenError):
    """A genuine manage link that expired or was replaced by a newer one: offer a new one."""


class InvalidQueryError(UserError):
    """A search or listing request that cannot run: no words to look for, a bad limit."""


class QueryError(UserError):
    """A subscription query that cannot be understood.

    ``str(err)`` reads ``<what is wrong> at column <N>: <how to fix it>``; ``column`` is
    1-based and ``hint`` is the fix alone, for interfaces that show them apart.
    """

    def __init__(self, problem: str, *, column: int, hint: str) -> None:
        super().__init__(f"{problem} at column {column}: {hint}")
        self.problem = problem
        self.column = column
        self.hint = hint


class InvalidValueError(UserError):
    """A value a person gave that paperbell cannot use: a timezone, an hour, an address."""


class NoDatabaseError(UserError):
    """A read-only command found no database: nothing was stored yet (not a failure)."""


class SchemaOutdatedError(ConfigError, StoreError):
    """A read-only command found a database older than this paperbell; it never migrates."""

    def __init__(self, message: str, *, current: int, latest: int) -> None:
        super().__init__(message)
        self.current, self.latest = current, latest  # schema versions: found, and wanted


class SchemaTooNewError(ConfigError, StoreError):
    """The database was written by a newer paperbell: the operator must upgrade.

    A configuration error (exit 78) so a service manager does not restart into it forever.
    """


class UnknownPapersError(NotFoundError):
    """Paper ids that name no stored paper; one line per id."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        super().__init__(
            "\n".join(
                f"no stored paper {key}: check the id with `paperbell papers` or `paperbell search`"
                for key in keys
            )
        )


class NoFeedbackError(UserError):
    """A ranking was asked for but the person has not said what they like yet."""

    def __init__(self, how: str = "") -> None:
        super().__init__(
            "nothing to learn from yet: rate a few papers first"
            + (f" ({how})" if how else "")
            + ", or subscribe to papers like one you know with like:ARXIV_ID"
        )


class UnknownLikeError(NotFoundError, UsageError):
    """A ``like:`` names a paper that is not stored: a bad query (the CLI exits 2)."""
