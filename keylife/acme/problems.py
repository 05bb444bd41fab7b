"""Turn what the ACME stack raises (acme, josepy, requests) into keylife errors.

Every public function of :mod:`keylife.acme` runs its network work inside :func:`translated`, so
no third-party exception crosses the public API: the original is kept as ``__cause__``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import josepy
import requests
from acme import errors as acme_errors
from acme import messages

from keylife.acme.wire import Problem, parse_retry_after
from keylife.errors import AcmeError, ChallengeFailures, KeylifeError, RateLimitedError


def describe_problem(problem: messages.Error) -> str:
    """One line for a problem document: type, detail and each subproblem's identifier."""
    validated: Problem | None = getattr(problem, "keylife_problem", None)
    if validated is not None:
        return validated.describe()
    code = problem.code or str(problem.typ)
    return f"{code}: {problem.detail or problem.title or 'no detail'}"


def from_problem(problem: messages.Error, action: str) -> AcmeError:
    """The keylife error for a problem document the CA answered ``action`` with."""
    text = f"{action}: the ACME server answered {describe_problem(problem)}"
    if problem.code == "rateLimited":
        retry_at: dt.datetime | None = getattr(problem, "keylife_retry_after", None)
        when = f" (retry after {retry_at.isoformat()})" if retry_at else ""
        return RateLimitedError(text + when, retry_after=retry_at)
    return AcmeError(text)


def problem_code(exc: BaseException) -> str | None:
    """The ACME error code (``badNonce``, ``alreadyRevoked``...) behind a wrapped error."""
    cause: Any = exc
    while cause is not None:
        if isinstance(cause, messages.Error):
            code: str | None = cause.code
            return code
        cause = cause.__cause__
    return None


@contextmanager
def translated(action: str, url: str | None = None) -> Iterator[None]:
    """Wrap any acme/josepy/requests failure inside the block as a keylife ``AcmeError``."""
    where = f" at {url}" if url else ""
    try:
        yield
    except KeylifeError:
        raise
    except messages.Error as exc:
        raise from_problem(exc, f"{action}{where}") from exc
    except requests.exceptions.SSLError as exc:
        raise AcmeError(
            f"{action}: TLS verification of the ACME server{where} failed; if it uses a private "
            "CA, pass that CA's certificates as the CA bundle (verification stays on)"
        ) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise AcmeError(
            f"{action}: cannot reach the ACME server{where}: {type(exc).__name__}"
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise AcmeError(f"{action}: HTTP request to the ACME server{where} failed: {exc}") from exc
    except acme_errors.TimeoutError as exc:
        raise AcmeError(f"{action}: timed out") from exc
    except acme_errors.Error as exc:
        raise AcmeError(f"{action}: ACME protocol error: {type(exc).__name__}: {exc}") from exc
    except josepy.errors.Error as exc:
        raise AcmeError(f"{action}: malformed answer from the ACME server: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise AcmeError(
            f"{action}: unexpected answer from the ACME server{where} ({type(exc).__name__}: {exc})"
        ) from exc


__all__ = [
    "ChallengeFailures",
    "describe_problem",
    "from_problem",
    "parse_retry_after",
    "problem_code",
    "translated",
]
