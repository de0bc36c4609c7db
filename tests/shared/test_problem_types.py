"""The one vocabulary of problem types: the error classes and the status table take theirs from it."""

from __future__ import annotations

from owr_shared import errors
from owr_shared.errors import ProblemError, ProblemType
from owr_shared.jwt import InvalidToken


def test_error_classes_speak_the_table():
    pairs = {
        errors.BadRequest: errors.BAD_REQUEST,
        errors.Unauthorized: errors.UNAUTHORIZED,
        errors.Forbidden: errors.FORBIDDEN,
        errors.NotFound: errors.NOT_FOUND,
        errors.Conflict: errors.CONFLICT,
        errors.ServiceUnavailable: errors.SERVICE_UNAVAILABLE,
        InvalidToken: errors.INVALID_TOKEN,
        ProblemError: errors.INTERNAL_ERROR,
    }
    for cls, problem in pairs.items():
        assert cls().problem == problem
    assert errors.TooManyRequests(retry_after=1).problem == errors.RATE_LIMITED


def test_a_bare_status_maps_to_its_generic_problem():
    assert errors.PROBLEM_BY_STATUS[404] == ProblemType(404, "not-found", "Not Found")
    assert errors.PROBLEM_BY_STATUS[413].slug == "payload-too-large"
    assert errors.PROBLEM_BY_STATUS[422].slug == "validation-error"
    assert all(status == problem.status for status, problem in errors.PROBLEM_BY_STATUS.items())
    assert 500 not in errors.PROBLEM_BY_STATUS  # other statuses stay "about:blank"
